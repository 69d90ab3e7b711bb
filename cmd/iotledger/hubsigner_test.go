package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/client/hub/wire/wiretest"
)

func TestTheHubSignsWithItsOwnHubIdentityOnly(t *testing.T) {
	ca := wiretest.NewCA(t, "ca.org1")
	files := func(role string) client.IdentityFiles {
		dir := t.TempDir()
		certPEM, keyPEM := ca.Issue(t, "id-"+role, role, wiretest.Epoch.AddDate(1, 0, 0))
		id := client.IdentityFiles{MSPID: "Org1MSP", Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}
		require.NoError(t, os.WriteFile(id.Cert, certPEM, 0o600))
		require.NoError(t, os.WriteFile(id.Key, keyPEM, 0o600))
		return id
	}
	s, err := hubSigner(files("hub"))
	require.NoError(t, err)
	require.NotNil(t, s)
	_, err = hubSigner(files("operator"))
	require.ErrorContains(t, err, `iotledger.role="operator": a hub runs as an identity with the "hub" role`)
	_, err = hubSigner(client.IdentityFiles{Cert: "/nonexistent/cert.pem"})
	require.ErrorContains(t, err, "hub identity certificate")
}
