package testnet

import (
	"os"
	"testing"
	"time"

	gw "github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-gateway/pkg/hash"
	"github.com/hyperledger/fabric-gateway/pkg/identity"
	"github.com/stretchr/testify/require"

	iotclient "github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/network"
)

// Gateway opens a plain fabric-gateway connection to an org's peer as one
// of the identities of the org's connection profile, for tests that drive
// Fabric directly (naming the endorsing orgs of a proposal, say). It is
// closed when the test ends.
func Gateway(t testing.TB, n *network.Network, org, name string) *gw.Gateway {
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
	conn, err := iotclient.NewConnection(p)
	require.NoError(t, err)
	g, err := gw.Connect(xid, gw.WithSign(sign), gw.WithHash(hash.SHA256), gw.WithClientConnection(conn),
		gw.WithEvaluateTimeout(30*time.Second), gw.WithEndorseTimeout(30*time.Second),
		gw.WithSubmitTimeout(30*time.Second), gw.WithCommitStatusTimeout(time.Minute))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = g.Close()
		_ = conn.Close()
	})
	return g
}
