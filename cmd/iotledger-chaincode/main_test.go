package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTLSIsOffUnlessKeyAndCertificateAreNamed(t *testing.T) {
	t.Setenv("CHAINCODE_TLS_KEY_FILE", "")
	t.Setenv("CHAINCODE_TLS_CERT_FILE", "")
	props, err := tlsProperties()
	require.NoError(t, err)
	require.True(t, props.Disabled)
}

func TestTLSFilesAreReadAndMissingOnesNamed(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	key, cert, ca := write("key.pem", "KEY"), write("cert.pem", "CERT"), write("ca.pem", "CA")
	missing := filepath.Join(dir, "missing.pem")
	cases := []struct {
		name          string
		key, cert, ca string
		err           string
	}{
		{"key and certificate", key, cert, "", ""},
		{"with client CA", key, cert, ca, ""},
		{"missing key", missing, cert, "", "CHAINCODE_TLS_KEY_FILE"},
		{"missing certificate", key, missing, "", "CHAINCODE_TLS_CERT_FILE"},
		{"certificate not named", key, "", "", "CHAINCODE_TLS_CERT_FILE"},
		{"missing client CA", key, cert, missing, "CHAINCODE_TLS_CLIENT_CA_CERT_FILE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CHAINCODE_TLS_KEY_FILE", tc.key)
			t.Setenv("CHAINCODE_TLS_CERT_FILE", tc.cert)
			t.Setenv("CHAINCODE_TLS_CLIENT_CA_CERT_FILE", tc.ca)
			props, err := tlsProperties()
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.False(t, props.Disabled)
			require.Equal(t, []byte("KEY"), props.Key)
			require.Equal(t, []byte("CERT"), props.Cert)
			if tc.ca != "" {
				require.Equal(t, []byte("CA"), props.ClientCACerts)
			}
		})
	}
}
