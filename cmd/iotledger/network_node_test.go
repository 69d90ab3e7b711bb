package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/network"
)

func TestNetworkNodeVerbsNameTheNodesThereAre(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want error
	}{
		{"stop of an unknown node", []string{"stop", "peer9"}, network.ErrUnknownNode},
		{"start of an unknown node", []string{"start", "peer9"}, network.ErrUnknownNode},
		{"stop without a name", []string{"stop"}, errUsage},
		{"start without a name", []string{"start"}, errUsage},
		{"start of two nodes", []string{"start", "orderer1", "peer9"}, errUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := crashedNetwork(t)
			_, err := runCLI(t, append([]string{"network", "node", "--state-dir", dir}, tt.args...)...)
			require.ErrorIs(t, err, tt.want)
			require.ErrorContains(t, err, "orderer1", "the error lists the nodes")
		})
	}
}

func TestNetworkNodeListShowsEachNodeAndWhetherItRuns(t *testing.T) {
	dir := crashedNetwork(t)
	out, err := runCLI(t, "network", "node", "list", "--state-dir", dir)
	require.NoError(t, err)
	require.Contains(t, out, "orderer1")
	require.Contains(t, out, "down")
	require.Contains(t, out, "listen=1")

	out, err = runCLI(t, "network", "node", "list", "--state-dir", dir, "-o", "json")
	require.NoError(t, err)
	var rows []nodeRow
	require.NoError(t, json.Unmarshal([]byte(out), &rows))
	require.Len(t, rows, 1)
	require.Equal(t, "down", rows[0].State)
}

func TestNetworkStopOfANetworkWithNothingRunningKeepsIt(t *testing.T) {
	dir := crashedNetwork(t)
	out, err := runCLI(t, "network", "stop", "--state-dir", dir)
	require.NoError(t, err)
	require.Contains(t, out, "already stopped")
	require.FileExists(t, filepath.Join(dir, "network.json"))

	out, err = runCLI(t, "network", "node", "list", "--state-dir", dir)
	require.NoError(t, err)
	require.Contains(t, out, "stopped")
}

func TestNetworkStartOfANetworkUpNeverFinishedSaysToRecreateIt(t *testing.T) {
	dir := crashedNetwork(t) // no chaincode deployed: Up did not finish
	_, err := runCLI(t, "network", "start", "--state-dir", dir)
	require.ErrorIs(t, err, network.ErrIncomplete)
	require.ErrorContains(t, err, "network down")
	require.FileExists(t, filepath.Join(dir, "network.json"), "start removes nothing")
}

func TestNetworkDownSaysWhatItRemoves(t *testing.T) {
	dir := crashedNetwork(t)
	out, err := runCLI(t, "network", "down", "--state-dir", dir)
	require.NoError(t, err)
	require.Contains(t, out, "removing the network in "+dir)
	require.Contains(t, out, "ledgers of 1 orderer and 0 peers")
	require.Contains(t, out, "crypto material")
	require.Contains(t, out, "CA databases")
	_, err = os.Stat(dir)
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestNetworkStopAndStartWithoutANetworkSayHowToStartOne(t *testing.T) {
	for _, args := range [][]string{{"stop"}, {"start"}, {"node", "list"}, {"node", "stop", "orderer1"}, {"node", "start", "orderer1"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, err := runCLI(t, append(append([]string{"network"}, args...), "--state-dir", t.TempDir())...)
			require.ErrorIs(t, err, network.ErrNotUp)
			require.ErrorContains(t, err, "iotledger network up")
		})
	}
}
