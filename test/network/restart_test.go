package network_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/network"
	"github.com/iotledger/iotledger/test/testnet"
)

// TestStoppedNetworkResumesWithItsLedgerCryptoAndPorts stops the whole
// network three ways — Stop, Stop, and every process killed as by a reboot —
// and brings it back with Start, Up and Up. Each time the ledger keeps its
// height and its transactions, every node its ports, the crypto material,
// genesis block and connection profiles are the files they were, and new
// transactions commit. The network is left running and healthy.
func TestStoppedNetworkResumesWithItsLedgerCryptoAndPorts(t *testing.T) {
	deployRef(t)
	ctx := ctxFor(t, 15*time.Minute)
	t.Cleanup(func() {
		// Whatever failed, the tests after this one get a running network.
		cctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := testNet.Start(cctx); err != nil {
			t.Logf("starting the network again after the test: %v", err)
		}
	})

	var written []string
	put := func(t *testing.T, key string) {
		t.Helper()
		c := connect(t, testNet, "Org1", "operator").GetNetwork(testNet.Channel()).GetContract(refChaincode)
		_, status := submit(t, c, "Put", client.WithArguments(key, "v-"+key))
		require.True(t, status.Successful, "put %s: validation code %v", key, status.Code)
		written = append(written, key)
	}
	for i := range 3 {
		put(t, fmt.Sprintf("restart-before-%d", i))
	}
	testnet.Settle(ctx, t, testNet)
	before := snapshot(ctx, t, testNet)

	// resumed checks what every way of bringing the network back must give.
	resumed := func(t *testing.T, n *network.Network, prev netSnapshot, kept map[string]bool) netSnapshot {
		t.Helper()
		var last []network.NodeStatus
		require.Eventually(t, func() bool {
			st, err := n.Status(ctx)
			if err != nil {
				return false
			}
			last = st.Unhealthy()
			return st.Healthy
		}, 2*time.Minute, 250*time.Millisecond, "unhealthy after the restart: %+v", &last)
		now := snapshot(ctx, t, n)
		require.GreaterOrEqual(t, now.height, prev.height, "the ledger lost blocks")
		require.Equal(t, prev.ports, now.ports, "every node keeps its ports")
		require.Equal(t, prev.files, now.files, "crypto material, genesis block and profiles are unchanged")
		for name, p := range now.procs {
			if kept[name] {
				require.Equal(t, prev.procs[name], p, "%s kept running", name)
			} else {
				require.NotEqual(t, prev.procs[name], p, "%s is a new process", name)
			}
		}
		for _, org := range n.Orgs() {
			c := connect(t, n, org, "auditor").GetNetwork(n.Channel()).GetContract(refChaincode)
			for _, key := range written {
				require.Eventually(t, func() bool {
					got, err := c.EvaluateTransaction("Get", key)
					return err == nil && string(got) == "v-"+key
				}, time.Minute, 100*time.Millisecond, "%s reads %s written before the restart", org, key)
			}
		}
		put(t, "restart-after-"+strings.ReplaceAll(t.Name(), "/", "-"))
		testnet.Settle(ctx, t, n)
		return snapshot(ctx, t, n)
	}

	t.Run("stop then start", func(t *testing.T) {
		nodes := testNet.Nodes()
		require.NoError(t, testNet.Stop(ctx))
		for _, nd := range nodes {
			require.False(t, sameProcess(nd), "%s (pid %d) still runs after Stop", nd.Name, nd.PID)
		}
		st, err := testNet.Status(ctx)
		require.NoError(t, err)
		for _, ns := range st.Nodes {
			require.Equal(t, network.HealthStopped, ns.Health, ns.Name)
		}
		require.NoError(t, testNet.Stop(ctx), "stopping a stopped network does nothing")

		// A recorded port held by another program: Start names it and
		// starts nothing (the network keeps its ports).
		peer := nodeNamed(t, nodes, "peer0.org1")
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(peer.Ports[network.PortListen])))
		require.NoError(t, err)
		err = testNet.Start(ctx)
		_ = l.Close()
		require.ErrorIs(t, err, network.ErrPortBusy)
		require.ErrorContains(t, err, "peer0.org1")
		require.ErrorContains(t, err, strconv.Itoa(peer.Ports[network.PortListen]))
		for _, nd := range testNet.Nodes() {
			require.False(t, sameProcess(nd), "%s was started though a port is taken", nd.Name)
		}

		// One node started on its own after the stop; Start starts the rest.
		require.NoError(t, testNet.StartNode(ctx, "ca.org1"))
		ca := nodeNamed(t, testNet.Nodes(), "ca.org1")
		withCA := before
		withCA.procs = cloneProcs(before.procs)
		withCA.procs["ca.org1"] = proc{ca.PID, ca.StartTicks}
		require.NoError(t, testNet.Start(ctx))
		require.NoError(t, testNet.Start(ctx), "starting a running network does nothing")
		before = resumed(t, testNet, withCA, map[string]bool{"ca.org1": true})
	})

	t.Run("stop then up", func(t *testing.T) {
		require.NoError(t, testNet.Stop(ctx))
		n, err := network.Up(ctx, network.Options{StateDir: testNet.StateDir()})
		require.NoError(t, err)
		_, err = network.Up(ctx, network.Options{StateDir: testNet.StateDir()})
		require.ErrorIs(t, err, network.ErrAlreadyUp)
		before = resumed(t, n, before, nil)
	})

	t.Run("every process killed as by a reboot, then up", func(t *testing.T) {
		nodes := testNet.Nodes()
		for _, nd := range nodes {
			require.True(t, sameProcess(nd), "%s is not running before the kill", nd.Name)
			require.NoError(t, syscall.Kill(-nd.PID, syscall.SIGKILL), nd.Name)
		}
		require.Eventually(t, func() bool {
			for _, nd := range nodes {
				if sameProcess(nd) {
					return false
				}
			}
			return true
		}, time.Minute, 50*time.Millisecond)
		n, err := network.Up(ctx, network.Options{StateDir: testNet.StateDir()})
		require.NoError(t, err)
		before = resumed(t, n, before, nil)
	})
}

// proc identifies one process: PID and start time.
type proc struct {
	pid   int
	ticks uint64
}

// netSnapshot is what a restart must keep (height at least, ports, files)
// and what it changes (processes).
type netSnapshot struct {
	height uint64
	ports  map[string]map[string]int
	files  map[string]string // path -> sha256
	procs  map[string]proc
}

func snapshot(ctx context.Context, t *testing.T, n *network.Network) netSnapshot {
	t.Helper()
	st, err := n.Status(ctx)
	require.NoError(t, err)
	s := netSnapshot{height: st.Height, ports: map[string]map[string]int{}, files: map[string]string{}, procs: map[string]proc{}}
	for _, nd := range n.Nodes() {
		s.ports[nd.Name] = nd.Ports
		s.procs[nd.Name] = proc{nd.PID, nd.StartTicks}
	}
	dir := n.StateDir()
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			if rel == "logs" || rel == "nodes" || rel == "chaincode" {
				return filepath.SkipDir // ledgers, logs and builds change
			}
			return nil
		}
		if !keptFile(rel) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		s.files[rel] = hex.EncodeToString(sum[:])
		return nil
	}))
	require.NotEmpty(t, s.files)
	return s
}

// keptFile tells the files a restart must leave alone: certificates, keys,
// the genesis block and the connection profiles.
func keptFile(rel string) bool {
	base := filepath.Base(rel)
	return strings.HasSuffix(base, ".pem") || strings.HasSuffix(base, ".crt") || strings.HasSuffix(base, ".key") ||
		strings.HasSuffix(base, "_sk") || strings.HasSuffix(base, ".block") || base == "connection.json"
}

func cloneProcs(m map[string]proc) map[string]proc {
	out := make(map[string]proc, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func nodeNamed(t *testing.T, nodes []network.Node, name string) network.Node {
	t.Helper()
	for _, nd := range nodes {
		if nd.Name == name {
			return nd
		}
	}
	require.FailNow(t, "no node "+name)
	return network.Node{}
}

// sameProcess tells whether the node's recorded process (PID and start
// time) is still running: a recycled PID is another process.
func sameProcess(nd network.Node) bool {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(nd.PID), "stat"))
	if err != nil {
		return false // no such process
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return false
	}
	ticks, err := strconv.ParseUint(f[19], 10, 64)
	return err == nil && (nd.StartTicks == 0 || ticks == nd.StartTicks)
}
