package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/client/device/devicetest"
	"github.com/iotledger/iotledger/client/hub"
	"github.com/iotledger/iotledger/client/hub/hubtest"
)

// writeProfile saves a connection profile whose identities point at files
// that do not exist: enough for the hub to get as far as its TLS checks,
// which come before it reads its identity or dials the ledger.
func writeProfile(t *testing.T, hubTLS *client.HubTLS) string {
	t.Helper()
	dir := t.TempDir()
	p := &client.Profile{
		Network: "iotledger", Channel: "iotledger", Chaincode: "iotledger", Org: "Org1", MSPID: "Org1MSP",
		Peer:       client.PeerEndpoint{Address: "127.0.0.1:1", ServerName: "peer0", TLSCACert: filepath.Join(dir, "tlsca.pem")},
		Identities: map[string]client.IdentityFiles{"hub": {Cert: filepath.Join(dir, "none.pem"), Key: filepath.Join(dir, "none.key")}},
		HubTLS:     hubTLS,
	}
	path := filepath.Join(dir, "connection.json")
	require.NoError(t, p.Save(path))
	return path
}

func TestHubRefusesPlaintextWithoutTheFlag(t *testing.T) {
	_, err := runHubSimCLI(t, "hub", "--hub-id", "h", "--profile", writeProfile(t, nil))
	require.ErrorContains(t, err, "no TLS certificate for the hub")
	require.ErrorContains(t, err, "--insecure-plaintext")
}

func TestHubRefusesPlaintextOffLoopbackWithoutTheSecondFlag(t *testing.T) {
	noNet := filepath.Join(t.TempDir(), "nothing-here")
	for _, addr := range []string{"0.0.0.0:1883", ":1883", "[::]:1883", "192.168.1.20:1883", "hub.example:1883"} {
		out, err := runHubSimCLI(t, "hub", "--hub-id", "h", "--insecure-plaintext", "--mqtt", addr, "--state-dir", noNet)
		require.ErrorContains(t, err, "not a loopback address", addr)
		require.ErrorContains(t, err, "--allow-plaintext-on-network", addr)
		require.NotContains(t, out, "WARNING", "refused before anything else: %s", addr)
	}
	// With the second flag the address passes (and the hub goes on to look
	// for its network).
	out, err := runHubSimCLI(t, "hub", "--hub-id", "h", "--insecure-plaintext", "--allow-plaintext-on-network",
		"--mqtt", "0.0.0.0:1883", "--state-dir", noNet)
	require.ErrorContains(t, err, "no network at")
	require.Contains(t, out, "WARNING: serving MQTT without TLS on 0.0.0.0:1883")
}

func TestHubWarnsWhenItServesPlaintext(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:1883", "localhost:1883", "[::1]:1883"} {
		out, err := runHubSimCLI(t, "hub", "--hub-id", "h", "--insecure-plaintext", "--mqtt", addr,
			"--state-dir", filepath.Join(t.TempDir(), "nothing-here"))
		require.ErrorContains(t, err, "no network at", addr)
		require.Contains(t, out, "WARNING: serving MQTT without TLS on "+addr)
	}
}

func TestHubFindsItsCertificateInTheProfile(t *testing.T) {
	ca := devicetest.NewCA(t, "org1 CA")
	cert, key, caCert := ca.Files(t, t.TempDir())
	out, err := runHubSimCLI(t, "hub", "--hub-id", "h", "--profile", writeProfile(t, &client.HubTLS{Cert: cert, Key: key, CACert: caCert}))
	// Past TLS, the hub reads its identity, which this profile lacks.
	require.ErrorContains(t, err, "hub identity certificate")
	require.NotContains(t, out, "WARNING")

	// A profile whose certificate is missing stops the hub with its path.
	_, err = runHubSimCLI(t, "hub", "--hub-id", "h", "--profile",
		writeProfile(t, &client.HubTLS{Cert: cert + ".gone", Key: key, CACert: caCert}))
	require.ErrorContains(t, err, "the profile's hubTLS")
	require.ErrorContains(t, err, cert+".gone")

	// --tls-cert/--tls-key win over the profile.
	_, err = runHubSimCLI(t, "hub", "--hub-id", "h", "--tls-cert", "/nonexistent/hub.crt", "--tls-key", key,
		"--profile", writeProfile(t, &client.HubTLS{Cert: cert, Key: key, CACert: caCert}))
	require.ErrorContains(t, err, "--tls-cert/--tls-key")
}

func TestHubAndSimTLSFlagsRefuseContradictions(t *testing.T) {
	keys := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"hub", "--hub-id", "h", "--insecure-plaintext", "--tls-cert", "c", "--tls-key", "k"}, "choose TLS or plaintext"},
		{[]string{"hub", "--hub-id", "h", "--allow-plaintext-on-network"}, "goes with --insecure-plaintext"},
		{[]string{"hub", "--hub-id", "h", "--insecure-plaintext", "--mqtt", "1883"}, "invalid --mqtt"},
		{[]string{"sim", "--hub-id", "h", "--keys", keys, "--insecure-plaintext", "--ca", "ca.pem"}, "choose TLS or plaintext"},
		{[]string{"sim", "--hub-id", "h", "--keys", keys, "--ca", filepath.Join(keys, "missing.pem")}, "--ca"},
	} {
		_, err := runHubSimCLI(t, tc.args...)
		require.ErrorContains(t, err, tc.want, "%v", tc.args)
	}
}

func TestSimPinsTheCAOfTheOrgsProfileByDefault(t *testing.T) {
	keys := t.TempDir()
	_, err := runHubSimCLI(t, "sim", "--hub-id", "h", "--keys", keys, "--state-dir", filepath.Join(t.TempDir(), "nothing-here"))
	require.ErrorContains(t, err, "no network at")
	require.ErrorContains(t, err, "--ca")

	_, err = runHubSimCLI(t, "sim", "--hub-id", "h", "--keys", keys, "--profile", writeProfile(t, nil))
	require.ErrorContains(t, err, "no hubTLS")

	// The profile's CA is read (and must be a certificate).
	ca := devicetest.NewCA(t, "org1 CA")
	cert, key, caCert := ca.Files(t, t.TempDir())
	require.NoError(t, os.WriteFile(caCert, []byte("not a certificate"), 0o600))
	_, err = runHubSimCLI(t, "sim", "--hub-id", "h", "--keys", keys, "--profile",
		writeProfile(t, &client.HubTLS{Cert: cert, Key: key, CACert: caCert}))
	require.ErrorContains(t, err, "hubTLS.caCert")
}

func TestSimConnectsOverTLSPinningTheProfilesCA(t *testing.T) {
	h, ca := devicetest.StartHub(t, hub.Config{HubID: "h", Ledger: hubtest.NewLedger()})
	cert, key, caCert := ca.Files(t, t.TempDir())
	out, err := runHubSimCLI(t, "sim", "--hub", h.MQTTAddr(), "--hub-id", "h", "--keys", t.TempDir(), "--devices", "1",
		"--duration", "1s", "--profile", writeProfile(t, &client.HubTLS{Cert: cert, Key: key, CACert: caCert}))
	require.NoError(t, err)
	// The TLS handshake passed; the hub then refused the unenrolled device's token.
	require.Contains(t, out, "hub refused the connection")
	require.NotContains(t, out, "certificate")
}
