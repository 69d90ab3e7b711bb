package network_test

import (
	"context"
	"testing"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/iotledger/iotledger/network"
	"github.com/iotledger/iotledger/test/testnet"
)

// connect opens a Fabric gateway to an org's peer as one of the identities
// of the org's connection profile.
func connect(t *testing.T, n *network.Network, org, name string) *client.Gateway {
	t.Helper()
	return testnet.Gateway(t, n, org, name)
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
