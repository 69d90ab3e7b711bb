package network

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/client"
)

// envListen turns the test binary into a stand-in node that listens on the
// port it names until killed: a node with a listener and no operations
// port is healthy once it accepts connections (as a chaincode server).
const envListen = "IOTLEDGER_NETWORK_TEST_LISTEN"

func TestMain(m *testing.M) {
	if port := os.Getenv(envListen); port != "" {
		l, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			os.Exit(3)
		}
		for {
			c, err := l.Accept()
			if err != nil {
				os.Exit(4)
			}
			_ = c.Close()
		}
	}
	os.Exit(m.Run())
}

// listenerNode is a stand-in chaincode server on a free port.
func listenerNode(t *testing.T, dir, name string) *Node {
	t.Helper()
	ports, err := freePorts(1)
	require.NoError(t, err)
	return &Node{
		Name: name, Kind: KindChaincode, Command: os.Args[0], Dir: dir,
		Env:   []string{envListen + "=" + strconv.Itoa(ports[0])},
		Log:   filepath.Join(dir, name+".log"),
		Ports: map[string]int{PortListen: ports[0]},
	}
}

// stubNetwork records a complete network of the given nodes in a fresh
// state dir and returns a handle to it, as Load would.
func stubNetwork(t *testing.T, setup string, nodes ...func(dir string) *Node) (*Network, *bytes.Buffer) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "net")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	st := &State{Version: stateVersion, StateDir: dir, Channel: "iotledger", Setup: setup}
	for _, f := range nodes {
		st.Nodes = append(st.Nodes, f(dir))
	}
	require.NoError(t, st.save())
	n, err := Load(dir)
	require.NoError(t, err)
	var progress bytes.Buffer
	n.SetProgress(&progress)
	t.Cleanup(func() { _ = n.Down(context.Background()) })
	return n, &progress
}

func alive(nd Node) bool { return processAlive(nd.PID, nd.StartTicks) }

func TestStopKeepsTheStateAndStartBringsTheNodesBackOnTheirPorts(t *testing.T) {
	ctx := context.Background()
	n, progress := stubNetwork(t, SetupComplete,
		func(dir string) *Node { return listenerNode(t, dir, "chaincode.ref.org1") },
		func(dir string) *Node { return listenerNode(t, dir, "chaincode.ref.org2") })
	require.NoError(t, n.Start(ctx))
	before := n.Nodes()
	for _, nd := range before {
		require.True(t, alive(nd), nd.Name)
	}
	keep := filepath.Join(n.StateDir(), "nodes", "peer0.org1", "data", "ledger")
	require.NoError(t, os.MkdirAll(filepath.Dir(keep), 0o755))
	require.NoError(t, os.WriteFile(keep, []byte("blocks"), 0o600))

	require.NoError(t, n.Stop(ctx))
	for _, nd := range before {
		require.False(t, alive(nd), "%s still runs", nd.Name)
	}
	require.FileExists(t, keep, "Stop removes nothing")
	st, err := loadState(n.StateDir())
	require.NoError(t, err)
	require.NotNil(t, st.StoppedAt)
	for _, nd := range st.Nodes {
		require.True(t, nd.Stopped, nd.Name)
	}
	require.NoError(t, n.Stop(ctx), "stopping a stopped network does nothing")
	require.Contains(t, progress.String(), "already stopped")

	require.NoError(t, n.Start(ctx))
	after := n.Nodes()
	for i, nd := range after {
		require.True(t, alive(nd), nd.Name)
		require.Equal(t, before[i].Ports, nd.Ports, "%s keeps its ports", nd.Name)
		require.NotEqual(t, before[i].PID, nd.PID, "%s is a new process", nd.Name)
		require.False(t, nd.Stopped)
	}
	st, err = loadState(n.StateDir())
	require.NoError(t, err)
	require.Nil(t, st.StoppedAt)

	progress.Reset()
	require.NoError(t, n.Start(ctx), "starting a running network does nothing")
	require.Contains(t, progress.String(), "already running")
	for i, nd := range n.Nodes() {
		require.Equal(t, after[i].PID, nd.PID, "%s was left alone", nd.Name)
	}
}

func TestStartRefusesATakenPortAndStartsNothing(t *testing.T) {
	ctx := context.Background()
	n, _ := stubNetwork(t, SetupComplete,
		func(dir string) *Node { return listenerNode(t, dir, "chaincode.ref.org1") },
		func(dir string) *Node { return listenerNode(t, dir, "chaincode.ref.org2") })
	taken := n.Nodes()[1]
	l, err := net.Listen("tcp", taken.Address())
	require.NoError(t, err)
	defer func() { _ = l.Close() }()

	err = n.Start(ctx)
	require.ErrorIs(t, err, ErrPortBusy)
	require.ErrorContains(t, err, "chaincode.ref.org2")
	require.ErrorContains(t, err, strconv.Itoa(taken.Ports[PortListen]))
	require.ErrorContains(t, err, "nothing was started")
	for _, nd := range n.Nodes() {
		require.Zero(t, nd.PID, "%s was started", nd.Name)
		require.Equal(t, taken.Ports, n.Nodes()[1].Ports, "no new port was chosen")
	}
}

// TestStartWaitsForAPortItsKilledProcessStillHolds: a node killed a moment
// ago holds its sockets until its exit is finished; Start waits for them
// (a bounded wait) rather than refusing a network it could start.
func TestStartWaitsForAPortItsKilledProcessStillHolds(t *testing.T) {
	ctx := context.Background()
	n, _ := stubNetwork(t, SetupComplete,
		func(dir string) *Node { return listenerNode(t, dir, "chaincode.ref.org1") })
	held := n.Nodes()[0]
	l, err := net.Listen("tcp", held.Address())
	require.NoError(t, err)
	released := time.AfterFunc(time.Second, func() { _ = l.Close() })
	defer released.Stop()

	require.NoError(t, n.Start(ctx))
	require.NotZero(t, n.Nodes()[0].PID, "started once the port was free")
	require.Equal(t, held.Ports, n.Nodes()[0].Ports, "on the same port")
	require.NoError(t, n.Stop(ctx))
}

func TestStartThatFailsLeavesTheNetworkStopped(t *testing.T) {
	ctx := context.Background()
	n, _ := stubNetwork(t, SetupComplete,
		func(dir string) *Node { return listenerNode(t, dir, "chaincode.ref.org1") },
		func(dir string) *Node {
			nd := listenerNode(t, dir, "chaincode.ref.org2")
			nd.Command, nd.Args = "sh", []string{"-c", "echo cannot start >&2; exit 1"}
			nd.Env = []string{"PATH=" + os.Getenv("PATH")}
			return nd
		})
	err := n.Start(ctx)
	require.ErrorIs(t, err, ErrNodeExited)
	require.ErrorContains(t, err, "chaincode.ref.org2")
	require.ErrorContains(t, err, "cannot start")
	st, err := loadState(n.StateDir())
	require.NoError(t, err)
	for _, nd := range st.Nodes {
		require.False(t, alive(*nd), "%s left running after the failed start", nd.Name)
		require.True(t, nd.Stopped, nd.Name)
	}
}

func TestStartOfANetworkUpNeverFinishedIsRefused(t *testing.T) {
	n, _ := stubNetwork(t, SetupCreating,
		func(dir string) *Node { return listenerNode(t, dir, "chaincode.ref.org1") })
	err := n.Start(context.Background())
	require.ErrorIs(t, err, ErrIncomplete)
	require.ErrorContains(t, err, "network down")
	require.Zero(t, n.Nodes()[0].PID)
}

// legacyState writes state as recorded before Setup existed: complete if
// the iotledger chaincode is recorded and each org's profile has hub TLS.
func legacyState(t *testing.T, dir string, chaincode, hubTLS bool) *State {
	t.Helper()
	st := &State{Version: stateVersion, StateDir: dir, Orgs: []OrgState{{Name: "Org1", MSPID: "Org1MSP"}},
		Nodes: []*Node{{Name: "peer0.org1", Kind: KindPeer, PID: 1 << 30}}}
	if chaincode {
		st.Chaincodes = []*ChaincodeState{{Name: DefaultChaincode, Servers: map[string]string{"Org1": "chaincode.iotledger.org1"}}}
	}
	p := &client.Profile{Channel: "iotledger", Chaincode: DefaultChaincode, Org: "Org1", MSPID: "Org1MSP",
		Peer:       client.PeerEndpoint{Address: "127.0.0.1:7051", ServerName: "peer0.org1.iotledger.local", TLSCACert: "tlsca.pem"},
		Identities: map[string]client.IdentityFiles{"admin": {MSPID: "Org1MSP", Cert: "cert.pem", Key: "key.pem"}}}
	if hubTLS {
		p.HubTLS = &client.HubTLS{Cert: "c", Key: "k", CACert: "ca"}
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "org1"), 0o755))
	require.NoError(t, p.Save(filepath.Join(dir, "org1", "connection.json")))
	return st
}

func TestUpDecidesFromCompletenessAndLiveness(t *testing.T) {
	_, ticks, err := procIdentity(os.Getpid())
	require.NoError(t, err)
	dead := []*Node{{Name: "orderer1", PID: 1 << 30}}
	live := []*Node{{Name: "orderer1", PID: os.Getpid(), StartTicks: ticks}}
	tests := []struct {
		name  string
		state func(t *testing.T, dir string) *State
		files bool
		want  upDecision
	}{
		{"empty dir", func(*testing.T, string) *State { return nil }, false, upCreate},
		{"foreign files", func(*testing.T, string) *State { return nil }, true, upForeignDir},
		{"complete, all gone", func(t *testing.T, d string) *State { return &State{StateDir: d, Setup: SetupComplete, Nodes: dead} }, true, upResume},
		{"complete, running", func(t *testing.T, d string) *State { return &State{StateDir: d, Setup: SetupComplete, Nodes: live} }, true, upRefuse},
		{"failed up, all gone", func(t *testing.T, d string) *State { return &State{StateDir: d, Setup: SetupCreating, Nodes: dead} }, true, upClean},
		{"failed up, running", func(t *testing.T, d string) *State { return &State{StateDir: d, Setup: SetupCreating, Nodes: live} }, true, upRefuse},
		{"legacy, finished", func(t *testing.T, d string) *State { return legacyState(t, d, true, true) }, true, upResume},
		{"legacy, stopped before identities", func(t *testing.T, d string) *State { return legacyState(t, d, true, false) }, true, upClean},
		{"legacy, stopped before deploy", func(t *testing.T, d string) *State { return legacyState(t, d, false, false) }, true, upClean},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, decideUp(tt.state(t, t.TempDir()), tt.files))
		})
	}
}

func TestUpResumesACompleteStoppedNetworkAndRemovesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "net")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "nodes", "peer0.org1", "data"), 0o755))
	ledger := filepath.Join(dir, "nodes", "peer0.org1", "data", "blocks")
	require.NoError(t, os.WriteFile(ledger, []byte("1949 blocks"), 0o600))
	s := &State{Version: stateVersion, StateDir: dir, Setup: SetupComplete, Nodes: []*Node{{Name: "peer0.org1", PID: 1 << 30}}}
	require.NoError(t, s.save())

	var progress bytes.Buffer
	opts := quietOptions(dir)
	opts.Progress = &progress
	resume, err := prepareStateDir(context.Background(), opts)
	require.NoError(t, err)
	require.NotNil(t, resume)
	require.Equal(t, "peer0.org1", resume.Nodes[0].Name)
	require.FileExists(t, ledger)
	require.Contains(t, progress.String(), "resuming")
}

func TestPIDsOfAnEarlierBootNameNoNode(t *testing.T) {
	boot := currentBootID()
	if boot == "" {
		t.Skip("no boot ID on this machine")
	}
	_, ticks, err := procIdentity(os.Getpid())
	require.NoError(t, err)
	dir := t.TempDir()
	s := &State{Version: stateVersion, StateDir: dir,
		Nodes: []*Node{{Name: "peer0.org1", PID: os.Getpid(), StartTicks: ticks}}}
	require.NoError(t, s.save())
	same, err := loadState(dir)
	require.NoError(t, err)
	require.Equal(t, boot, same.BootID, "save records the boot")
	require.Len(t, same.liveNodes(), 1, "same boot, same PID and start time: our node")

	// The same PID and start time recorded in another boot: after a
	// reboot the number may well be reused.
	same.BootID = "00000000-0000-0000-0000-000000000000"
	data, err := os.ReadFile(statePath(dir))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(statePath(dir), bytes.Replace(data, []byte(boot), []byte(same.BootID), 1), 0o600))
	other, err := loadState(dir)
	require.NoError(t, err)
	require.Empty(t, other.liveNodes())
	require.Zero(t, other.Nodes[0].PID)
}

func TestDownSaysWhatItRemoves(t *testing.T) {
	n, progress := stubNetwork(t, SetupComplete)
	require.NoError(t, os.MkdirAll(filepath.Join(n.StateDir(), "nodes", "orderer1", "data"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(n.StateDir(), "nodes", "orderer1", "data", "wal"), make([]byte, 2048), 0o600))
	n.mu.Lock()
	n.state.StoppedHeight = 1949
	n.state.Nodes = append(n.state.Nodes, &Node{Name: "orderer1", Kind: KindOrderer}, &Node{Name: "peer0.org1", Kind: KindPeer})
	require.NoError(t, n.state.save())
	n.mu.Unlock()

	r := n.Removal(context.Background())
	require.Equal(t, uint64(1949), r.Height)
	require.True(t, r.HeightKnown)
	require.Equal(t, int64(2048), r.LedgerBytes)

	require.NoError(t, n.Down(context.Background()))
	out := progress.String()
	require.Contains(t, out, n.StateDir())
	require.Contains(t, out, "ledgers of 1 orderer and 1 peer at height 1949 (2.0 KiB")
	require.Contains(t, out, "crypto material")
	require.Contains(t, out, "CA databases")
	_, err := os.Stat(n.StateDir())
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestUnknownNodeNamesTheNodesThereAre(t *testing.T) {
	n, _ := stubNetwork(t, SetupComplete, func(dir string) *Node { return listenerNode(t, dir, "chaincode.ref.org1") })
	for _, f := range []func(context.Context, string) error{n.StopNode, n.StartNode} {
		err := f(context.Background(), "peer7")
		require.ErrorIs(t, err, ErrUnknownNode)
		require.ErrorContains(t, err, `"peer7"`)
		require.ErrorContains(t, err, "chaincode.ref.org1")
	}
}
