// Package network runs a Hyperledger Fabric v2.5 network as plain processes
// on 127.0.0.1, without Docker: Raft orderers, one peer and one Fabric CA per
// organisation, a channel created through the channel participation API, and
// chaincode deployed as a service through the v2 lifecycle.
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
	"net/http"
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
func (n *Network) StateDir() string { return n.state.StateDir }

// Channel is the application channel's name.
func (n *Network) Channel() string { return n.state.Channel }

// Orgs lists the peer organisations ("Org1", "Org2").
func (n *Network) Orgs() []string { return n.state.orgNames() }

// MSPID returns an organisation's MSP ID.
func (n *Network) MSPID(org string) (string, error) {
	o, err := n.state.org(org)
	if err != nil {
		return "", err
	}
	return o.MSPID, nil
}

// Nodes returns a copy of the recorded processes.
func (n *Network) Nodes() []Node {
	n.mu.Lock()
	defer n.mu.Unlock()
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
	return filepath.Join(n.state.StateDir, strings.ToLower(org), "connection.json")
}

// Profile loads an org's connection profile.
func (n *Network) Profile(org string) (*client.Profile, error) {
	o, err := n.state.org(org)
	if err != nil {
		return nil, err
	}
	return client.LoadProfile(n.ProfilePath(o.Name))
}

// Up builds the Fabric binaries if needed, then creates and starts a
// network in opts.StateDir, deploys the iotledger chaincode and enrolls
// every org's operator, hub and auditor. It returns when every node is
// healthy and discovery offers every org's peer for the chaincode.
//
// A state directory whose recorded processes are all gone (a crash, a
// reboot) is cleaned and reused; one with live processes gives ErrAlreadyUp.
// If Up fails it stops what it started and keeps the state directory, so
// that the logs it names can be read; Up or Down later clean it.
func Up(ctx context.Context, opts Options) (*Network, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(opts.StateDir), 0o755); err != nil {
		return nil, fmt.Errorf("create state dir parent: %w", err)
	}
	unlock, err := lockFile(ctx, opts.StateDir+".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := prepareStateDir(ctx, opts); err != nil {
		return nil, err
	}
	n := &Network{kids: newChildren(), log: opts.Logger, progress: opts.Progress}
	start := time.Now()
	if err := n.up(ctx, opts); err != nil {
		if n.state != nil {
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			if serr := n.stopAll(stopCtx); serr != nil {
				err = errors.Join(err, fmt.Errorf("stopping the nodes after the failure: %w", serr))
			}
			cancel()
			_ = n.state.save()
		}
		return nil, err
	}
	n.summary(time.Since(start))
	return n, nil
}

// prepareStateDir refuses a running network and cleans a crashed one.
func prepareStateDir(ctx context.Context, opts Options) error {
	st, err := loadState(opts.StateDir)
	switch {
	case err == nil:
		if live := st.liveNodes(); len(live) > 0 {
			return fmt.Errorf("%w in %s (%d of %d processes running): use `iotledger network status`, or `iotledger network down` first",
				ErrAlreadyUp, opts.StateDir, len(live), len(st.Nodes))
		}
		opts.Logger.InfoContext(ctx, "cleaning the state of a network whose processes are gone", "dir", opts.StateDir)
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "found a stopped or crashed network in %s (no live process): cleaning it\n", opts.StateDir)
		}
		return os.RemoveAll(opts.StateDir)
	case errors.Is(err, ErrNotUp):
		entries, rerr := os.ReadDir(opts.StateDir)
		if rerr == nil && len(entries) > 0 {
			return fmt.Errorf("state dir %s is not empty and holds no network.json: choose another --state-dir or remove it", opts.StateDir)
		}
		return nil
	default:
		return err
	}
}

// step runs one step of a long operation and prints its duration.
func (n *Network) step(ctx context.Context, name string, f func() error) error {
	t := time.Now()
	err := f()
	d := time.Since(t).Round(10 * time.Millisecond)
	if err != nil {
		if n.progress != nil {
			fmt.Fprintf(n.progress, "  FAIL %-56s %8s\n", name, d)
		}
		return err
	}
	n.log.InfoContext(ctx, "step done", "step", name, "took", d)
	if n.progress != nil {
		fmt.Fprintf(n.progress, "  ok   %-56s %8s\n", name, d)
	}
	return nil
}

func (n *Network) up(ctx context.Context, opts Options) error {
	dir := opts.StateDir
	for _, d := range []string{"config", "logs", "nodes", "chaincode"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("create state dir: %w", err)
		}
	}
	src, err := FindSourceRoot(opts.SourceDir)
	if err != nil {
		return err
	}
	var bins *Binaries
	if err := n.step(ctx, "Fabric binaries (v2.5.0, CA v1.5.15)", func() (err error) {
		bins, err = EnsureBinaries(ctx, src, n.progress)
		return err
	}); err != nil {
		return err
	}

	// The chaincode server compiles while the nodes start.
	ccBuild := n.buildChaincodeAsync(ctx, src, filepath.Join(dir, "chaincode", DefaultChaincode, "build"), opts.ChaincodePackage)

	if err := n.step(ctx, "crypto material and node configs", func() error {
		return n.plan(ctx, opts, src, bins)
	}); err != nil {
		return err
	}
	if err := n.step(ctx, fmt.Sprintf("start %d orderers, %d peers, %d CAs", opts.Orderers, len(opts.Orgs), len(opts.Orgs)), func() error {
		return n.startNodes(ctx, n.state.Nodes)
	}); err != nil {
		return err
	}
	if err := n.step(ctx, "channel "+n.state.Channel+" (orderers + peers joined)", func() error {
		return n.createChannel(ctx)
	}); err != nil {
		return err
	}
	var ccBinary string
	if err := n.step(ctx, "chaincode server build", func() (err error) {
		ccBinary, err = ccBuild()
		return err
	}); err != nil {
		return err
	}
	if err := n.deploy(ctx, ChaincodeSpec{
		Name: DefaultChaincode, Package: opts.ChaincodePackage, EndorsementPolicy: opts.EndorsementPolicy,
	}, ccBinary); err != nil {
		return err
	}
	return n.step(ctx, "identities (operator, hub, auditor per org)", func() error {
		return n.enrollDefaultIdentities(ctx)
	})
}

func (n *Network) summary(d time.Duration) {
	if n.progress == nil {
		return
	}
	fmt.Fprintf(n.progress, "\nnetwork up in %s: channel %s, chaincode %s, state in %s\n",
		d.Round(100*time.Millisecond), n.state.Channel, DefaultChaincode, n.state.StateDir)
	for _, nd := range n.state.Nodes {
		fmt.Fprintf(n.progress, "  %-28s pid %-7d %-16s log %s\n", nd.Name, nd.PID, nd.Address(), nd.Log)
	}
	for _, o := range n.state.Orgs {
		fmt.Fprintf(n.progress, "  profile %-8s %s\n", o.Name, n.ProfilePath(o.Name))
	}
}

// plan generates crypto, allocates ports, writes every node's config and
// records the network in network.json (before any process starts, so a
// failure later can always be cleaned up).
func (n *Network) plan(ctx context.Context, opts Options, src string, bins *Binaries) error {
	dir := opts.StateDir
	cryptoDir := filepath.Join(dir, "crypto")
	const ordererDomain = "iotledger.local"
	cc := cryptoConfig{OrdererOrgs: []cryptoOrg{{Name: "Orderer", Domain: ordererDomain, EnableNodeOUs: true}}}
	for i := 1; i <= opts.Orderers; i++ {
		cc.OrdererOrgs[0].Specs = append(cc.OrdererOrgs[0].Specs, cryptoSpec{Hostname: fmt.Sprintf("orderer%d", i), SANS: loopbackSANs})
	}
	for _, org := range opts.Orgs {
		cc.PeerOrgs = append(cc.PeerOrgs, cryptoOrg{
			Name: org, Domain: strings.ToLower(org) + "." + ordererDomain, EnableNodeOUs: true,
			Template: &cryptoTemplate{Count: 1, SANS: loopbackSANs}, Users: &cryptoUsers{Count: 0},
		})
	}
	if err := generateCrypto(ctx, bins.CryptoGen, filepath.Join(dir, "config"), cryptoDir, cc); err != nil {
		return err
	}

	ports, err := newPortAllocator(opts.Orderers*4 + len(opts.Orgs)*5)
	if err != nil {
		return err
	}
	st := &State{
		Version: stateVersion, Name: "iotledger", Channel: DefaultChannel, StateDir: dir, SourceDir: src,
		Binaries: *bins, BatchTimeout: opts.BatchTimeout.String(), EndorsementPolicy: opts.EndorsementPolicy,
		OrdererDomain:    ordererDomain,
		OrdererCryptoDir: filepath.Join(cryptoDir, "ordererOrganizations", ordererDomain),
		GenesisBlock:     filepath.Join(dir, "config", DefaultChannel+".block"),
		CreatedAt:        time.Now().UTC(),
	}
	n.state = st
	baseEnv := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "FABRIC_LOGGING_SPEC=" + opts.FabricLogSpec}

	var consenters []ctxConsenter
	var endpoints []string
	for i := 1; i <= opts.Orderers; i++ {
		name := fmt.Sprintf("orderer%d", i)
		host := name + "." + ordererDomain
		nodeDir := filepath.Join(dir, "nodes", name)
		tlsDir := filepath.Join(st.OrdererCryptoDir, "orderers", host, "tls")
		nd := &Node{
			Name: name, Kind: KindOrderer, Host: host, Command: bins.Orderer, Dir: nodeDir,
			Env:   append(append([]string{}, baseEnv...), "FABRIC_CFG_PATH="+nodeDir),
			Log:   filepath.Join(dir, "logs", name+".log"),
			Ports: map[string]int{PortListen: ports.next(), PortCluster: ports.next(), PortAdmin: ports.next(), PortOperations: ports.next()},
		}
		cfg := ordererConfig{
			MSPID: "OrdererMSP", MSPDir: filepath.Join(st.OrdererCryptoDir, "orderers", host, "msp"), TLSDir: tlsDir,
			AdminTLSCA: n.ordererTLSCA(), DataDir: filepath.Join(nodeDir, "data"),
			ListenPort: nd.Ports[PortListen], ClusterPort: nd.Ports[PortCluster], AdminPort: nd.Ports[PortAdmin], OperationsPort: nd.Ports[PortOperations],
		}
		if err := writeNodeConfig(bins.SampleConfig, "orderer.yaml", nodeDir, cfg.settings()); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		st.Nodes = append(st.Nodes, nd)
		consenters = append(consenters, ctxConsenter{
			Host: "127.0.0.1", Port: nd.Ports[PortCluster],
			ClientTLSCert: filepath.Join(tlsDir, "server.crt"), ServerTLSCert: filepath.Join(tlsDir, "server.crt"),
		})
		endpoints = append(endpoints, nd.Address())
	}

	builder, err := writeCCaaSBuilder(filepath.Join(dir, "builders", "ccaas"))
	if err != nil {
		return err
	}
	var appOrgs []ctxOrg
	for _, name := range opts.Orgs {
		lower := strings.ToLower(name)
		domain := lower + "." + ordererDomain
		org := OrgState{
			Name: name, MSPID: name + "MSP", Domain: domain,
			Peer: "peer0." + lower, CA: "ca." + lower, CAName: "ca-" + lower,
			CryptoDir:   filepath.Join(cryptoDir, "peerOrganizations", domain),
			CAAdminHome: filepath.Join(dir, lower, "ca-admin"),
		}
		host := "peer0." + domain
		nodeDir := filepath.Join(dir, "nodes", org.Peer)
		peer := &Node{
			Name: org.Peer, Kind: KindPeer, Org: name, Host: host, Command: bins.Peer, Args: []string{"node", "start"}, Dir: nodeDir,
			Env:   append(append([]string{}, baseEnv...), "FABRIC_CFG_PATH="+nodeDir),
			Log:   filepath.Join(dir, "logs", org.Peer+".log"),
			Ports: map[string]int{PortListen: ports.next(), PortChaincode: ports.next(), PortOperations: ports.next()},
		}
		pc := peerConfig{
			ID: host, MSPID: org.MSPID, MSPDir: filepath.Join(org.CryptoDir, "peers", host, "msp"),
			TLSDir: filepath.Join(org.CryptoDir, "peers", host, "tls"), DataDir: filepath.Join(nodeDir, "data"),
			ListenPort: peer.Ports[PortListen], ChaincodePort: peer.Ports[PortChaincode], OperationsPort: peer.Ports[PortOperations],
			BuilderDir: builder, Gossip: localGossip,
		}
		if err := writeNodeConfig(bins.SampleConfig, "core.yaml", nodeDir, pc.settings()); err != nil {
			return fmt.Errorf("%s: %w", org.Peer, err)
		}

		caSecret, err := randomSecret()
		if err != nil {
			return err
		}
		caHome := filepath.Join(dir, lower, "ca")
		if err := os.MkdirAll(caHome, 0o755); err != nil {
			return err
		}
		caKey, err := findKey(filepath.Join(org.CryptoDir, "ca"))
		if err != nil {
			return err
		}
		ca := &Node{
			Name: org.CA, Kind: KindCA, Org: name, Host: "localhost", Command: bins.CAServer, Dir: caHome,
			Log:   filepath.Join(dir, "logs", org.CA+".log"),
			Ports: map[string]int{PortListen: ports.next(), PortOperations: ports.next()},
		}
		ca.Args = []string{"start", "-b", caAdminUser + ":" + caSecret, "--address", "127.0.0.1", "--port", fmt.Sprint(ca.Ports[PortListen]),
			"--tls.enabled", "--ca.name", org.CAName,
			// The CA signs with the org's cryptogen CA key, so the
			// identities it issues are members of the org's MSP.
			"--ca.certfile", n.caCert(&org), "--ca.keyfile", caKey,
			"--csr.hosts", "localhost,127.0.0.1"}
		ca.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
			"FABRIC_CA_SERVER_HOME=" + caHome,
			"FABRIC_CA_SERVER_OPERATIONS_LISTENADDRESS=" + addr(ca.Ports[PortOperations]),
			"FABRIC_CA_SERVER_METRICS_PROVIDER=prometheus"}
		st.Nodes = append(st.Nodes, peer, ca)
		st.Orgs = append(st.Orgs, org)
		appOrgs = append(appOrgs, ctxOrg{
			Name: name, ID: org.MSPID, MSPDir: filepath.Join(org.CryptoDir, "msp"), Policies: peerOrgPolicies(org.MSPID),
			AnchorPeers: []ctxAnchorPeer{{Host: "127.0.0.1", Port: peer.Ports[PortListen]}},
		})
	}
	if err := generateGenesisBlock(ctx, bins.ConfigTxGen, filepath.Join(dir, "config"), st.Channel, st.GenesisBlock,
		buildConfigTx(channelConfigInput{
			OrdererMSPDir: filepath.Join(st.OrdererCryptoDir, "msp"), OrdererEndpoints: endpoints, Consenters: consenters,
			PeerOrgs: appOrgs, BatchTimeout: opts.BatchTimeout, MaxMessageCount: opts.MaxMessageCount,
		})); err != nil {
		return err
	}
	return st.save()
}

func writeNodeConfig(sampleDir, file, nodeDir string, settings []yamlSetting) error {
	if err := os.MkdirAll(filepath.Join(nodeDir, "data"), 0o755); err != nil {
		return err
	}
	return editYAML(filepath.Join(sampleDir, file), filepath.Join(nodeDir, file), settings)
}

func findKey(dir string) (string, error) {
	keys, _ := filepath.Glob(filepath.Join(dir, "*_sk"))
	if len(keys) != 1 {
		return "", fmt.Errorf("%s: want one private key (*_sk), found %d", dir, len(keys))
	}
	return keys[0], nil
}

// startNodes starts nodes in parallel, checking first that their ports are
// free, and waits until each is healthy.
func (n *Network) startNodes(ctx context.Context, nodes []*Node) error {
	for _, nd := range nodes {
		for pname, p := range nd.Ports {
			if err := checkPortFree(p); err != nil {
				return &NodeError{Node: nd.Name, Log: nd.Log, Err: fmt.Errorf("%s port: %w", pname, err)}
			}
		}
	}
	for _, nd := range nodes {
		if err := n.kids.start(nd); err != nil {
			return err
		}
		nd.Stopped = false
	}
	if err := n.state.save(); err != nil {
		return err
	}
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, nd := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = waitHealthy(ctx, n.kids, nd, 90*time.Second)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (n *Network) createChannel(ctx context.Context) error {
	hc, err := n.ordererAdminClient()
	if err != nil {
		return err
	}
	for _, o := range n.state.nodesOf(KindOrderer) {
		if err := joinOrderer(ctx, hc, o.Ports[PortAdmin], n.state.GenesisBlock); err != nil {
			return nodeFailure(o, err)
		}
	}
	// Wait for the channel to work (a Raft leader), then join the peers.
	if err := retry(ctx, 60*time.Second, func() error {
		for _, o := range n.state.nodesOf(KindOrderer) {
			info, err := ordererChannelInfo(ctx, hc, o.Ports[PortAdmin], n.state.Channel)
			if err != nil {
				return nodeFailure(o, err)
			}
			if info.Status != "active" {
				return fmt.Errorf("%s: channel status %q", o.Name, info.Status)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	errs := make([]error, len(n.state.Orgs))
	var wg sync.WaitGroup
	for i := range n.state.Orgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			org := &n.state.Orgs[i]
			errs[i] = retry(ctx, 60*time.Second, func() error {
				_, err := n.peerCLI(ctx, org, "channel", "join", "-b", n.state.GenesisBlock)
				if err != nil && strings.Contains(err.Error(), "already exists") {
					return nil
				}
				return err
			})
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (n *Network) ordererAdminClient() (*http.Client, error) {
	admin := filepath.Join(n.state.OrdererCryptoDir, "users", "Admin@"+n.state.OrdererDomain, "tls")
	return adminClient(n.ordererTLSCA(), filepath.Join(admin, "client.crt"), filepath.Join(admin, "client.key"))
}

func (n *Network) enrollDefaultIdentities(ctx context.Context) error {
	errs := make([]error, len(n.state.Orgs))
	var wg sync.WaitGroup
	for i := range n.state.Orgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			org := &n.state.Orgs[i]
			if err := n.writeBaseProfile(org); err != nil {
				errs[i] = err
				return
			}
			ca, err := n.state.node(org.CA)
			if err != nil {
				errs[i] = err
				return
			}
			secret := ""
			for j, a := range ca.Args {
				if a == "-b" && j+1 < len(ca.Args) {
					_, secret, _ = strings.Cut(ca.Args[j+1], ":")
				}
			}
			if err := n.enrollCAAdmin(ctx, org, secret); err != nil {
				errs[i] = err
				return
			}
			for _, role := range defaultIdentities {
				if _, err := n.enrollIdentity(ctx, org.Name, role, map[string]string{RoleAttribute: role}); err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (n *Network) baseProfile(org *OrgState) (*client.Profile, error) {
	p, err := n.state.node(org.Peer)
	if err != nil {
		return nil, err
	}
	ca, err := n.state.node(org.CA)
	if err != nil {
		return nil, err
	}
	admin := n.adminMSPDir(org)
	key, err := findKey(filepath.Join(admin, "keystore"))
	if err != nil {
		return nil, err
	}
	return &client.Profile{
		Network: n.state.Name, Channel: n.state.Channel, Chaincode: DefaultChaincode, Org: org.Name, MSPID: org.MSPID,
		Peer: client.PeerEndpoint{Address: p.Address(), ServerName: p.Host, TLSCACert: n.peerTLSCA(org)},
		CA:   &client.CAEndpoint{URL: "https://" + ca.Address(), TLSCACert: n.caCert(org)},
		Identities: map[string]client.IdentityFiles{
			"admin": {MSPID: org.MSPID, Cert: filepath.Join(admin, "signcerts", "Admin@"+org.Domain+"-cert.pem"), Key: key},
		},
	}, nil
}

func (n *Network) writeBaseProfile(org *OrgState) error {
	p, err := n.baseProfile(org)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(n.ProfilePath(org.Name)), 0o755); err != nil {
		return err
	}
	n.profileMu.Lock()
	defer n.profileMu.Unlock()
	return p.Save(n.ProfilePath(org.Name))
}

func (n *Network) addProfileIdentity(org *OrgState, name string, id client.IdentityFiles) error {
	n.profileMu.Lock()
	defer n.profileMu.Unlock()
	p, err := client.LoadProfile(n.ProfilePath(org.Name))
	if err != nil {
		return err
	}
	p.Identities[name] = id
	return p.Save(n.ProfilePath(org.Name))
}

// Paths inside the crypto material generated by cryptogen.
func (n *Network) adminMSPDir(org *OrgState) string {
	return filepath.Join(org.CryptoDir, "users", "Admin@"+org.Domain, "msp")
}

func (n *Network) adminCredentials(org *OrgState) (cert, key []byte, err error) {
	admin := n.adminMSPDir(org)
	cert, err = os.ReadFile(filepath.Join(admin, "signcerts", "Admin@"+org.Domain+"-cert.pem"))
	if err != nil {
		return nil, nil, err
	}
	k, err := findKey(filepath.Join(admin, "keystore"))
	if err != nil {
		return nil, nil, err
	}
	key, err = os.ReadFile(k)
	return cert, key, err
}

func (n *Network) peerTLSCA(org *OrgState) string {
	return filepath.Join(org.CryptoDir, "tlsca", "tlsca."+org.Domain+"-cert.pem")
}

func (n *Network) caCert(org *OrgState) string {
	return filepath.Join(org.CryptoDir, "ca", "ca."+org.Domain+"-cert.pem")
}

func (n *Network) ordererTLSCA() string {
	return filepath.Join(n.state.OrdererCryptoDir, "tlsca", "tlsca."+n.state.OrdererDomain+"-cert.pem")
}

func (n *Network) userDir(org *OrgState, name string) string {
	return filepath.Join(n.state.StateDir, strings.ToLower(org.Name), "users", name)
}

func randomSecret() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Down stops every process of the network (SIGTERM, then SIGKILL) and
// removes its state directory.
func (n *Network) Down(ctx context.Context) error {
	unlock, err := n.exclusive(ctx)
	if errors.Is(err, ErrNotUp) {
		_ = os.Remove(n.state.StateDir + ".lock")
		return nil // already down (e.g. by another process)
	}
	if err != nil {
		return err
	}
	defer unlock()
	if err := n.stopAll(ctx); err != nil {
		return err
	}
	if err := os.RemoveAll(n.state.StateDir); err != nil {
		return fmt.Errorf("remove state dir: %w", err)
	}
	_ = os.Remove(n.state.StateDir + ".lock")
	return nil
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

// stopAll stops chaincode servers, peers, CAs and orderers, in that order,
// each kind in parallel.
func (n *Network) stopAll(ctx context.Context) error {
	var all []error
	for _, kind := range []NodeKind{KindChaincode, KindPeer, KindCA, KindOrderer} {
		nodes := n.state.nodesOf(kind)
		errs := make([]error, len(nodes))
		var wg sync.WaitGroup
		for i, nd := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = n.kids.stop(ctx, nd, 10*time.Second)
			}()
		}
		wg.Wait()
		all = append(all, errs...)
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
	if err := n.kids.stop(ctx, nd, 10*time.Second); err != nil {
		return err
	}
	nd.Stopped = true
	return n.state.save()
}

// StartNode starts a stopped (or crashed) node again with its recorded
// command and waits until it is healthy.
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
	return n.startNodes(ctx, []*Node{nd})
}
