package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/client/hub"
	"github.com/iotledger/iotledger/network"
)

func TestHubDefaultDataDirIsAPerUserStateDirOutsideTheNetworkStateDir(t *testing.T) {
	home := t.TempDir()
	tests := []struct {
		name     string
		xdg      string // XDG_STATE_HOME
		stateDir string // the network's; "" is network.DefaultStateDir()
		profile  *client.Profile
		want     string
		err      string
	}{
		{name: "XDG_STATE_HOME", xdg: filepath.Join(home, "xdg"), want: filepath.Join(home, "xdg", "iotledger", "hubs", "org1-hub1")},
		{name: "no XDG_STATE_HOME", want: filepath.Join(home, ".local", "state", "iotledger", "hubs", "org1-hub1")},
		{name: "relative XDG_STATE_HOME is ignored", xdg: "rel/state", want: filepath.Join(home, ".local", "state", "iotledger", "hubs", "org1-hub1")},
		{name: "named after the profile's org", profile: &client.Profile{Org: "Org2"}, want: filepath.Join(home, ".local", "state", "iotledger", "hubs", "org2-hub1")},
		{name: "a state dir that holds the default is refused", stateDir: filepath.Join(home, ".local"), err: "inside the network state directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HOME", home)
			t.Setenv("XDG_STATE_HOME", tc.xdg)
			t.Setenv("IOTLEDGER_STATE_DIR", "")
			lf := ledgerFlags{stateDir: tc.stateDir, org: "Org1"}
			if lf.stateDir == "" {
				lf.stateDir = network.DefaultStateDir()
			}
			o := hubOptions{hubID: "hub1"}
			got, err := o.dataDir(lf, tc.profile)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				require.ErrorContains(t, err, "pass --data")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.False(t, within(lf.stateDir, got), "%s is inside the network state dir %s", got, lf.stateDir)
		})
	}
	// --data is taken as given.
	o := hubOptions{hubID: "hub1", data: "/srv/hub1"}
	got, err := o.dataDir(ledgerFlags{stateDir: "/srv"}, nil)
	require.NoError(t, err)
	require.Equal(t, "/srv/hub1", got)
}

func TestWithin(t *testing.T) {
	for _, tc := range []struct {
		dir, path string
		want      bool
	}{
		{"/a/b", "/a/b", true},
		{"/a/b", "/a/b/c", true},
		{"/a/b", "/a/bc", false},
		{"/a/b", "/a", false},
		{"/a/b", "/x/y", false},
	} {
		require.Equal(t, tc.want, within(tc.dir, tc.path), "%s in %s", tc.path, tc.dir)
	}
}

func runHubCLI(t *testing.T, output string, args ...string) (string, error) {
	t.Helper()
	g := &globalOptions{output: output, logLevel: "error"}
	root := &cobra.Command{Use: "iotledger", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newHubCmd(g))
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

// parkOutbox makes a hub outbox in dir with the given devices' readings
// 1..n parked, as a hub leaves them when the ledger did not know the devices.
func parkOutbox(t *testing.T, dir string, n int, devices ...string) {
	t.Helper()
	ob, err := hub.OpenOutbox(filepath.Join(dir, "outbox.db"))
	require.NoError(t, err)
	defer func() { require.NoError(t, ob.Close()) }()
	for _, d := range devices {
		for seq := uint64(1); seq <= uint64(n); seq++ {
			_, err := ob.Append(hub.Record{Device: d, Seq: seq, Leaf: reading.Hash{byte(seq)},
				Envelope: reading.Envelope{Payload: []byte("p"), Signature: []byte("s")}})
			require.NoError(t, err)
		}
	}
	b, err := ob.TakeBatch(len(devices)*n, time.Now())
	require.NoError(t, err)
	var ids []uint64
	for _, r := range b.Readings {
		ids = append(ids, r.ID)
	}
	parked, err := ob.Park(b.ID, ids, hub.ParkReasonNotFound, `NOT_FOUND: device "x" is not enrolled`, time.Now())
	require.NoError(t, err)
	require.Equal(t, len(ids), parked)
}

func outboxCounts(t *testing.T, dir string) (pending, parked int64) {
	t.Helper()
	ob, err := hub.OpenOutbox(filepath.Join(dir, "outbox.db"))
	require.NoError(t, err)
	defer func() { require.NoError(t, ob.Close()) }()
	return ob.Pending(), ob.Parked()
}

func TestHubParkedVerbsListRetryAndDropParkedReadings(t *testing.T) {
	dir := t.TempDir()
	parkOutbox(t, dir, 3, "cold-a", "cold-b")

	out, err := runHubCLI(t, "table", "hub", "parked", "list", "--data", dir)
	require.NoError(t, err)
	require.Contains(t, out, "DEVICE")
	require.Regexp(t, `cold-a\s+3\s+1-3\s+not_found`, out)
	require.Regexp(t, `cold-b\s+3\s+1-3\s+not_found`, out)

	out, err = runHubCLI(t, "json", "hub", "parked", "list", "--data", dir)
	require.NoError(t, err)
	var listed []parkedDevice
	require.NoError(t, json.Unmarshal([]byte(out), &listed), out)
	require.Len(t, listed, 2)
	require.Equal(t, parkedDevice{Device: "cold-a", Readings: 3, FirstSeq: 1, LastSeq: 3, Reason: hub.ParkReasonNotFound,
		Since: listed[0].Since, Error: `NOT_FOUND: device "x" is not enrolled`}, listed[0])

	out, err = runHubCLI(t, "table", "hub", "parked", "retry", "--data", dir, "--device", "cold-a")
	require.NoError(t, err)
	require.Contains(t, out, "3 parked readings back in the outbox")
	pending, parked := outboxCounts(t, dir)
	require.Equal(t, int64(3), pending)
	require.Equal(t, int64(3), parked)

	_, err = runHubCLI(t, "table", "hub", "parked", "drop", "--data", dir)
	require.ErrorContains(t, err, "--device ID (repeatable) or --all")
	_, parked = outboxCounts(t, dir)
	require.Equal(t, int64(3), parked, "deleted without being told which")

	out, err = runHubCLI(t, "table", "hub", "parked", "drop", "--data", dir, "--all")
	require.NoError(t, err)
	require.Contains(t, out, "deleted 3 parked readings")
	pending, parked = outboxCounts(t, dir)
	require.Equal(t, int64(3), pending, "retried readings are not parked ones")
	require.Zero(t, parked)

	out, err = runHubCLI(t, "table", "hub", "parked", "list", "--data", dir)
	require.NoError(t, err)
	require.Contains(t, out, "no parked readings in "+dir)
}

func TestHubParkedVerbsFindTheDefaultDataDirOrSayWhatIsMissing(t *testing.T) {
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	dir := filepath.Join(state, "iotledger", "hubs", "org2-hub7")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	parkOutbox(t, dir, 2, "cold-a")
	out, err := runHubCLI(t, "table", "hub", "parked", "list", "--hub-id", "hub7", "--org", "Org2")
	require.NoError(t, err)
	require.Regexp(t, `cold-a\s+2\s+1-2`, out)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"hub", "parked", "list"}, "--data DIR, or --hub-id NAME"},
		{[]string{"hub", "parked", "list", "--hub-id", "a b"}, "invalid --hub-id"},
		{[]string{"hub", "parked", "list", "--hub-id", "hub8"}, "no hub outbox at " + filepath.Join(state, "iotledger", "hubs", "org1-hub8", "outbox.db")},
		{[]string{"hub", "parked", "drop", "--hub-id", "hub7", "--org", "Org2", "--all", "--device", "cold-a"}, "--device and --all go separately"},
	} {
		_, err := runHubCLI(t, "table", tc.args...)
		require.ErrorContains(t, err, tc.want, tc.args)
	}
}
