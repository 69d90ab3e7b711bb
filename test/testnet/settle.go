package testnet

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/network"
)

// Settle waits until every peer has committed the blocks the highest peer
// has now, for a test that reads through one org's peer what it wrote
// through the other's, or that needs both orgs' peers to endorse against
// the same state (each peer commits blocks on its own schedule).
func Settle(ctx context.Context, t testing.TB, n *network.Network) {
	t.Helper()
	heights := func() (lowest, highest uint64, ok bool) {
		st, err := n.Status(ctx)
		if err != nil {
			return 0, 0, false
		}
		first := true
		for _, nd := range st.Nodes {
			if nd.Kind != network.KindPeer {
				continue
			}
			if nd.Height == nil {
				return 0, 0, false
			}
			if first || *nd.Height < lowest {
				lowest = *nd.Height
			}
			highest = max(highest, *nd.Height)
			first = false
		}
		return lowest, highest, !first
	}
	var target uint64
	require.Eventually(t, func() bool {
		_, h, ok := heights()
		target = h
		return ok
	}, 30*time.Second, 100*time.Millisecond, "cannot read the peers' heights")
	require.Eventually(t, func() bool {
		lowest, _, ok := heights()
		return ok && lowest >= target
	}, 60*time.Second, 100*time.Millisecond, "peers did not reach height %d", target)
}
