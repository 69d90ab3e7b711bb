package network

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Health values of NodeStatus.
const (
	HealthOK        = "ok"
	HealthStopped   = "stopped"   // stopped on purpose (StopNode)
	HealthDown      = "down"      // process gone
	HealthUnhealthy = "unhealthy" // process running, health check failing
	HealthLagging   = "lagging"   // healthy process, channel height behind the others
	HealthIsolated  = "isolated"  // orderer without a Raft quorum or leader
)

// MaxLag is how many blocks a peer may be behind the highest peer (an
// orderer behind the highest orderer) and still be ok: blocks being
// delivered while status asks.
const MaxLag = 5

// Status is a snapshot of a network: every process and the channel.
type Status struct {
	StateDir   string            `json:"stateDir"`
	Channel    string            `json:"channel"`
	Healthy    bool              `json:"healthy"` // every node ok
	Height     uint64            `json:"height"`  // highest channel height any node reports
	Nodes      []NodeStatus      `json:"nodes"`
	Chaincodes []ChaincodeStatus `json:"chaincodes"`
	// StoppedAt is when Stop stopped the network (nil unless stopped), and
	// StoppedHeight the channel height it saw then.
	StoppedAt     *time.Time `json:"stoppedAt,omitempty"`
	StoppedHeight uint64     `json:"stoppedHeight,omitempty"`
}

// NodeStatus is one process of the network.
type NodeStatus struct {
	Name    string         `json:"name"`
	Kind    NodeKind       `json:"kind"`
	Org     string         `json:"org,omitempty"`
	PID     int            `json:"pid"`
	Address string         `json:"address"`
	Ports   map[string]int `json:"ports"`
	Health  string         `json:"health"`
	Error   string         `json:"error,omitempty"`
	Height  *uint64        `json:"height,omitempty"` // channel height (orderers, peers)
	Behind  uint64         `json:"behind,omitempty"` // blocks behind the highest node of its kind
	Raft    *RaftStatus    `json:"raft,omitempty"`   // orderers: Raft state from the operations metrics
	Log     string         `json:"log"`
	// AwaitingJoin marks the peer of an org created to join the channel
	// that has not joined yet: healthy without a channel height.
	AwaitingJoin bool `json:"awaitingJoin,omitempty"`
}

// RaftStatus is an orderer's view of its Raft cluster for the channel, from
// the consensus_etcdraft_* metrics of its operations endpoint. Fabric
// updates ActiveNodes on the leader only (a follower keeps a stale value),
// so it is judged on the leader.
type RaftStatus struct {
	Leader      bool `json:"leader"`
	ActiveNodes int  `json:"activeNodes"`
	ClusterSize int  `json:"clusterSize"`
}

// ChaincodeStatus is a chaincode definition as recorded and as committed.
type ChaincodeStatus struct {
	Name              string            `json:"name"`
	Version           string            `json:"version"`
	Sequence          int64             `json:"sequence"`
	EndorsementPolicy string            `json:"endorsementPolicy"`
	PackageIDs        map[string]string `json:"packageIds"`
	CommittedSequence int64             `json:"committedSequence"` // as the first healthy peer reports it
	Error             string            `json:"error,omitempty"`
}

// Unhealthy lists the nodes that are not ok.
func (s *Status) Unhealthy() []NodeStatus {
	var out []NodeStatus
	for _, n := range s.Nodes {
		if n.Health != HealthOK {
			out = append(out, n)
		}
	}
	return out
}

// Status checks every node (process, operations /healthz or listener), reads
// the channel height from orderers and peers and the Raft state from
// orderers, compares them (see assess), and reads the committed chaincode
// definitions from a peer.
func (n *Network) Status(ctx context.Context) (*Status, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.reload(); err != nil {
		return nil, err
	}
	st := n.status(ctx)
	var org *OrgState
	for i := range n.state.Orgs {
		if p, err := n.state.node(n.state.Orgs[i].Peer); err == nil && processAlive(p.PID, p.StartTicks) {
			org = &n.state.Orgs[i]
			break
		}
	}
	for _, cc := range n.state.Chaincodes {
		cs := ChaincodeStatus{Name: cc.Name, Version: cc.Version, Sequence: cc.Sequence, EndorsementPolicy: cc.EndorsementPolicy, PackageIDs: cc.PackageIDs}
		if org == nil {
			cs.Error = "no peer running to ask"
		} else if d, err := n.queryCommitted(ctx, org, cc.Name); err != nil {
			cs.Error = err.Error()
		} else {
			cs.CommittedSequence = d.Sequence
		}
		st.Chaincodes = append(st.Chaincodes, cs)
	}
	return st, nil
}

// status checks the nodes of the state in memory (Status without the
// chaincodes; the caller holds n.mu).
func (n *Network) status(ctx context.Context) *Status {
	st := &Status{StateDir: n.state.StateDir, Channel: n.state.Channel, Healthy: true,
		StoppedAt: n.state.StoppedAt, StoppedHeight: n.state.StoppedHeight}
	st.Nodes = make([]NodeStatus, len(n.state.Nodes))
	hc, hcErr := n.ordererAdminClient()
	var wg sync.WaitGroup
	for i, nd := range n.state.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ns := NodeStatus{Name: nd.Name, Kind: nd.Kind, Org: nd.Org, PID: nd.PID, Address: nd.Address(), Ports: nd.Ports, Log: nd.Log, Health: HealthOK}
			if err := nodeHealth(ctx, nd); err != nil {
				ns.Error = err.Error()
				switch {
				case nd.Stopped && !processAlive(nd.PID, nd.StartTicks):
					ns.Health = HealthStopped
				case !processAlive(nd.PID, nd.StartTicks):
					ns.Health = HealthDown
				default:
					ns.Health = HealthUnhealthy
				}
			}
			if ns.Health == HealthOK {
				switch nd.Kind {
				case KindPeer:
					if n.state.isPending(nd.Org) {
						ns.AwaitingJoin = true // created, not yet in the channel: no height to ask
					} else if h, err := peerHeight(ctx, nd, n.state.Channel); err == nil {
						ns.Height = &h
					} else {
						ns.Error = "height: " + err.Error()
					}
				case KindOrderer:
					m, mErr := scrapeMetrics(ctx, nd.addrOf(PortOperations), n.state.Channel)
					if mErr == nil {
						ns.Raft = raftStatus(m)
					}
					if hcErr == nil {
						if info, err := ordererChannelInfo(ctx, hc, nd.addrOf(PortAdmin), n.state.Channel); err == nil {
							ns.Height = &info.Height
						} else {
							ns.Error = "height: " + err.Error()
						}
					}
					if ns.Height == nil && mErr == nil {
						if h, ok := m[metricHeight]; ok {
							v := uint64(h)
							ns.Height = &v
							ns.Error = ""
						}
					}
					if mErr != nil && ns.Error == "" {
						ns.Error = "metrics: " + mErr.Error()
					}
				}
			}
			st.Nodes[i] = ns
		}()
	}
	wg.Wait()
	assess(st)
	return st
}

// assess compares the nodes that answered ok with each other: a peer more
// than MaxLag blocks behind the highest peer, or an orderer more than
// MaxLag behind the highest orderer, becomes lagging; an orderer becomes
// isolated when no running orderer is Raft leader, or when it leads with
// fewer active nodes than a quorum of its cluster; a peer or orderer that
// reports no channel height is unhealthy. It sets Height (the
// highest height any node reports) and Healthy (every node ok).
func assess(st *Status) {
	top := map[NodeKind]uint64{}
	st.Height = 0
	for _, ns := range st.Nodes {
		if ns.Height == nil {
			continue
		}
		top[ns.Kind] = max(top[ns.Kind], *ns.Height)
		st.Height = max(st.Height, *ns.Height)
	}
	leaders, orderers := 0, 0
	for _, ns := range st.Nodes {
		if ns.Kind == KindOrderer && ns.Health == HealthOK && ns.Raft != nil {
			orderers++
			if ns.Raft.Leader {
				leaders++
			}
		}
	}
	for i := range st.Nodes {
		ns := &st.Nodes[i]
		if ns.Health != HealthOK {
			continue
		}
		if ns.Height == nil && (ns.Kind == KindPeer || ns.Kind == KindOrderer) && !ns.AwaitingJoin {
			// It answers its health check but cannot say how far its
			// channel is (just restarted, not joined, or its ledger fails).
			ns.Health = HealthUnhealthy
			if ns.Error == "" {
				ns.Error = "no channel height"
			}
			continue
		}
		if ns.Kind == KindOrderer && ns.Raft != nil {
			r := ns.Raft
			quorum := r.ClusterSize/2 + 1
			switch {
			case orderers > 0 && leaders == 0:
				ns.Health = HealthIsolated
				ns.Error = "no running orderer is Raft leader"
				continue
			case r.Leader && r.ActiveNodes < quorum:
				ns.Health = HealthIsolated
				ns.Error = fmt.Sprintf("Raft leader with %d of %d nodes active (quorum %d)", r.ActiveNodes, r.ClusterSize, quorum)
				continue
			}
		}
		if ns.Height != nil && (ns.Kind == KindPeer || ns.Kind == KindOrderer) {
			ns.Behind = top[ns.Kind] - *ns.Height
			if ns.Behind > MaxLag {
				ns.Health = HealthLagging
				ns.Error = fmt.Sprintf("height %d, %d behind the highest %s (%d)", *ns.Height, ns.Behind, ns.Kind, top[ns.Kind])
			}
		}
	}
	st.Healthy = true
	for _, ns := range st.Nodes {
		if ns.Health != HealthOK {
			st.Healthy = false
		}
	}
}

// Metric names read from the operations endpoints (label channel="...").
const (
	metricHeight      = "ledger_blockchain_height"
	metricActiveNodes = "consensus_etcdraft_active_nodes"
	metricIsLeader    = "consensus_etcdraft_is_leader"
	metricClusterSize = "consensus_etcdraft_cluster_size"
)

// raftStatus reads an orderer's Raft state from its parsed metrics; nil
// when it exports none for the channel (not a consenter of it).
func raftStatus(m map[string]float64) *RaftStatus {
	size, ok := m[metricClusterSize]
	if !ok {
		return nil
	}
	return &RaftStatus{
		Leader:      m[metricIsLeader] == 1,
		ActiveNodes: int(m[metricActiveNodes]),
		ClusterSize: int(size),
	}
}
