package network_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/network"
)

// TestEachOrdererKilledUnderLoadRejoinsAndCatchesUp SIGKILLs each orderer
// in turn while transactions are submitted continuously, lets the other two
// order blocks without it, starts it again and requires that it reaches the
// height the others had when it came back, that the network is healthy
// again and that transactions keep committing.
//
// Fabric v2.5.0 as released deadlocks here (hyperledger/fabric#4199): an
// orderer that restarts with the Raft configuration changes of the
// channel's creation still in its write-ahead log (no snapshot taken yet,
// SnapshotIntervalSize is 16 MB) replays more than one batch of committed
// entries (a batch is at most PreferredMaxBytes, 2 MB), and its Raft node
// blocks handing the second batch to the chain while the chain, applying a
// configuration change of the first, waits for the node to sync the WAL.
// So the test first orders some 6 MB of transactions. The network
// package builds the orderer with the upstream fix
// (network/tools/fabric/patches).
func TestEachOrdererKilledUnderLoadRejoinsAndCatchesUp(t *testing.T) {
	deployRef(t)
	ctx := ctxFor(t, 20*time.Minute)
	fillRaftLog(t, 3<<20)
	ld := startLoad(t, 4)
	ld.waitCommitted(t, 10, 2*time.Minute)

	var orderers []string
	for _, nd := range testNet.Nodes() {
		if nd.Kind == network.KindOrderer {
			orderers = append(orderers, nd.Name)
		}
	}
	require.GreaterOrEqual(t, len(orderers), 3, "needs a Raft cluster that keeps a quorum with one orderer down")

	// Leadership moves only when the leader is killed, so the leader of the
	// start is killed at its turn.
	killedLeader := false
	for _, name := range orderers {
		// Under load a follower can be a few large blocks behind for a
		// moment; wait for the network to be healthy.
		st := waitHealthy(t, ctx, "before killing "+name)
		if ns := nodeStatus(st, name); ns.Raft != nil && ns.Raft.Leader {
			t.Logf("%s is the Raft leader", name)
			killedLeader = true
		}

		killNode(t, name)
		t.Cleanup(func() { _ = testNet.StartNode(context.Background(), name) })
		require.Eventually(t, func() bool {
			st, err := testNet.Status(ctx)
			return err == nil && nodeStatus(st, name).Health == network.HealthDown
		}, time.Minute, 100*time.Millisecond, "%s is not reported down", name)

		// The other orderers go on ordering without it.
		missed := othersHeight(ctx, name) + 3
		require.Eventually(t, func() bool { return othersHeight(ctx, name) >= missed },
			2*time.Minute, 200*time.Millisecond, "no blocks ordered with %s down", name)

		require.NoError(t, testNet.StartNode(ctx, name))
		target := othersHeight(ctx, name)
		require.NotZero(t, target)
		var last network.NodeStatus
		require.Eventually(t, func() bool {
			st, err := testNet.Status(ctx)
			if err != nil {
				return false
			}
			last = nodeStatus(st, name)
			return last.Height != nil && *last.Height >= target
		}, 2*time.Minute, 250*time.Millisecond, "restarted %s did not reach height %d: %+v", name, target, &last)

		committed := ld.committed.Load()
		ld.waitCommitted(t, committed+10, 2*time.Minute)
		waitHealthy(t, ctx, "after restarting "+name)
		t.Logf("%s rejoined at height %d; %d transactions committed, %d failed so far", name, target, ld.committed.Load(), ld.failed.Load())
	}
	require.True(t, killedLeader, "no orderer was Raft leader when it was killed")
}

// waitHealthy waits (a generous bound) until status reports every node ok
// and returns that status.
func waitHealthy(t *testing.T, ctx context.Context, when string) *network.Status {
	t.Helper()
	var last *network.Status
	var bad []network.NodeStatus
	require.Eventually(t, func() bool {
		st, err := testNet.Status(ctx)
		if err != nil {
			return false
		}
		last, bad = st, st.Unhealthy()
		return st.Healthy
	}, 2*time.Minute, 250*time.Millisecond, "unhealthy %s: %+v", when, &bad)
	return last
}

// killNode ends a node's process with SIGKILL, as a crash or an OOM kill
// would: no shutdown, nothing flushed.
func killNode(t *testing.T, name string) {
	t.Helper()
	for _, nd := range testNet.Nodes() {
		if nd.Name == name {
			require.NotZero(t, nd.PID, name)
			require.NoError(t, syscall.Kill(nd.PID, syscall.SIGKILL), name)
			return
		}
	}
	t.Fatalf("no node %s", name)
}

func nodeStatus(st *network.Status, name string) network.NodeStatus {
	for _, ns := range st.Nodes {
		if ns.Name == name {
			return ns
		}
	}
	return network.NodeStatus{}
}

// othersHeight is the highest channel height the orderers other than name
// report (0 when status cannot be read).
func othersHeight(ctx context.Context, name string) uint64 {
	st, err := testNet.Status(ctx)
	if err != nil {
		return 0
	}
	var h uint64
	for _, ns := range st.Nodes {
		if ns.Kind == network.KindOrderer && ns.Name != name && ns.Height != nil {
			h = max(h, *ns.Height)
		}
	}
	return h
}

// fillRaftLog orders transactions carrying size bytes of values (the blocks
// hold each value twice, in the arguments and in the write set), so that an
// orderer restarting replays its Raft log in several batches.
func fillRaftLog(t *testing.T, size int) {
	t.Helper()
	const valueSize = 256 << 10
	c := connect(t, testNet, "Org1", "operator").GetNetwork(testNet.Channel()).GetContract(refChaincode)
	value := strings.Repeat("v", valueSize)
	n := size / valueSize
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Submit("Put", client.WithArguments(fmt.Sprintf("restart-fill-%d", i), value))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// load submits Put transactions of the ref chaincode from several workers
// until the test ends, counting those committed and those that failed (a
// killed orderer loses the transactions it had accepted).
type load struct {
	committed atomic.Int64
	failed    atomic.Int64
}

func startLoad(t *testing.T, workers int) *load {
	t.Helper()
	deployRef(t)
	c := connect(t, testNet, "Org1", "operator").GetNetwork(testNet.Channel()).GetContract(refChaincode)
	ctx, cancel := context.WithCancel(context.Background())
	ld := &load{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				if ld.put(ctx, c, fmt.Sprintf("restart-load-%d-%d", w, i)) {
					ld.committed.Add(1)
				} else if ctx.Err() == nil {
					ld.failed.Add(1)
				}
			}
		}()
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return ld
}

func (ld *load) put(ctx context.Context, c *client.Contract, key string) bool {
	_, commit, err := c.SubmitAsync("Put", client.WithArguments(key, "x"))
	if err != nil {
		return false
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	status, err := commit.StatusWithContext(sctx)
	return err == nil && status.Successful
}

// waitCommitted waits until n transactions of the load have committed.
func (ld *load) waitCommitted(t *testing.T, n int64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for ld.committed.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("load: %d transactions committed within %s (want %d), %d failed", ld.committed.Load(), within, n, ld.failed.Load())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
