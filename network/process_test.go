package network

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name  string
		line  string
		state byte
		ticks uint64
		err   bool
	}{
		{"plain", "42 (peer) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 9 0 123456 1 2 3\n", 'S', 123456, false},
		{"command with spaces and parens", "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0\n", 'R', 99, false},
		{"zombie", "8 (x) Z 1 8 8 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0", 'Z', 5, false},
		{"no command", "8 x Z 1", 0, 0, true},
		{"too short", "8 (x) S 1 2 3", 0, 0, true},
		{"bad start time", "8 (x) S 1 8 8 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 nope 0", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state, ticks, err := parseProcStat(tt.line)
			if tt.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.state, state)
			require.Equal(t, tt.ticks, ticks)
		})
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add("42 (peer) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 9 0 123456 1 2 3\n")
	f.Add("1 ()) ) R")
	f.Fuzz(func(t *testing.T, s string) {
		state, _, err := parseProcStat(s)
		if err == nil {
			require.NotZero(t, state)
		}
	})
}

func TestProcessAliveTellsARecycledPIDFromTheNode(t *testing.T) {
	_, ticks, err := procIdentity(os.Getpid())
	require.NoError(t, err)
	require.True(t, processAlive(os.Getpid(), ticks))
	require.False(t, processAlive(os.Getpid(), ticks+1), "same PID, other start time: not our node")
	require.False(t, processAlive(0, 0))
	require.False(t, processAlive(1<<30, 0))
}

func testNode(t *testing.T, name string, args ...string) *Node {
	t.Helper()
	dir := t.TempDir()
	return &Node{Name: name, Command: args[0], Args: args[1:], Dir: dir, Env: []string{"PATH=" + os.Getenv("PATH")},
		Log: filepath.Join(dir, name+".log"), Ports: map[string]int{}}
}

func TestStoppedNodeIsGoneAndReaped(t *testing.T) {
	kids := newChildren()
	n := testNode(t, "sleeper", "sleep", "60")
	require.NoError(t, kids.start(n))
	require.True(t, processAlive(n.PID, n.StartTicks))

	require.NoError(t, kids.stop(context.Background(), n, 5*time.Second))
	require.False(t, processAlive(n.PID, n.StartTicks))
	_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(n.PID)))
	require.ErrorIs(t, err, os.ErrNotExist, "no zombie left behind")
}

func TestStopKillsANodeThatIgnoresSIGTERM(t *testing.T) {
	kids := newChildren()
	n := testNode(t, "stubborn", "sh", "-c", `trap "" TERM; sleep 60`)
	require.NoError(t, kids.start(n))
	require.NoError(t, kids.stop(context.Background(), n, 200*time.Millisecond))
	require.False(t, processAlive(n.PID, n.StartTicks))
}

func TestNodeThatExitsDuringStartIsReportedWithItsLog(t *testing.T) {
	kids := newChildren()
	n := testNode(t, "peer0.broken", "sh", "-c", `echo "cannot read core.yaml: boom" >&2; exit 3`)
	ports, err := freePorts(1)
	require.NoError(t, err)
	n.Ports[PortOperations] = ports[0]
	require.NoError(t, kids.start(n))

	err = waitHealthy(context.Background(), kids, n, time.Minute)
	require.ErrorIs(t, err, ErrNodeExited)
	var ne *NodeError
	require.ErrorAs(t, err, &ne)
	require.Equal(t, "peer0.broken", ne.Node)
	require.Contains(t, err.Error(), n.Log)
	require.Contains(t, err.Error(), "cannot read core.yaml: boom")
}

func TestBusyPortIsReportedNamingTheNode(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = l.Close() }()
	n := &Network{state: &State{Version: stateVersion, StateDir: t.TempDir()}, kids: newChildren()}
	nd := testNode(t, "orderer1", "sleep", "60")
	nd.Ports[PortListen] = l.Addr().(*net.TCPAddr).Port
	n.state.Nodes = []*Node{nd}

	err = n.startNodes(context.Background(), n.state.Nodes)
	require.ErrorIs(t, err, ErrPortBusy)
	require.ErrorContains(t, err, "orderer1")
	require.ErrorContains(t, err, nd.Log)
	require.Zero(t, nd.PID, "nothing was started")
}

func TestFreePortsAreDistinctAndBindable(t *testing.T) {
	ports, err := freePorts(30)
	require.NoError(t, err)
	seen := map[int]bool{}
	for _, p := range ports {
		require.False(t, seen[p], "port %d handed out twice", p)
		seen[p] = true
		require.NoError(t, checkPortFree(p))
	}
}

func TestLockIsExclusiveUntilReleased(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := lockFile(context.Background(), path)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = lockFile(ctx, path)
	require.True(t, errors.Is(err, context.DeadlineExceeded), "second lock must wait: %v", err)

	unlock()
	unlock2, err := lockFile(context.Background(), path)
	require.NoError(t, err)
	unlock2()
}

func TestFreePortsAvoidTheEphemeralRange(t *testing.T) {
	low, high := portRange()
	if high == 0 {
		t.Skip("no usable range below the ephemeral ports on this machine")
	}
	ports, err := freePorts(20)
	require.NoError(t, err)
	for _, p := range ports {
		require.GreaterOrEqual(t, p, low)
		require.LessOrEqual(t, p, high, "port %d is in the ephemeral range", p)
	}
}

func TestPortConflictsAreToldFromOtherFailures(t *testing.T) {
	busy := &NodeError{Node: "peer0.org1", Err: ErrPortBusy}
	bindFailed := &NodeError{Node: "orderer1", Err: ErrNodeExited, LogTail: "listen tcp 127.0.0.1:20001: bind: address already in use"}
	crashed := &NodeError{Node: "orderer1", Err: ErrNodeExited, LogTail: "panic: bad config"}
	require.True(t, portConflict(busy))
	require.True(t, portConflict(errors.Join(errors.New("other"), bindFailed)))
	require.False(t, portConflict(crashed))
	require.False(t, portConflict(errors.New("address already in use but not a node failure")))
}
