package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/network"
)

// crashedNetwork writes the state of a network whose only process is gone.
func crashedNetwork(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	state := map[string]any{
		"version": 1, "network": "iotledger", "channel": "iotledger", "stateDir": dir,
		"nodes": []map[string]any{{
			"name": "orderer1", "kind": "orderer", "command": "orderer", "env": []string{}, "dir": dir,
			"log": filepath.Join(dir, "logs", "orderer1.log"), "ports": map[string]int{"listen": 1, "operations": 2},
			"pid": 1 << 30,
		}},
	}
	data, err := json.Marshal(state)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "network.json"), data, 0o600))
	return dir
}

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestNetworkStatusFailsAndNamesTheNodeThatIsDown(t *testing.T) {
	dir := crashedNetwork(t)
	out, err := runCLI(t, "network", "status", "--state-dir", dir)
	require.ErrorIs(t, err, errNetworkUnhealthy)
	require.ErrorContains(t, err, "orderer1 (down")
	require.ErrorContains(t, err, "orderer1.log")
	require.Contains(t, out, "orderer1")
	require.Contains(t, out, "down")
}

func TestNetworkStatusJSONIsMachineReadable(t *testing.T) {
	dir := crashedNetwork(t)
	out, err := runCLI(t, "network", "status", "--state-dir", dir, "-o", "json")
	require.ErrorIs(t, err, errNetworkUnhealthy)
	var st network.Status
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.False(t, st.Healthy)
	require.Len(t, st.Nodes, 1)
	require.Equal(t, network.HealthDown, st.Nodes[0].Health)
}

func TestNetworkVerbsWithoutANetworkSayHowToStartOne(t *testing.T) {
	for _, verb := range []string{"status", "down", "deploy"} {
		t.Run(verb, func(t *testing.T) {
			_, err := runCLI(t, "network", verb, "--state-dir", t.TempDir())
			require.ErrorIs(t, err, network.ErrNotUp)
			require.ErrorContains(t, err, "iotledger network up")
		})
	}
}

func TestNetworkUpRefusesBadFlagsBeforeDoingAnything(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "net")
	for name, args := range map[string][]string{
		"orderers": {"--orderers", "12"},
		"policy":   {"--policy", "everybody"},
		"batch":    {"--batch-timeout", "1ms"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := runCLI(t, append([]string{"network", "up", "--state-dir", dir}, args...)...)
			require.Error(t, err)
			_, statErr := os.Stat(dir)
			require.ErrorIs(t, statErr, os.ErrNotExist, "nothing was created")
		})
	}
}
