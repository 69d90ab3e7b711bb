package network_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/network"
)

// TestPeerThatMissedBlocksIsReportedUntilItCatchesUp stops Org2's peer,
// has Org1 commit blocks without it, and checks that status names the peer
// (stopped, then lagging or ok once started) and is healthy again only when
// its height has caught up with the other peer's.
func TestPeerThatMissedBlocksIsReportedUntilItCatchesUp(t *testing.T) {
	deployRef(t)
	ctx := ctxFor(t, 5*time.Minute)
	const lagger = "peer0.org2"
	require.NoError(t, testNet.StopNode(ctx, lagger))
	t.Cleanup(func() { _ = testNet.StartNode(ctx, lagger) })

	st, err := testNet.Status(ctx)
	require.NoError(t, err)
	require.False(t, st.Healthy)
	require.Equal(t, lagger, onlyUnhealthy(t, st).Name)
	require.Equal(t, network.HealthStopped, onlyUnhealthy(t, st).Health)
	before := st.Height

	// Each transaction is its own block; endorsed by Org1 alone it is
	// invalid under MAJORITY, but its block is committed all the same.
	c := connect(t, testNet, "Org1", "operator").GetNetwork(testNet.Channel()).GetContract(refChaincode)
	for i := range network.MaxLag + 2 {
		_, status := submit(t, c, "Put", client.WithArguments(fmt.Sprintf("lagging-%d", i), "x"), client.WithEndorsingOrganizations("Org1MSP"))
		require.NotZero(t, status.BlockNumber, "tx %d", i)
	}
	st, err = testNet.Status(ctx)
	require.NoError(t, err)
	require.Greater(t, st.Height, before+network.MaxLag)
	require.Equal(t, lagger, onlyUnhealthy(t, st).Name)

	require.NoError(t, testNet.StartNode(ctx, lagger))
	st, err = testNet.Status(ctx)
	require.NoError(t, err)
	for _, ns := range st.Nodes {
		if ns.Name == lagger {
			require.Contains(t, []string{network.HealthLagging, network.HealthOK}, ns.Health, "%+v", ns)
		} else {
			require.Equal(t, network.HealthOK, ns.Health, "%+v", ns)
		}
	}

	var last *network.Status
	require.Eventually(t, func() bool {
		last, err = testNet.Status(ctx)
		return err == nil && last.Healthy
	}, 2*time.Minute, 200*time.Millisecond, "last status: %+v", last)
	var heights []uint64
	for _, ns := range last.Nodes {
		if ns.Kind == network.KindPeer {
			require.NotNil(t, ns.Height, ns.Name)
			heights = append(heights, *ns.Height)
		}
	}
	require.Len(t, heights, 2)
	require.InDelta(t, heights[0], heights[1], network.MaxLag)
}
