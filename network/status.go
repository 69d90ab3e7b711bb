package network

import (
	"context"
	"sync"
)

// Health values of NodeStatus.
const (
	HealthOK        = "ok"
	HealthStopped   = "stopped"   // stopped on purpose (StopNode)
	HealthDown      = "down"      // process gone
	HealthUnhealthy = "unhealthy" // process running, health check failing
)

// Status is a snapshot of a network: every process and the channel.
type Status struct {
	StateDir   string            `json:"stateDir"`
	Channel    string            `json:"channel"`
	Healthy    bool              `json:"healthy"` // every node ok
	Height     uint64            `json:"height"`  // highest channel height any node reports
	Nodes      []NodeStatus      `json:"nodes"`
	Chaincodes []ChaincodeStatus `json:"chaincodes"`
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
	Log     string         `json:"log"`
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
// the channel height from orderers and peers, and the committed chaincode
// definitions from a peer.
func (n *Network) Status(ctx context.Context) (*Status, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.reload(); err != nil {
		return nil, err
	}
	st := &Status{StateDir: n.state.StateDir, Channel: n.state.Channel, Healthy: true}
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
					if h, err := peerHeight(ctx, nd, n.state.Channel); err == nil {
						ns.Height = &h
					} else {
						ns.Error = "height: " + err.Error()
					}
				case KindOrderer:
					if hcErr == nil {
						if info, err := ordererChannelInfo(ctx, hc, nd.Ports[PortAdmin], n.state.Channel); err == nil {
							ns.Height = &info.Height
						} else {
							ns.Error = "height: " + err.Error()
						}
					}
				}
			}
			st.Nodes[i] = ns
		}()
	}
	wg.Wait()
	for _, ns := range st.Nodes {
		if ns.Health != HealthOK {
			st.Healthy = false
		}
		if ns.Height != nil && *ns.Height > st.Height {
			st.Height = *ns.Height
		}
	}
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
