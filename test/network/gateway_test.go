package network_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-gateway/pkg/hash"
	"github.com/hyperledger/fabric-gateway/pkg/identity"
	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

	"github.com/iotledger/iotledger/network"
)

// connect opens a Fabric gateway to an org's peer as one of the identities
// of the org's connection profile.
func connect(t *testing.T, n *network.Network, org, name string) *client.Gateway {
	t.Helper()
	p, err := n.Profile(org)
	require.NoError(t, err)
	id, err := p.Identity(name)
	require.NoError(t, err)

	certPEM, err := os.ReadFile(id.Cert)
	require.NoError(t, err)
	cert, err := identity.CertificateFromPEM(certPEM)
	require.NoError(t, err)
	xid, err := identity.NewX509Identity(id.MSPID, cert)
	require.NoError(t, err)
	keyPEM, err := os.ReadFile(id.Key)
	require.NoError(t, err)
	key, err := identity.PrivateKeyFromPEM(keyPEM)
	require.NoError(t, err)
	sign, err := identity.NewPrivateKeySign(key)
	require.NoError(t, err)

	caPEM, err := os.ReadFile(p.Peer.TLSCACert)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	conn, err := grpc.NewClient(p.Peer.Address, grpc.WithTransportCredentials(
		credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: p.Peer.ServerName, MinVersion: tls.VersionTLS12})))
	require.NoError(t, err)

	gw, err := client.Connect(xid, client.WithSign(sign), client.WithHash(hash.SHA256), client.WithClientConnection(conn),
		client.WithEvaluateTimeout(30*time.Second), client.WithEndorseTimeout(30*time.Second),
		client.WithSubmitTimeout(30*time.Second), client.WithCommitStatusTimeout(time.Minute))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = gw.Close()
		_ = conn.Close()
	})
	return gw
}

// submit runs a transaction to commit and returns its ID and status.
func submit(t *testing.T, c *client.Contract, fn string, opts ...client.ProposalOption) (string, *client.Status) {
	t.Helper()
	proposal, err := c.NewProposal(fn, opts...)
	require.NoError(t, err)
	tx, err := proposal.Endorse()
	require.NoError(t, err, "endorse %s", fn)
	commit, err := tx.Submit()
	require.NoError(t, err, "submit %s", fn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	status, err := commit.StatusWithContext(ctx)
	require.NoError(t, err, "commit status of %s", fn)
	return tx.TransactionID(), status
}

// endorsingMSPs reads a committed transaction from the ledger (qscc) and
// returns the MSP IDs of its endorsers and its validation code.
func endorsingMSPs(t *testing.T, gw *client.Gateway, channel, txID string) ([]string, peer.TxValidationCode) {
	t.Helper()
	raw, err := gw.GetNetwork(channel).GetContract("qscc").EvaluateTransaction("GetTransactionByID", channel, txID)
	require.NoError(t, err)
	var pt peer.ProcessedTransaction
	require.NoError(t, proto.Unmarshal(raw, &pt))
	var payload common.Payload
	require.NoError(t, proto.Unmarshal(pt.GetTransactionEnvelope().GetPayload(), &payload))
	var tx peer.Transaction
	require.NoError(t, proto.Unmarshal(payload.GetData(), &tx))
	require.Len(t, tx.GetActions(), 1)
	var cap peer.ChaincodeActionPayload
	require.NoError(t, proto.Unmarshal(tx.GetActions()[0].GetPayload(), &cap))
	var msps []string
	for _, e := range cap.GetAction().GetEndorsements() {
		var id msp.SerializedIdentity
		require.NoError(t, proto.Unmarshal(e.GetEndorser(), &id))
		msps = append(msps, id.GetMspid())
	}
	return msps, peer.TxValidationCode(pt.GetValidationCode())
}
