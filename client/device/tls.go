package device

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
)

// LoadRootCAs reads a PEM bundle of the CA certificates a device pins: for
// a hub of a network started by `iotledger network up`, the org's CA
// (recorded as the hub's CA in network.json, see docs/protocol.md §2).
func LoadRootCAs(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("hub CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("hub CA %s holds no PEM certificate", path)
	}
	return pool, nil
}

// clientTLS is the TLS a device speaks: the hub's certificate must chain to
// one of the pinned CAs and name the host the device dials (or ServerName).
// The system roots are never consulted.
func clientTLS(cfg Config) *tls.Config {
	name := cfg.ServerName
	if name == "" {
		name, _, _ = net.SplitHostPort(cfg.Hub)
	}
	return &tls.Config{RootCAs: cfg.RootCAs, ServerName: name, MinVersion: tls.VersionTLS12}
}
