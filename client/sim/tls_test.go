package sim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/iotledger/iotledger/client/hub"
	"github.com/iotledger/iotledger/client/hub/hubtest"
	"github.com/stretchr/testify/require"
)

// selfSigned makes a server certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hub"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func TestDevicesConnectOverTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	ledger := hubtest.NewLedger()
	h, err := hub.New(hub.Config{HubID: "tls-hub", MQTTAddr: "127.0.0.1:0", DataDir: t.TempDir(), Ledger: ledger,
		BatchWait: 20 * time.Millisecond, TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	require.NoError(t, err)
	require.NoError(t, h.Start(t.Context()))
	t.Cleanup(func() { _ = h.Close() })

	rep := runUntil(t, Config{Hub: h.MQTTAddr(), HubID: "tls-hub", Devices: 2, Rate: 50, Scenario: "air-quality",
		KeysDir: t.TempDir(), Enroller: ledger, TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
		func() bool { return len(ledger.Committed()) >= 5 })
	require.Positive(t, rep.Accepted)
	require.Empty(t, rep.Refused)

	// Without trusting the hub's certificate, nothing connects.
	rep, err = Run(t.Context(), Config{Hub: h.MQTTAddr(), HubID: "tls-hub", Devices: 1, Rate: 50, Scenario: "air-quality",
		KeysDir: t.TempDir(), Enroller: ledger, Duration: 300 * time.Millisecond, Prefix: "untrusting",
		TLS: &tls.Config{MinVersion: tls.VersionTLS12}})
	require.NoError(t, err)
	require.Zero(t, rep.Accepted)
}
