package wire_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/client/hub/wire"
	"github.com/iotledger/iotledger/client/hub/wire/wiretest"
)

func TestTheHubSignsWithItsOwnHubIdentityOnly(t *testing.T) {
	ca := wiretest.NewCA(t, "ca.org1")
	files := func(role string) (string, string) {
		dir := t.TempDir()
		certPEM, keyPEM := ca.Issue(t, "id-"+role, role, wiretest.Epoch.AddDate(1, 0, 0))
		cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		require.NoError(t, os.WriteFile(cert, certPEM, 0o600))
		require.NoError(t, os.WriteFile(key, keyPEM, 0o600))
		return cert, key
	}
	s, err := wire.LoadHubSigner(files("hub"))
	require.NoError(t, err)
	require.NotNil(t, s)
	_, err = wire.LoadHubSigner(files("operator"))
	require.ErrorContains(t, err, `iotledger.role="operator": a hub runs as an identity with the "hub" role`)
	_, err = wire.LoadHubSigner("/nonexistent/cert.pem", "/nonexistent/key.pem")
	require.ErrorContains(t, err, "hub identity certificate")
}
