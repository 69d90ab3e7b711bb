package network

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStateSurvivesARoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := &State{Version: stateVersion, StateDir: dir, Channel: "iotledger",
		Nodes: []*Node{{Name: "orderer1", Kind: KindOrderer, PID: 42, StartTicks: 7, Ports: map[string]int{PortListen: 1, PortAdmin: 2}}},
		Orgs:  []OrgState{{Name: "Org1", MSPID: "Org1MSP"}}}
	require.NoError(t, s.save())
	back, err := loadState(dir)
	require.NoError(t, err)
	require.Equal(t, s.Nodes[0], back.Nodes[0])
	o, err := back.org("org1")
	require.NoError(t, err)
	require.Equal(t, "Org1MSP", o.MSPID)
	_, err = back.node("peer9")
	require.ErrorContains(t, err, "orderer1", "the error lists the nodes there are")
}

func TestLoadOfAnEmptyDirSaysNoNetworkIsUp(t *testing.T) {
	_, err := Load(t.TempDir())
	require.ErrorIs(t, err, ErrNotUp)
}

func TestStateOfAnotherVersionIsRefused(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "network.json"), []byte(`{"version": 99}`), 0o644))
	_, err := loadState(dir)
	require.ErrorContains(t, err, "version 99")
}

func quietOptions(dir string) Options {
	return Options{StateDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func TestStaleStateOfACrashedNetworkIsCleaned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "net")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "logs"), 0o755))
	s := &State{Version: stateVersion, StateDir: dir, Nodes: []*Node{{Name: "peer0.org1", PID: 1 << 30}}}
	require.NoError(t, s.save())

	resume, err := prepareStateDir(context.Background(), quietOptions(dir))
	require.NoError(t, err)
	require.Nil(t, resume, "an incomplete network is not resumed")
	_, err = os.Stat(dir)
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestLiveNetworkIsNotTouched(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "net")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	_, ticks, err := procIdentity(os.Getpid())
	require.NoError(t, err)
	s := &State{Version: stateVersion, StateDir: dir, Nodes: []*Node{{Name: "peer0.org1", PID: os.Getpid(), StartTicks: ticks}}}
	require.NoError(t, s.save())

	_, err = prepareStateDir(context.Background(), quietOptions(dir))
	require.ErrorIs(t, err, ErrAlreadyUp)
	require.FileExists(t, filepath.Join(dir, "network.json"))
}

func TestForeignNonEmptyStateDirIsRefused(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "precious.txt"), []byte("x"), 0o644))
	_, err := prepareStateDir(context.Background(), quietOptions(dir))
	require.ErrorContains(t, err, "not empty")
	require.FileExists(t, filepath.Join(dir, "precious.txt"))
}
