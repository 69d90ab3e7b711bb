package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/deploy/ccaas"
)

// writeTestPEM writes a self-signed CA certificate and its key into dir.
func writeTestPEM(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "chaincode CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	k, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}), 0o600))
	return certFile, keyFile
}

func TestChaincodePackageWritesTheCCaaSPackageAndPrintsItsID(t *testing.T) {
	dir := t.TempDir()
	ca, key := writeTestPEM(t, dir)
	caPEM, err := os.ReadFile(ca)
	require.NoError(t, err)
	cases := []struct {
		name       string
		args       []string
		tls, mtls  bool
		perm       os.FileMode
		wantInText string
	}{
		{"plaintext", nil, false, false, 0o644, "(plaintext)"},
		{"TLS", []string{"--tls-root-cert", ca}, true, false, 0o644, "(TLS)"},
		{"mutual TLS", []string{"--tls-root-cert", ca, "--tls-client-cert", ca, "--tls-client-key", key}, true, true, 0o600, "(mutual TLS)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "pkg.tar.gz")
			args := append([]string{"chaincode", "package", "--ccaas", "--address", "iotledger-cc.org1.svc:9999", "--label", "iotledger_2", "--out", out}, tc.args...)
			text, err := runCLI(t, args...)
			require.NoError(t, err, text)

			pkg, err := os.ReadFile(out)
			require.NoError(t, err)
			p, err := ccaas.Parse(pkg)
			require.NoError(t, err)
			require.Equal(t, ccaas.Metadata{Type: "ccaas", Label: "iotledger_2"}, p.Metadata)
			require.Equal(t, "iotledger-cc.org1.svc:9999", p.Connection.Address)
			require.Equal(t, "10s", p.Connection.DialTimeout)
			require.Equal(t, tc.tls, p.Connection.TLSRequired)
			require.Equal(t, tc.mtls, p.Connection.ClientAuthRequired)
			if tc.tls {
				require.Equal(t, string(caPEM), p.Connection.RootCert)
			}
			require.Contains(t, text, "package ID: "+p.ID+"\n")
			require.Contains(t, text, tc.wantInText)
			st, err := os.Stat(out)
			require.NoError(t, err)
			require.Equal(t, tc.perm, st.Mode().Perm())

			js, err := runCLI(t, append(args, "-o", "json")...)
			require.NoError(t, err, js)
			var res chaincodePackageResult
			require.NoError(t, json.Unmarshal([]byte(js), &res))
			require.Equal(t, chaincodePackageResult{PackageID: p.ID, Label: "iotledger_2", File: out,
				Address: "iotledger-cc.org1.svc:9999", TLS: tc.tls, ClientAuth: tc.mtls}, res)
		})
	}
}

func TestChaincodePackageRefusesBadFlagsAndWritesNothing(t *testing.T) {
	dir := t.TempDir()
	ca, key := writeTestPEM(t, dir)
	notPEM := filepath.Join(dir, "not.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("hello"), 0o600))
	base := []string{"chaincode", "package", "--ccaas", "--address", "cc:9999"}
	cases := []struct {
		name string
		args []string
		err  string
	}{
		{"no --ccaas", []string{"chaincode", "package", "--address", "cc:9999"}, "--ccaas is required"},
		{"no --address", []string{"chaincode", "package", "--ccaas"}, "--address is required"},
		{"address without port", []string{"chaincode", "package", "--ccaas", "--address", "cc"}, "host:port"},
		{"bad label", append(slices.Clone(base), "--label", "iot ledger"), "label"},
		{"zero dial timeout", append(slices.Clone(base), "--dial-timeout", "0s"), "--dial-timeout"},
		{"client cert without key", append(slices.Clone(base), "--tls-root-cert", ca, "--tls-client-cert", ca), "go together"},
		{"client cert without root", append(slices.Clone(base), "--tls-client-cert", ca, "--tls-client-key", key), "needs --tls-root-cert"},
		{"missing root cert file", append(slices.Clone(base), "--tls-root-cert", filepath.Join(dir, "missing.pem")), "--tls-root-cert"},
		{"root cert not PEM", append(slices.Clone(base), "--tls-root-cert", notPEM), "root_cert is not PEM"},
		{"stray argument", append(slices.Clone(base), "extra"), "unknown command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "pkg.tar.gz")
			args := tc.args
			if !strings.Contains(tc.name, "stray") {
				args = append(slices.Clone(args), "--out", out)
			}
			_, err := runCLI(t, args...)
			require.ErrorContains(t, err, tc.err)
			_, statErr := os.Stat(out)
			require.ErrorIs(t, statErr, os.ErrNotExist, "nothing is written on bad input")
		})
	}
	_, err := runCLI(t, "chaincode", "package", "--ccaas", "--address", "cc:9999")
	require.ErrorContains(t, err, "--out is required")
}
