// Package wiretest is a throwaway org CA for tests, like the Fabric CA of an
// org of `iotledger network up`: it issues identities as Fabric CA does
// (ECDSA P-256, the iotledger.role in Fabric CA's attribute extension) —
// hubs sign commands with one — and TLS server certificates for hubs, so a
// device pins one root for both.
package wiretest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/attrmgr"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client/hub/wire"
)

// Epoch is when the test CAs' certificates become valid.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

var serial atomic.Int64

// CA is a test org CA.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	PEM  []byte // the root certificate a device is provisioned with
}

// NewCA makes a self-signed CA valid for ten years from Epoch.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: name},
		NotBefore: Epoch.Add(-time.Hour), NotAfter: Epoch.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{cert: cert, key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// Issue returns a certificate and PKCS#8 key (both PEM) for an identity
// with the given iotledger.role ("" for none), valid until notAfter.
func (ca *CA) Issue(t testing.TB, cn, role string, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: cn},
		NotBefore: Epoch.Add(-time.Hour), NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if role != "" {
		tmpl.ExtraExtensions = []pkix.Extension{{Id: attrmgr.AttrOID,
			Value: []byte(`{"attrs":{"hf.EnrollmentID":"` + cn + `","` + api.RoleAttribute + `":"` + role + `"}}`)}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})
}

// HubSigner issues a hub identity (valid as long as the CA) and returns its signer.
func (ca *CA) HubSigner(t testing.TB, name string) *wire.HubSigner {
	t.Helper()
	certPEM, keyPEM := ca.Issue(t, name, wire.HubRole, Epoch.AddDate(10, 0, 0))
	s, err := wire.NewHubSigner(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Pool is the pool a device pins to trust this CA alone.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// ServerCert issues a TLS server certificate for 127.0.0.1, ::1 and
// localhost (leaf only: devices hold the CA).
func (ca *CA) ServerCert(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: "hub"},
		NotBefore: Epoch.Add(-time.Hour), NotAfter: Epoch.AddDate(10, 0, 0),
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// ServerTLS is a hub's TLS configuration with a certificate of this CA.
func (ca *CA) ServerTLS(t testing.TB) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{ca.ServerCert(t)}, MinVersion: tls.VersionTLS12}
}

// Files writes a server certificate, its key and the CA certificate as
// PEM files in dir (for a hub started from the command line).
func (ca *CA) Files(t testing.TB, dir string) (cert, key, caCert string) {
	t.Helper()
	c := ca.ServerCert(t)
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, caCert = filepath.Join(dir, "hub.crt"), filepath.Join(dir, "hub.key"), filepath.Join(dir, "ca.crt")
	for path, data := range map[string][]byte{
		cert:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}),
		key:    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		caCert: ca.PEM,
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cert, key, caCert
}
