package identity

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/client/hub/wire/wiretest"
)

func parse(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(certPEM)
	require.NotNil(t, b)
	c, err := x509.ParseCertificate(b.Bytes)
	require.NoError(t, err)
	return c
}

func TestLookupMapsACertificateToItsProfileIdentityAndRole(t *testing.T) {
	ca := wiretest.NewCA(t, "ca.org1")
	dir := t.TempDir()
	p := &client.Profile{MSPID: "Org1MSP", Identities: map[string]client.IdentityFiles{}}
	certs := map[string]*x509.Certificate{}
	for name, role := range map[string]string{"operator": api.RoleOperator, "auditor": api.RoleAuditor, "hub": api.RoleHub, "admin": ""} {
		certPEM, keyPEM := ca.Issue(t, name, role, wiretest.Epoch.AddDate(1, 0, 0))
		f := client.IdentityFiles{Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+".key")}
		require.NoError(t, os.WriteFile(f.Cert, certPEM, 0o600))
		require.NoError(t, os.WriteFile(f.Key, keyPEM, 0o600))
		p.Identities[name] = f
		certs[name] = parse(t, certPEM)
	}
	d, err := NewDirectory(p)
	require.NoError(t, err)

	c, err := d.Lookup(certs["operator"])
	require.NoError(t, err)
	require.Equal(t, Caller{Name: "operator", MSPID: "Org1MSP", Role: api.RoleOperator, Subject: "CN=operator"}, c)
	c, err = d.Lookup(certs["auditor"])
	require.NoError(t, err)
	require.Equal(t, api.RoleAuditor, c.Role)

	strangerPEM, _ := ca.Issue(t, "operator", api.RoleOperator, wiretest.Epoch.AddDate(1, 0, 0))
	for _, tc := range []struct {
		name string
		cert *x509.Certificate
		want error
	}{
		{"hub", certs["hub"], ErrRoleRefused},
		{"no role", certs["admin"], ErrNoRole},
		{"same name and role, another certificate", parse(t, strangerPEM), ErrUnknownCertificate},
		{"none", nil, ErrNoCertificate},
	} {
		_, err := d.Lookup(tc.cert)
		require.True(t, errors.Is(err, tc.want), "%s: %v", tc.name, err)
	}
}

func TestNewDirectoryRefusesAProfileWithAnUnreadableCertificate(t *testing.T) {
	p := &client.Profile{MSPID: "Org1MSP", Identities: map[string]client.IdentityFiles{"operator": {Cert: filepath.Join(t.TempDir(), "missing.pem")}}}
	_, err := NewDirectory(p)
	require.ErrorContains(t, err, `identity "operator"`)
}

func TestNewDirectoryRefusesTwoIdentitiesWithOneCertificate(t *testing.T) {
	ca := wiretest.NewCA(t, "ca.org1")
	dir := t.TempDir()
	certPEM, keyPEM := ca.Issue(t, "operator", api.RoleOperator, wiretest.Epoch.AddDate(1, 0, 0))
	f := client.IdentityFiles{Cert: filepath.Join(dir, "op.pem"), Key: filepath.Join(dir, "op.key")}
	require.NoError(t, os.WriteFile(f.Cert, certPEM, 0o600))
	require.NoError(t, os.WriteFile(f.Key, keyPEM, 0o600))
	p := &client.Profile{MSPID: "Org1MSP", Identities: map[string]client.IdentityFiles{"operator": f, "operator-copy": f}}
	_, err := NewDirectory(p)
	require.ErrorContains(t, err, "hold the same certificate")
}
