package network_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/network"
	"github.com/iotledger/iotledger/test/testnet"
)

// TestNetworkLifecycle runs a second, one-orderer network through up, up
// again, a crash of every process, up resuming the crashed network, and down.
func TestNetworkLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "net")
	opts := network.Options{StateDir: dir, Orderers: 1, EndorsementPolicy: "ANY"}
	testnet.Guard(t, dir)

	n, err := network.Up(ctx, opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		if l, err := network.Load(dir); err == nil {
			_ = l.Down(context.Background())
		}
	})

	t.Run("up again says it is already up", func(t *testing.T) {
		_, err := network.Up(ctx, opts)
		require.ErrorIs(t, err, network.ErrAlreadyUp)
	})

	t.Run("a crashed network is reported down and up resumes it with its ledger", func(t *testing.T) {
		before, err := n.Status(ctx)
		require.NoError(t, err)
		for _, nd := range n.Nodes() {
			require.NoError(t, syscall.Kill(nd.PID, syscall.SIGKILL))
		}
		loaded, err := network.Load(dir)
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			st, err := loaded.Status(ctx)
			if err != nil {
				return false
			}
			for _, ns := range st.Nodes {
				if ns.Health != network.HealthDown {
					return false
				}
			}
			return true
		}, time.Minute, 100*time.Millisecond)

		n, err = network.Up(ctx, opts)
		require.NoError(t, err)
		st, err := n.Status(ctx)
		require.NoError(t, err)
		require.True(t, st.Healthy, "%+v", st.Unhealthy())
		require.GreaterOrEqual(t, st.Height, before.Height, "up resumed the crashed network; it did not create a new ledger")
	})

	t.Run("down leaves no process, no open port and no state", func(t *testing.T) {
		require.NotNil(t, n, "the network did not come up again")
		nodes := n.Nodes()
		other, err := network.Load(dir) // as another process would
		require.NoError(t, err)
		require.NoError(t, n.Down(ctx))
		require.NoError(t, other.Down(ctx), "down of a network that is already down does nothing")
		for _, nd := range nodes {
			require.False(t, alive(nd.PID), "%s (pid %d) still running", nd.Name, nd.PID)
			for name, port := range nd.Ports {
				c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
				if err == nil {
					_ = c.Close()
				}
				require.Error(t, err, "%s %s port %d still open", nd.Name, name, port)
			}
		}
		_, err = os.Stat(dir)
		require.ErrorIs(t, err, os.ErrNotExist)
		require.NoFileExists(t, dir+".lock")
		_, err = network.Load(dir)
		require.ErrorIs(t, err, network.ErrNotUp)
	})
}

func alive(pid int) bool {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// A zombie (state Z) has exited.
	for i := len(data) - 1; i >= 0; i-- {
		if data[i] == ')' {
			return i+2 < len(data) && data[i+2] != 'Z'
		}
	}
	return true
}
