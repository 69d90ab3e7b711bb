// Package ccp_test runs the CLI, a hub and an index on a real network
// given only a Fabric common connection profile (exported by `iotledger
// network profile --format ccp`, as another Fabric operator would hand it
// over) and an overlay with the chaincode and the identities.
package ccp_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/client/device"
	"github.com/iotledger/iotledger/client/hub"
	"github.com/iotledger/iotledger/index"
	"github.com/iotledger/iotledger/network"
	"github.com/iotledger/iotledger/test/testnet"
)

var (
	fabric       *network.Network
	iotledgerBin string
)

func TestMain(m *testing.M) { os.Exit(testnet.RunWithCLI(m, &fabric, &iotledgerBin)) }

const waitFor = 3 * time.Minute

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	out, err := exec.CommandContext(ctx, iotledgerBin, args...).CombinedOutput()
	return string(out), err
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// start runs a long-lived iotledger verb until the test ends.
func start(t *testing.T, logPath string, args ...string) {
	t.Helper()
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(iotledgerBin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	_ = logFile.Close()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s:\n%s", logPath, b)
		}
	})
}

// overlay writes what a CCP lacks, from the network's own profile: the
// chaincode, the identities and the hubs' TLS files. The channel comes from
// the CCP.
func overlay(t *testing.T, dir string, p *client.Profile) string {
	t.Helper()
	o := map[string]any{"chaincode": p.Chaincode, "identities": map[string]client.IdentityFiles{
		"operator": p.Identities["operator"], "hub": p.Identities["hub"], "auditor": p.Identities["auditor"],
	}, "hubTLS": p.HubTLS}
	b, err := json.MarshalIndent(o, "", "  ")
	require.NoError(t, err)
	path := filepath.Join(dir, "iotledger-overlay.json")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

func TestCLIHubAndIndexRunOnACommonConnectionProfile(t *testing.T) {
	dir := t.TempDir()
	state := fabric.StateDir()
	native, err := fabric.Profile("Org1")
	require.NoError(t, err)

	// The export: JSON and YAML, both Fabric CCPs without any identity.
	ccpJSON, ccpYAML := filepath.Join(dir, "connection-org1.json"), filepath.Join(dir, "connection-org1.yaml")
	out, err := run(t, "network", "profile", "--state-dir", state, "--org", "Org1", "--format", "ccp", "--out", ccpJSON)
	require.NoError(t, err, out)
	out, err = run(t, "network", "profile", "--state-dir", state, "--org", "Org1", "--format", "ccp-yaml", "--out", ccpYAML)
	require.NoError(t, err, out)
	for _, f := range []string{ccpJSON, ccpYAML} {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		format, err := client.DetectProfileFormat(b)
		require.NoError(t, err)
		require.Equal(t, client.FormatCCP, format)
		require.NotContains(t, string(b), "PRIVATE KEY")
	}
	ov := overlay(t, dir, native)

	// Without the overlay the CLI says what is missing and how to give it.
	out, err = run(t, "device", "list", "--profile", ccpJSON)
	require.Error(t, err)
	require.Contains(t, out, "chaincode")
	require.Contains(t, out, "--profile-overlay")

	// An operator enrolls a device through the CCP; the CLI reads it back
	// through the YAML one.
	id := fmt.Sprintf("ccp-dev-%d", time.Now().UnixNano())
	signer, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	pubPath := filepath.Join(dir, "device.pub.pem")
	require.NoError(t, os.WriteFile(pubPath, []byte(signer.Public().PEM()), 0o600))
	out, err = run(t, "device", "enroll", "--profile", ccpJSON, "--profile-overlay", ov, "--id", id, "--type", "reefer-sensor",
		"--public-key", pubPath, "--activate", "-o", "json")
	require.NoError(t, err, out)
	out, err = run(t, "device", "get", id, "--profile", ccpYAML, "--profile-overlay", ov, "-o", "json")
	require.NoError(t, err, out)
	var got api.Device
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	require.Equal(t, id, got.ID)
	require.Equal(t, native.MSPID, got.Owner)
	require.Equal(t, api.StatusActive, got.Status)

	// The index follows the channel through the CCP, verifying against the
	// anchor of the network's genesis block.
	anchor := filepath.Join(dir, "anchor.json")
	out, err = run(t, "network", "trust-anchor", "--state-dir", state)
	require.NoError(t, err, out)
	require.NoError(t, os.WriteFile(anchor, []byte(out), 0o600))
	db := "sqlite:" + filepath.Join(dir, "index.db")
	start(t, filepath.Join(dir, "index.log"), "index", "--profile", ccpJSON, "--profile-overlay", ov, "--identity", "auditor",
		"--anchor", anchor, "--db", db, "--log-level", "debug")

	// The hub runs on the YAML CCP, over TLS with the overlay's hubTLS.
	const hubID = "hub-ccp"
	mqttAddr, httpAddr := freeAddr(t), freeAddr(t)
	start(t, filepath.Join(dir, "hub.log"), "hub", "--profile", ccpYAML, "--profile-overlay", ov, "--identity", "hub",
		"--hub-id", hubID, "--mqtt", mqttAddr, "--http", httpAddr, "--data", filepath.Join(dir, "hub-data"), "--log-level", "debug")
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err != nil {
			return false
		}
		defer func() { _ = resp.Body.Close() }()
		var h hub.Health
		return json.NewDecoder(resp.Body).Decode(&h) == nil && h.OK
	}, waitFor, 200*time.Millisecond, "the hub did not become healthy")

	caPEM, err := os.ReadFile(native.HubTLS.CACert)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(caPEM))
	d, err := device.New(device.Config{ID: id, Signer: signer, Hub: mqttAddr, HubID: hubID, RootCAs: roots})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	require.NoError(t, d.Connect(ctx))
	celsius := 4.5
	seq, err := d.Publish(ctx, reading.Payload{Timestamp: time.Now().UnixMilli(),
		Values: []reading.Value{{Name: "temperature", Unit: "Cel", Number: &celsius}}})
	require.NoError(t, err)

	// The reading the hub committed is in the index.
	var page index.ReadingPage
	require.Eventually(t, func() bool {
		out, err := run(t, "telemetry", "list", id, "--index", db, "--profile", ccpJSON, "--profile-overlay", ov, "-o", "json")
		if err != nil || json.Unmarshal([]byte(out), &page) != nil {
			return false
		}
		return len(page.Readings) == 1
	}, waitFor, time.Second, "the index never served the hub's reading")
	require.Equal(t, seq, page.Readings[0].Seq)
	require.NotEmpty(t, page.Readings[0].BatchID)
	require.True(t, strings.HasPrefix(page.Readings[0].Device, "ccp-dev-"))
}
