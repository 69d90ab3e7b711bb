package network

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func height(h uint64) *uint64 { return &h }

func TestParseMetricsReadsTheChannelsSamples(t *testing.T) {
	text := `# HELP ledger_blockchain_height Height of the chain in blocks.
# TYPE ledger_blockchain_height gauge
ledger_blockchain_height{channel="other"} 99
ledger_blockchain_height{channel="iot"} 12
consensus_etcdraft_active_nodes{channel="iot"} 3
consensus_etcdraft_is_leader{channel="iot"} 1
consensus_etcdraft_cluster_size{channel="iot"} 3
consensus_etcdraft_proposal_failures{channel="iot",reason="x"} 2 1700000000000
go_goroutines 42
`
	m, err := parseMetrics(strings.NewReader(text), "iot")
	require.NoError(t, err)
	require.Equal(t, map[string]float64{
		metricHeight: 12, metricActiveNodes: 3, metricIsLeader: 1, metricClusterSize: 3,
		"consensus_etcdraft_proposal_failures": 2,
	}, m)
	require.Equal(t, &RaftStatus{Leader: true, ActiveNodes: 3, ClusterSize: 3}, raftStatus(m))

	m, err = parseMetrics(strings.NewReader(text), "io")
	require.NoError(t, err)
	require.Empty(t, m)
	require.Nil(t, raftStatus(m))

	_, err = parseMetrics(strings.NewReader(`ledger_blockchain_height{channel="iot"} x`), "iot")
	require.Error(t, err)
}

func TestAssessComparesHeightsAndRaftState(t *testing.T) {
	leader := func(active int) *RaftStatus { return &RaftStatus{Leader: true, ActiveNodes: active, ClusterSize: 3} }
	follower := &RaftStatus{ClusterSize: 3} // Fabric leaves a follower's active nodes stale (0)
	type node struct {
		name   string
		kind   NodeKind
		health string
		height *uint64
		raft   *RaftStatus
	}
	tests := []struct {
		name    string
		nodes   []node
		want    map[string]string // node → health after assess
		healthy bool
		top     uint64
	}{
		{
			name: "all even",
			nodes: []node{
				{"orderer1", KindOrderer, HealthOK, height(10), leader(3)},
				{"orderer2", KindOrderer, HealthOK, height(10), follower},
				{"orderer3", KindOrderer, HealthOK, height(10), follower},
				{"peer0.org1", KindPeer, HealthOK, height(10), nil},
				{"peer0.org2", KindPeer, HealthOK, height(10), nil},
			},
			want:    map[string]string{"orderer1": HealthOK, "orderer2": HealthOK, "orderer3": HealthOK, "peer0.org1": HealthOK, "peer0.org2": HealthOK},
			healthy: true, top: 10,
		},
		{
			name: "a peer that answers but reports no channel height is unhealthy",
			nodes: []node{
				{"orderer1", KindOrderer, HealthOK, height(10), leader(3)},
				{"peer0.org1", KindPeer, HealthOK, height(10), nil},
				{"peer0.org2", KindPeer, HealthOK, nil, nil},
			},
			want:    map[string]string{"orderer1": HealthOK, "peer0.org1": HealthOK, "peer0.org2": HealthUnhealthy},
			healthy: false, top: 10,
		},
		{
			name: "peer within the bound is ok",
			nodes: []node{
				{"peer0.org1", KindPeer, HealthOK, height(20), nil},
				{"peer0.org2", KindPeer, HealthOK, height(20 - MaxLag), nil},
			},
			want:    map[string]string{"peer0.org1": HealthOK, "peer0.org2": HealthOK},
			healthy: true, top: 20,
		},
		{
			name: "peer beyond the bound lags",
			nodes: []node{
				{"peer0.org1", KindPeer, HealthOK, height(20), nil},
				{"peer0.org2", KindPeer, HealthOK, height(20 - MaxLag - 1), nil},
			},
			want: map[string]string{"peer0.org1": HealthOK, "peer0.org2": HealthLagging},
			top:  20,
		},
		{
			name: "peers are compared with peers, not orderers",
			nodes: []node{
				{"orderer1", KindOrderer, HealthOK, height(30), &RaftStatus{Leader: true, ActiveNodes: 1, ClusterSize: 1}},
				{"peer0.org1", KindPeer, HealthOK, height(20), nil},
			},
			want:    map[string]string{"orderer1": HealthOK, "peer0.org1": HealthOK},
			healthy: true, top: 30,
		},
		{
			name: "orderer behind the other orderers lags",
			nodes: []node{
				{"orderer1", KindOrderer, HealthOK, height(40), leader(2)},
				{"orderer2", KindOrderer, HealthOK, height(3), follower},
				{"orderer3", KindOrderer, HealthOK, height(40), follower},
			},
			want: map[string]string{"orderer1": HealthOK, "orderer2": HealthLagging, "orderer3": HealthOK},
			top:  40,
		},
		{
			name: "leader without a quorum is isolated",
			nodes: []node{
				{"orderer1", KindOrderer, HealthOK, height(40), leader(1)},
				{"orderer2", KindOrderer, HealthDown, nil, nil},
				{"orderer3", KindOrderer, HealthDown, nil, nil},
			},
			want: map[string]string{"orderer1": HealthIsolated, "orderer2": HealthDown, "orderer3": HealthDown},
			top:  40,
		},
		{
			name: "no leader anywhere isolates every running orderer",
			nodes: []node{
				{"orderer1", KindOrderer, HealthOK, height(40), follower},
				{"orderer2", KindOrderer, HealthOK, height(40), follower},
				{"orderer3", KindOrderer, HealthStopped, nil, nil},
				{"peer0.org1", KindPeer, HealthOK, height(40), nil},
			},
			want: map[string]string{"orderer1": HealthIsolated, "orderer2": HealthIsolated, "orderer3": HealthStopped, "peer0.org1": HealthOK},
			top:  40,
		},
		{
			name: "a down node keeps its health and is not compared",
			nodes: []node{
				{"peer0.org1", KindPeer, HealthOK, height(50), nil},
				{"peer0.org2", KindPeer, HealthDown, nil, nil},
			},
			want: map[string]string{"peer0.org1": HealthOK, "peer0.org2": HealthDown},
			top:  50,
		},
		{
			name: "an orderer without Raft metrics is judged by height only",
			nodes: []node{
				{"orderer1", KindOrderer, HealthOK, height(7), nil},
			},
			want:    map[string]string{"orderer1": HealthOK},
			healthy: true, top: 7,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := &Status{}
			for _, n := range tc.nodes {
				st.Nodes = append(st.Nodes, NodeStatus{Name: n.name, Kind: n.kind, Health: n.health, Height: n.height, Raft: n.raft})
			}
			assess(st)
			got := map[string]string{}
			for _, ns := range st.Nodes {
				got[ns.Name] = ns.Health
				if ns.Health == HealthLagging || ns.Health == HealthIsolated {
					require.NotEmpty(t, ns.Error, "%s says why", ns.Name)
				}
			}
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.healthy, st.Healthy)
			require.Equal(t, tc.top, st.Height)
		})
	}
}
