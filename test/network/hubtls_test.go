package network_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/client/device"
	"github.com/iotledger/iotledger/network"
)

// The hub TLS certificate that `network up` has each org's CA issue is one
// a device pinning that org's CA accepts for a hub on loopback, and one that
// the other org's devices refuse.
func TestHubTLSCertificateIsIssuedByTheOrgCAForLoopback(t *testing.T) {
	orgs := testNet.Orgs()
	for i, org := range orgs {
		t.Run(org, func(t *testing.T) {
			p, err := testNet.Profile(org)
			require.NoError(t, err)
			require.NotNil(t, p.HubTLS, "the profile records the hub's TLS files")
			pair, err := tls.LoadX509KeyPair(p.HubTLS.Cert, p.HubTLS.Key)
			require.NoError(t, err)
			leaf, err := x509.ParseCertificate(pair.Certificate[0])
			require.NoError(t, err)

			roots, err := device.LoadRootCAs(p.HubTLS.CACert)
			require.NoError(t, err)
			for _, host := range []string{"127.0.0.1", "localhost"} {
				_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
				require.NoError(t, err, "verifies for %s against %s", host, p.HubTLS.CACert)
			}
			require.Empty(t, certAttrs(t, p.HubTLS.Cert)[network.RoleAttribute], "the TLS key holds no iotledger role")

			// A handshake as a device makes it: pinned to this org's CA it
			// connects, pinned to the other org's it refuses the hub.
			ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
			require.NoError(t, err)
			t.Cleanup(func() { _ = ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					_ = c.(*tls.Conn).Handshake()
					_, _ = io.Copy(io.Discard, c)
					_ = c.Close()
				}
			}()
			c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
			require.NoError(t, err)
			_ = c.Close()

			other, err := testNet.Profile(orgs[(i+1)%len(orgs)])
			require.NoError(t, err)
			otherRoots, err := device.LoadRootCAs(other.HubTLS.CACert)
			require.NoError(t, err)
			_, err = tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: otherRoots, MinVersion: tls.VersionTLS12})
			require.ErrorAs(t, err, new(x509.UnknownAuthorityError))
		})
	}
}
