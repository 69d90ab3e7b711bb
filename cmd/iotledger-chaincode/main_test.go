package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode"
	"github.com/iotledger/iotledger/deploy/k8s"
)

func TestTLSIsOffUnlessKeyAndCertificateAreNamed(t *testing.T) {
	t.Setenv("CHAINCODE_TLS_KEY_FILE", "")
	t.Setenv("CHAINCODE_TLS_CERT_FILE", "")
	props, err := tlsProperties(envConfig(t))
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
			props, err := tlsProperties(envConfig(t))
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

func envConfig(t *testing.T) serverConfig {
	t.Helper()
	cfg, err := configFromEnv(os.Getenv)
	require.NoError(t, err)
	return cfg
}

// TestManifestEnvIsWhatTheServerReads checks deploy/k8s's chaincode server
// containers: every variable they set is one the server reads, the ones it
// needs as a service are there, and the server accepts their values.
func TestManifestEnvIsWhatTheServerReads(t *testing.T) {
	docs, err := k8s.Documents()
	require.NoError(t, err)
	var found int
	for _, d := range docs {
		for _, c := range d.Containers() {
			if c.Binary() != "iotledger-chaincode" {
				continue
			}
			found++
			t.Run(d.File+"/"+c.Name, func(t *testing.T) {
				require.Empty(t, c.Args, "the server takes no arguments")
				set := map[string]string{}
				for _, e := range c.Env {
					set[e.Name] = e.Value
					if e.FromRef {
						set[e.Name] = "iotledger_1:" + strings.Repeat("0", 64)
					}
				}
				read := map[string]bool{}
				cfg, err := configFromEnv(func(name string) string {
					read[name] = true
					return set[name]
				})
				require.NoError(t, err, "the server refuses the manifest's values")
				for name := range set {
					require.True(t, read[name], "%s sets %s, which the server never reads", d, name)
				}
				require.Equal(t, "0.0.0.0:9999", cfg.address)
				require.NotEmpty(t, cfg.id)
				require.NotEmpty(t, cfg.tlsCertFile)
				require.NotEmpty(t, cfg.tlsKeyFile)
				require.Contains(t, set, chaincode.EnvMaxClockSkew)
			})
		}
	}
	require.Equal(t, 1, found)
}

func TestConfigRefusesABadClockSkew(t *testing.T) {
	for _, v := range []string{"5", "-1m", "soon"} {
		_, err := configFromEnv(func(name string) string {
			if name == chaincode.EnvMaxClockSkew {
				return v
			}
			return ""
		})
		require.ErrorContains(t, err, chaincode.EnvMaxClockSkew)
	}
}
