package client

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const validProfileJSON = `{
  "network": "iotledger", "channel": "iotledger", "chaincode": "iotledger",
  "org": "Org1", "mspId": "Org1MSP",
  "peer": {"address": "127.0.0.1:7051", "serverName": "peer0.org1.iotledger.local", "tlsCACert": "tls/ca.pem"},
  "ca": {"url": "https://127.0.0.1:7054", "tlsCACert": "/abs/ca.pem"},
  "identities": {
    "admin": {"mspId": "Org1MSP", "cert": "admin/cert.pem", "key": "admin/key.pem"},
    "hub": {"cert": "/abs/hub/cert.pem", "key": "/abs/hub/key.pem"}
  }
}`

func TestLoadProfileResolvesRelativePathsAgainstItsDirectory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "connection.json")
	require.NoError(t, os.WriteFile(path, []byte(validProfileJSON), 0o600))

	p, err := LoadProfile(path)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "tls/ca.pem"), p.Peer.TLSCACert)
	require.Equal(t, "/abs/ca.pem", p.CA.TLSCACert)
	admin, err := p.Identity("admin")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "admin/cert.pem"), admin.Cert)
}

func TestHubTLSPathsResolveAgainstTheProfilesDirectory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "connection.json")
	withHub := validProfileJSON[:len(validProfileJSON)-1] + `,"hubTLS":{"cert":"hub-tls/server.crt","key":"hub-tls/server.key","caCert":"/abs/org-ca.pem"}}`
	require.NoError(t, os.WriteFile(path, []byte(withHub), 0o600))
	p, err := LoadProfile(path)
	require.NoError(t, err)
	require.Equal(t, &HubTLS{Cert: filepath.Join(dir, "hub-tls/server.crt"), Key: filepath.Join(dir, "hub-tls/server.key"), CACert: "/abs/org-ca.pem"}, p.HubTLS)
}

func TestIdentityWithoutMSPIDInheritsTheProfiles(t *testing.T) {
	p, err := ParseProfile([]byte(validProfileJSON))
	require.NoError(t, err)
	hub, err := p.Identity("hub")
	require.NoError(t, err)
	require.Equal(t, "Org1MSP", hub.MSPID)
}

func TestUnknownIdentityNamesTheOnesAvailable(t *testing.T) {
	p, err := ParseProfile([]byte(validProfileJSON))
	require.NoError(t, err)
	_, err = p.Identity("operator")
	require.ErrorIs(t, err, ErrUnknownIdentity)
	require.ErrorContains(t, err, "admin, hub")
}

func TestInvalidProfilesAreRefusedNamingTheField(t *testing.T) {
	tests := []struct {
		name  string
		json  string
		field string
	}{
		{"missing channel", `{"chaincode":"c","mspId":"M","peer":{"address":"h:1","tlsCACert":"c"},"identities":{"a":{"cert":"c","key":"k"}}}`, "channel"},
		{"address without port", `{"channel":"c","chaincode":"c","mspId":"M","peer":{"address":"host","tlsCACert":"c"},"identities":{"a":{"cert":"c","key":"k"}}}`, "peer.address"},
		{"no identities", `{"channel":"c","chaincode":"c","mspId":"M","peer":{"address":"h:1","tlsCACert":"c"}}`, "identities"},
		{"identity without key", `{"channel":"c","chaincode":"c","mspId":"M","peer":{"address":"h:1","tlsCACert":"c"},"identities":{"a":{"cert":"c"}}}`, "identities.a.key"},
		{"identity of another MSP", `{"channel":"c","chaincode":"c","mspId":"M","peer":{"address":"h:1","tlsCACert":"c"},"identities":{"a":{"mspId":"X","cert":"c","key":"k"}}}`, "identities.a.mspId"},
		{"CA URL without scheme", `{"channel":"c","chaincode":"c","mspId":"M","peer":{"address":"h:1","tlsCACert":"c"},"ca":{"url":"h:1"},"identities":{"a":{"cert":"c","key":"k"}}}`, "ca.url"},
		{"peer TLS root twice", `{"channel":"c","chaincode":"c","mspId":"M","peer":{"address":"h:1","tlsCACert":"c","tlsCACertPEM":"x"},"identities":{"a":{"cert":"c","key":"k"}}}`, "peer.tlsCACertPEM"},
		{"peer TLS root that is no PEM", `{"channel":"c","chaincode":"c","mspId":"M","peer":{"address":"h:1","tlsCACertPEM":"x"},"identities":{"a":{"cert":"c","key":"k"}}}`, "peer.tlsCACertPEM"},
		{"CA TLS root that is no PEM", `{"channel":"c","chaincode":"c","mspId":"M","peer":{"address":"h:1","tlsCACert":"c"},"ca":{"url":"https://h:2","tlsCACertPEM":"x"},"identities":{"a":{"cert":"c","key":"k"}}}`, "ca.tlsCACertPEM"},
		{"hub TLS without its CA", `{"channel":"c","chaincode":"c","mspId":"M","peer":{"address":"h:1","tlsCACert":"c"},"identities":{"a":{"cert":"c","key":"k"}},"hubTLS":{"cert":"c","key":"k"}}`, "hubTLS.caCert"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseProfile([]byte(tt.json))
			var pe *ProfileError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, tt.field, pe.Field)
		})
	}
}

func TestUnknownFieldsAreRefused(t *testing.T) {
	_, err := ParseProfile([]byte(`{"channel":"c","chaincodee":"typo"}`))
	require.ErrorContains(t, err, "chaincodee")
}

func TestDuplicateKeysAndCaseVariantsAreRefused(t *testing.T) {
	for _, data := range []string{
		strings.Replace(validProfileJSON, `"channel": "iotledger",`, `"channel": "iotledger", "channel": "other",`, 1),
		strings.Replace(validProfileJSON, `"mspId": "Org1MSP",`, `"MSPID": "Org1MSP",`, 1),
	} {
		_, err := ParseProfile([]byte(data))
		require.Error(t, err)
	}
}

func TestSavedProfileLoadsBackUnchanged(t *testing.T) {
	p, err := ParseProfile([]byte(validProfileJSON))
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "connection.json")
	require.NoError(t, p.Save(path))
	back, err := LoadProfile(path)
	require.NoError(t, err)
	require.Equal(t, p.Identities["hub"], back.Identities["hub"])
	require.Equal(t, p.Peer.Address, back.Peer.Address)
}

func FuzzParseProfile(f *testing.F) {
	f.Add([]byte(validProfileJSON))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"identities":{"":{"cert":"c","key":"k"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProfile(data)
		if err != nil {
			return
		}
		require.NoError(t, p.Validate())
		for _, name := range p.IdentityNames() {
			_, err := p.Identity(name)
			require.NoError(t, err)
		}
	})
}
