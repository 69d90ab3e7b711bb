// Package demo_test runs `iotledger demo` end to end, as `make demo` does,
// on a network of its own, so the command a newcomer types first keeps working.
package demo_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDemoRunsEndToEndAndTearsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Fabric network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	bin := filepath.Join(t.TempDir(), "iotledger")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/iotledger/iotledger/cmd/iotledger")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build: %s", out)

	state := filepath.Join(t.TempDir(), "net")
	var stdout, stderr bytes.Buffer
	demo := exec.CommandContext(ctx, bin, "demo", "--state-dir", state, "--duration", "20s", "--devices", "2")
	demo.Stdout, demo.Stderr = &stdout, &stderr
	err = demo.Run()
	t.Logf("demo output:\n%s", stdout.String())
	require.NoError(t, err, "demo failed: %s", stderr.String())

	text := stdout.String()
	for _, want := range []string{
		"received command",                      // the rule's command reached the device over MQTT
		"acknowledged it (signed with its key)", // and its ack went back
		"was quarantined",                       // the quarantine rule suspended and disconnected a device
		"after the revocation was submitted",    // revocation cut the device off
		"it tries to reconnect: hub refused",    // and it cannot come back
		"refused (ACCESS_DENIED)",               // the other org cannot read what was not shared
		"index follows the channel",             // the hospital's index serves its readings
		"verified offline in",                   // an outsider checked the receipt with the anchor alone
		"Tearing the network down",
	} {
		require.Contains(t, text, want)
	}
	require.NotContains(t, text, "NOT AS EXPECTED")

	committed := regexp.MustCompile(`committed on the ledger\s+(\d+)`).FindStringSubmatch(text)
	require.Len(t, committed, 2, "summary has the committed count")
	n, err := strconv.Atoi(committed[1])
	require.NoError(t, err)
	require.Greater(t, n, 10, "simulated devices' readings reached the ledger")

	// The network is gone; the receipt still verifies, offline, from the CLI.
	verify := exec.CommandContext(ctx, bin, "receipt", "verify", filepath.Join(filepath.Dir(state), "demo-receipt.json"), "--anchor", filepath.Join(filepath.Dir(state), "demo-anchor.json"))
	out, err = verify.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "VERIFIED")
	require.Contains(t, string(out), "Org1MSP, Org2MSP")

	_, err = os.Stat(filepath.Join(state, "network.json"))
	require.True(t, os.IsNotExist(err), "the demo removed its network's state")
}
