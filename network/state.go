package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/iotledger/iotledger/client"
)

// stateVersion is bumped when network.json changes incompatibly.
const stateVersion = 1

// NodeKind says what a process of the network is.
type NodeKind string

// The kinds of process a network runs.
const (
	KindOrderer   NodeKind = "orderer"
	KindPeer      NodeKind = "peer"
	KindCA        NodeKind = "ca"
	KindChaincode NodeKind = "chaincode"
)

// Port names used in Node.Ports.
const (
	PortListen     = "listen"     // gRPC / REST endpoint clients use
	PortOperations = "operations" // /healthz and /metrics
	PortAdmin      = "admin"      // orderer channel participation API
	PortCluster    = "cluster"    // orderer Raft traffic
	PortChaincode  = "chaincode"  // peer's chaincode listener
)

// Node is one process of the network as recorded in network.json: enough to
// find it (PID + start time), reach it (ports), debug it (log) and restart it
// (command, args, env, dir).
type Node struct {
	Name       string         `json:"name"` // "orderer1", "peer0.org1", "ca.org1", "chaincode.iotledger.org1"
	Kind       NodeKind       `json:"kind"`
	Org        string         `json:"org,omitempty"`
	Host       string         `json:"host,omitempty"` // TLS server name
	Command    string         `json:"command"`
	Args       []string       `json:"args,omitempty"`
	Env        []string       `json:"env"`
	Dir        string         `json:"dir"`
	Log        string         `json:"log"`
	Ports      map[string]int `json:"ports"`
	PID        int            `json:"pid"`
	StartTicks uint64         `json:"startTicks,omitempty"` // /proc start time; tells the node from a recycled PID
	Stopped    bool           `json:"stopped,omitempty"`    // stopped on purpose with StopNode
	// Hosts mode: the address the node listens on and the network
	// namespace it runs in (empty: 127.0.0.1 in the root namespace).
	IP    string `json:"ip,omitempty"`
	Netns string `json:"netns,omitempty"`
}

// Running tells whether the node's recorded process (PID and start time)
// is alive.
func (n *Node) Running() bool { return processAlive(n.PID, n.StartTicks) }

// Address is the node's main endpoint, <ip>:<listen port>: 127.0.0.1, or
// in hosts mode the address of its network namespace.
func (n *Node) Address() string { return n.addrOf(PortListen) }

// OrgState records one organisation's identities and endpoints.
type OrgState struct {
	Name      string `json:"name"`   // "Org1"
	MSPID     string `json:"mspId"`  // "Org1MSP"
	Domain    string `json:"domain"` // "org1.iotledger.local"
	Peer      string `json:"peer"`   // node name of its peer
	CA        string `json:"ca"`     // node name of its CA
	CryptoDir string `json:"cryptoDir"`
	// CAAdminHome holds the CA bootstrap admin's enrollment (registrar).
	CAAdminHome   string `json:"caAdminHome"`
	CAAdminSecret string `json:"caAdminSecret"` // bootstrap registrar's password (local network only)
	CAName        string `json:"caName"`
}

// ChaincodeState records a deployed chaincode definition.
type ChaincodeState struct {
	Name              string            `json:"name"`
	Package           string            `json:"package"` // Go main package path
	Version           string            `json:"version"`
	Sequence          int64             `json:"sequence"`
	Label             string            `json:"label"`
	EndorsementPolicy string            `json:"endorsementPolicy,omitempty"`
	CollectionsConfig string            `json:"collectionsConfig,omitempty"` // path of the JSON file
	PackageIDs        map[string]string `json:"packageIds"`                  // org -> package ID
	Servers           map[string]string `json:"servers"`                     // org -> node name
	Binary            string            `json:"binary"`
	DeployedAt        time.Time         `json:"deployedAt"`
}

// State is the content of <stateDir>/network.json.
type State struct {
	Version           int        `json:"version"`
	Name              string     `json:"network"`
	Channel           string     `json:"channel"`
	StateDir          string     `json:"stateDir"`
	SourceDir         string     `json:"sourceDir"`
	Binaries          Binaries   `json:"binaries"`
	BatchTimeout      string     `json:"batchTimeout"`
	EndorsementPolicy string     `json:"endorsementPolicy"`
	OrdererDomain     string     `json:"ordererDomain"`
	OrdererCryptoDir  string     `json:"ordererCryptoDir"`
	GenesisBlock      string     `json:"genesisBlock"`
	Orgs              []OrgState `json:"orgs"`
	// PendingOrgs are orgs created to join the channel (CreateOrg) that
	// have not joined it yet (JoinOrg): their peer and CA run, listed in
	// Nodes, but they are no member of the channel and take part in no
	// deployment.
	PendingOrgs []OrgState        `json:"pendingOrgs,omitempty"`
	Nodes       []*Node           `json:"nodes"`
	Chaincodes  []*ChaincodeState `json:"chaincodes"`
	CreatedAt   time.Time         `json:"createdAt"`
	// Setup is how far Up got creating the network: SetupCreating from
	// the first record on, SetupComplete once it finished. Empty in state
	// written before it was recorded (see complete).
	Setup string `json:"setup,omitempty"`
	// StoppedAt is when Stop stopped the whole network; nil while it runs.
	StoppedAt *time.Time `json:"stoppedAt,omitempty"`
	// StoppedHeight is the channel height Stop saw before stopping.
	StoppedHeight uint64 `json:"stoppedHeight,omitempty"`
	// BootID is the kernel's boot ID when the PIDs were recorded: PIDs of
	// an earlier boot name no process of ours (see forgetOtherBoot).
	BootID string `json:"bootId,omitempty"`
	// Hosts is the hosts-mode layout (namespaces, veths, bridge, subnet);
	// nil for a network on 127.0.0.1.
	Hosts *HostsState `json:"hosts,omitempty"`
}

// Values of State.Setup.
const (
	SetupCreating = "creating" // Up is creating the network, or failed to
	SetupComplete = "complete" // Up finished: ledgers, crypto and ports are kept from now on
)

// ErrNotUp is returned when a state directory holds no network.
var ErrNotUp = errors.New("no network is up")

func statePath(dir string) string { return filepath.Join(dir, "network.json") }

// loadState reads <dir>/network.json.
func loadState(dir string) (*State, error) {
	data, err := os.ReadFile(statePath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s (no network.json; run `iotledger network up`)", ErrNotUp, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("read network state: %w", err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("network state %s is corrupt: %w", statePath(dir), err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("network state %s has version %d, this build understands %d: run `iotledger network down` with the build that created it",
			statePath(dir), s.Version, stateVersion)
	}
	s.forgetOtherBoot(currentBootID())
	return &s, nil
}

// forgetOtherBoot drops the PIDs recorded in an earlier boot of the
// machine: after a reboot they name no process of ours, and a process of
// this boot may have been given the same PID (even with the same start
// time, which counts from boot).
func (s *State) forgetOtherBoot(boot string) {
	if s.BootID == "" || boot == "" || s.BootID == boot {
		return
	}
	for _, n := range s.Nodes {
		n.PID, n.StartTicks = 0, 0
	}
	s.BootID = boot
}

// complete tells whether Up finished creating the network, so that its
// ledgers, crypto material and ports are to be kept. State written before
// Setup was recorded counts as complete when it holds what Up's last steps
// leave: the iotledger chaincode with a server per org and every org's
// connection profile with the hubs' TLS files.
func (s *State) complete() bool {
	switch s.Setup {
	case SetupComplete:
		return true
	case "":
	default:
		return false
	}
	cc := s.chaincode(DefaultChaincode)
	if cc == nil || len(s.Orgs) == 0 {
		return false
	}
	for _, o := range s.Orgs {
		if _, ok := cc.Servers[o.Name]; !ok {
			return false
		}
		p, err := client.LoadProfile(filepath.Join(s.StateDir, strings.ToLower(o.Name), "connection.json"))
		if err != nil || p.HubTLS == nil {
			return false
		}
	}
	return true
}

// save writes network.json atomically, with the current boot ID (every
// PID it holds is of this boot: loadState dropped older ones).
func (s *State) save() error {
	if b := currentBootID(); b != "" {
		s.BootID = b
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode network state: %w", err)
	}
	p := statePath(s.StateDir)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write network state: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("write network state: %w", err)
	}
	return nil
}

func (s *State) node(name string) (*Node, error) {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("%w %q in the network (nodes: %s)", ErrUnknownNode, name, strings.Join(s.nodeNames(), ", "))
}

// ErrUnknownNode is returned for a node name the network does not have.
var ErrUnknownNode = errors.New("no node")

func (s *State) nodeNames() []string {
	names := make([]string, 0, len(s.Nodes))
	for _, n := range s.Nodes {
		names = append(names, n.Name)
	}
	return names
}

func (s *State) nodesOf(kind NodeKind) []*Node {
	var out []*Node
	for _, n := range s.Nodes {
		if n.Kind == kind {
			out = append(out, n)
		}
	}
	return out
}

func (s *State) org(name string) (*OrgState, error) {
	for i := range s.Orgs {
		if strings.EqualFold(s.Orgs[i].Name, name) || s.Orgs[i].MSPID == name {
			return &s.Orgs[i], nil
		}
	}
	return nil, fmt.Errorf("no organisation %q in the network (have %s)", name, strings.Join(s.orgNames(), ", "))
}

// pendingOrg is the created org named name that has not joined yet.
func (s *State) pendingOrg(name string) (int, *OrgState) {
	for i := range s.PendingOrgs {
		if strings.EqualFold(s.PendingOrgs[i].Name, name) || s.PendingOrgs[i].MSPID == name {
			return i, &s.PendingOrgs[i]
		}
	}
	return -1, nil
}

// isPending tells whether the org named name was created but has not
// joined the channel: its peer has no channel yet.
func (s *State) isPending(name string) bool {
	_, o := s.pendingOrg(name)
	return o != nil
}

func (s *State) orgNames() []string {
	out := make([]string, len(s.Orgs))
	for i, o := range s.Orgs {
		out[i] = o.Name
	}
	return out
}

func (s *State) chaincode(name string) *ChaincodeState {
	for _, c := range s.Chaincodes {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// liveNodes returns the recorded nodes whose process is still running.
func (s *State) liveNodes() []*Node {
	var out []*Node
	for _, n := range s.Nodes {
		if processAlive(n.PID, n.StartTicks) {
			out = append(out, n)
		}
	}
	return out
}
