// Package network runs a Hyperledger Fabric v2.5 network as plain processes
// on 127.0.0.1, without Docker: Raft orderers, one peer and one Fabric CA per
// organisation, a channel created through the channel participation API, and
// chaincode deployed as a service through the v2 lifecycle. In hosts mode
// (Options.Hosts) every org and every orderer runs in a Linux network
// namespace of its own instead, on a bridge the package makes and removes.
//
// Everything a network needs lives in its state directory; network.json in
// it records every process (PID, ports, log) so that another process can
// inspect, change or stop the network later (see Load).
package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/iotledger/iotledger/client"
)

// Defaults of Options.
const (
	DefaultChannel          = "iotledger"
	DefaultChaincode        = "iotledger"
	DefaultChaincodePackage = "./cmd/iotledger-chaincode"
	DefaultOrderers         = 3
	DefaultBatchTimeout     = 250 * time.Millisecond
	DefaultMaxMessageCount  = 500
	DefaultPolicy           = "MAJORITY"
)

// Roles given to the identities every org gets at Up, as the ecert attribute
// RoleAttribute.
var defaultIdentities = []string{"operator", "hub", "auditor"}

// RoleAttribute is the Fabric CA ecert attribute carrying an identity's role.
const RoleAttribute = "iotledger.role"

// Options configure Up.
type Options struct {
	StateDir          string        // default: DefaultStateDir()
	Orderers          int           // Raft orderers, default 3
	Orgs              []string      // peer organisations, default Org1, Org2
	BatchTimeout      time.Duration // default 250ms
	MaxMessageCount   int           // transactions per block, default 500
	EndorsementPolicy string        // of the iotledger chaincode: MAJORITY (default), ANY, ALL or a signature policy
	ChaincodePackage  string        // Go main package of the iotledger chaincode server, default ./cmd/iotledger-chaincode
	SourceDir         string        // root of the iotledger source tree; found from the working directory if empty
	FabricLogSpec     string        // FABRIC_LOGGING_SPEC of orderers and peers, default "info"
	Hosts             bool          // hosts mode: every org and orderer in a network namespace of its own (Linux, root)
	Logger            *slog.Logger  // default: discard
	Progress          io.Writer     // one line per step; nil for none
}

// DefaultStateDir is $IOTLEDGER_STATE_DIR, else ~/.iotledger/network.
func DefaultStateDir() string {
	if d := os.Getenv("IOTLEDGER_STATE_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "iotledger-network")
	}
	return filepath.Join(home, ".iotledger", "network")
}

func (o Options) withDefaults() (Options, error) {
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir()
	}
	abs, err := filepath.Abs(o.StateDir)
	if err != nil {
		return o, fmt.Errorf("state dir: %w", err)
	}
	o.StateDir = abs
	if o.Orderers == 0 {
		o.Orderers = DefaultOrderers
	}
	if o.Orderers < 1 || o.Orderers > 9 {
		return o, fmt.Errorf("--orderers %d: want 1 to 9 Raft orderers", o.Orderers)
	}
	if len(o.Orgs) == 0 {
		o.Orgs = []string{"Org1", "Org2"}
	}
	for _, org := range o.Orgs {
		if !validOrgName(org) {
			return o, fmt.Errorf("organisation name %q: use letters and digits, starting with a letter", org)
		}
	}
	if o.BatchTimeout == 0 {
		o.BatchTimeout = DefaultBatchTimeout
	}
	if o.BatchTimeout < 10*time.Millisecond || o.BatchTimeout > time.Minute {
		return o, fmt.Errorf("--batch-timeout %s: want between 10ms and 1m", o.BatchTimeout)
	}
	if o.MaxMessageCount == 0 {
		o.MaxMessageCount = DefaultMaxMessageCount
	}
	if o.MaxMessageCount < 1 {
		return o, fmt.Errorf("max message count %d: must be positive", o.MaxMessageCount)
	}
	if o.EndorsementPolicy == "" {
		o.EndorsementPolicy = DefaultPolicy
	}
	if _, err := policyArgs(o.EndorsementPolicy, mspIDs(o.Orgs)); err != nil {
		return o, err
	}
	if o.ChaincodePackage == "" {
		o.ChaincodePackage = DefaultChaincodePackage
	}
	if o.FabricLogSpec == "" {
		o.FabricLogSpec = "info"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

func validOrgName(s string) bool {
	if s == "" || len(s) > 32 || !isLetter(rune(s[0])) {
		return false
	}
	for _, r := range s {
		if !isLetter(r) && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}

func isLetter(r rune) bool { return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' }

func mspIDs(orgs []string) []string {
	out := make([]string, len(orgs))
	for i, o := range orgs {
		out[i] = o + "MSP"
	}
	return out
}

// Network is a running (or recorded) local Fabric network.
type Network struct {
	mu        sync.Mutex // guards state for the exported methods
	profileMu sync.Mutex // serialises read-modify-write of connection profiles
	state     *State
	kids      *children
	log       *slog.Logger
	progress  io.Writer
	// hostsLock, while up plans and creates a hosts-mode network's
	// namespaces, keeps other ups on this machine from choosing the same
	// subnet before its bridge exists (releaseHostsLock).
	hostsLock func()
}

// ErrAlreadyUp is returned by Up when the state directory holds a running network.
var ErrAlreadyUp = errors.New("network already up")

// Load opens the network recorded in stateDir, as started by Up in this or
// another process.
func Load(stateDir string) (*Network, error) {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return nil, err
	}
	st, err := loadState(abs)
	if err != nil {
		return nil, err
	}
	return &Network{state: st, kids: newChildren(), log: slog.New(slog.DiscardHandler)}, nil
}

// SetProgress directs step lines of long operations (Deploy, Down) to w.
func (n *Network) SetProgress(w io.Writer) { n.progress = w }

// SetLogger sets the logger of later operations.
func (n *Network) SetLogger(l *slog.Logger) {
	if l != nil {
		n.log = l
	}
}

// StateDir is the directory holding the network's state.
func (n *Network) StateDir() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.state.StateDir
}

// GenesisBlockPath is the channel's genesis block file, the one the
// orderers and peers joined the channel with.
func (n *Network) GenesisBlockPath() string { return n.state.GenesisBlock }

// Channel is the application channel's name.
func (n *Network) Channel() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.state.Channel
}

// Orgs lists the peer organisations ("Org1", "Org2").
func (n *Network) Orgs() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.state.orgNames()
}

// MSPID returns an organisation's MSP ID.
func (n *Network) MSPID(org string) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	o, err := n.state.org(org)
	if err != nil {
		return "", err
	}
	return o.MSPID, nil
}

// Nodes returns a copy of the recorded processes, as network.json has them
// now (another handle or process may have started or stopped nodes).
func (n *Network) Nodes() []Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	_ = n.reload() // keeps the last known state if the file is gone (Down)
	out := make([]Node, len(n.state.Nodes))
	for i, nd := range n.state.Nodes {
		out[i] = *nd
	}
	return out
}

// Chaincode returns the recorded definition of a deployed chaincode.
func (n *Network) Chaincode(name string) (ChaincodeState, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.state.chaincode(name)
	if c == nil {
		return ChaincodeState{}, false
	}
	return *c, true
}

// ProfilePath is where an org's connection profile is: <stateDir>/<org lowercase>/connection.json.
func (n *Network) ProfilePath(org string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.profilePath(org)
}

func (n *Network) profilePath(org string) string {
	return filepath.Join(n.state.StateDir, strings.ToLower(org), "connection.json")
}

// Profile loads an org's connection profile.
func (n *Network) Profile(org string) (*client.Profile, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	o, err := n.state.org(org)
	if err != nil {
		return nil, err
	}
	return client.LoadProfile(n.profilePath(o.Name))
}

func randomSecret() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// exclusive takes the network for a change: the in-process mutex and the
// state dir's file lock (so that two processes, e.g. a test and a CLI
// `network deploy`, do not interleave), then re-reads network.json so that
// changes made by another process are not overwritten.
func (n *Network) exclusive(ctx context.Context) (func(), error) {
	n.mu.Lock()
	unlock, err := lockFile(ctx, n.state.StateDir+".lock")
	if err != nil {
		n.mu.Unlock()
		return nil, err
	}
	release := func() {
		unlock()
		n.mu.Unlock()
	}
	if err := n.reload(); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// reload replaces the in-memory state with network.json.
func (n *Network) reload() error {
	st, err := loadState(n.state.StateDir)
	if err != nil {
		return err
	}
	n.state = st
	return nil
}

// stopAll stops chaincode servers, peers, CAs and orderers, in that order
// (stopOrder), each kind in parallel.
func (n *Network) stopAll(ctx context.Context) error {
	var all []error
	for _, kind := range stopOrder {
		all = append(all, n.stopNodes(ctx, n.state.nodesOf(kind)))
	}
	return errors.Join(all...)
}

// StopNode stops one node ("orderer2", "peer0.org1", "ca.org1",
// "chaincode.iotledger.org1"); Status then reports it as stopped.
func (n *Network) StopNode(ctx context.Context, name string) error {
	unlock, err := n.exclusive(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	nd, err := n.state.node(name)
	if err != nil {
		return err
	}
	if err := n.kids.stop(ctx, nd, stopGrace); err != nil {
		return err
	}
	nd.Stopped = true
	return n.state.save()
}

// StartNode starts a stopped (or crashed, or rebooted) node again with its
// recorded command and ports and waits until it is healthy; a recorded port
// taken by another process fails it with ErrPortBusy.
func (n *Network) StartNode(ctx context.Context, name string) error {
	unlock, err := n.exclusive(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	nd, err := n.state.node(name)
	if err != nil {
		return err
	}
	if processAlive(nd.PID, nd.StartTicks) {
		return fmt.Errorf("%s is already running (pid %d)", name, nd.PID)
	}
	if err := n.startNodes(ctx, []*Node{nd}); err != nil {
		return err
	}
	// Healthy is not yet serving: wait until the node reports the
	// channel's height again (status calls it unhealthy until then).
	var height func() error
	switch nd.Kind {
	case KindPeer:
		height = func() error {
			_, err := peerHeight(ctx, nd, n.state.Channel)
			return err
		}
	case KindOrderer:
		hc, err := n.ordererAdminClient()
		if err != nil {
			return err
		}
		height = func() error {
			_, err := ordererChannelInfo(ctx, hc, nd.addrOf(PortAdmin), n.state.Channel)
			return err
		}
	default:
		return nil
	}
	if err := retry(ctx, 60*time.Second, height); err != nil {
		return nodeFailure(nd, fmt.Errorf("channel %s not open after start: %w", n.state.Channel, err))
	}
	return nil
}

// Hosts returns the hosts-mode layout (namespaces, veths, bridge, subnet)
// and whether the network runs in hosts mode.
func (n *Network) Hosts() (HostsState, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state.Hosts == nil {
		return HostsState{}, false
	}
	hs := *n.state.Hosts
	hs.Hosts = append([]Host(nil), hs.Hosts...)
	return hs, true
}

// OrgHost returns, in hosts mode, the host (namespace and address) of the
// org named org ("Org1"); false for a network on 127.0.0.1 or an org it
// does not have.
func (n *Network) OrgHost(org string) (Host, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if h := n.state.Hosts.host(strings.ToLower(org)); h != nil {
		return *h, true
	}
	return Host{}, false
}

// OrgDirs returns, in hosts mode, each org's own directory by org name,
// the orderer org's as "OrdererOrg": each holds that org's private keys
// and none of another org's. Nil for a network on 127.0.0.1 (one crypto/
// for all).
func (n *Network) OrgDirs() map[string]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state.Hosts == nil {
		return nil
	}
	dirs := map[string]string{"OrdererOrg": filepath.Join(n.state.StateDir, ordererOrgDirName)}
	for _, o := range n.state.Orgs {
		dirs[o.Name] = filepath.Join(n.state.StateDir, strings.ToLower(o.Name))
	}
	return dirs
}
