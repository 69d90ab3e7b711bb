package network

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Up builds the Fabric binaries if needed, then creates and starts a
// network in opts.StateDir, deploys the iotledger chaincode, enrolls
// every org's operator, hub and auditor and has each org's CA issue its
// IoT hubs a TLS certificate (the profile's hubTLS). It returns when every
// node is healthy and discovery offers every org's peer for the chaincode.
//
// A state directory holding a complete network whose processes are all
// gone (Stop, a crash, a reboot) is resumed as Start does: the same
// ledgers, crypto material and ports, nothing regenerated; opts other than
// StateDir, Logger and Progress then do not apply. One left by an Up that
// did not finish is cleaned and created anew. One with live processes
// gives ErrAlreadyUp. If creating fails Up stops what it started and keeps
// the state directory, so that the logs it names can be read; Up or Down
// later clean it.
func Up(ctx context.Context, opts Options) (*Network, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := platformSupported(); err != nil {
		return nil, err
	}
	if opts.Hosts {
		if err := hostsAvailable(ctx); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Dir(opts.StateDir), 0o755); err != nil {
		return nil, fmt.Errorf("create state dir parent: %w", err)
	}
	unlock, err := lockFile(ctx, opts.StateDir+".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	stopped, err := prepareStateDir(ctx, opts)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if stopped != nil {
		n := &Network{state: stopped, kids: newChildren(), log: opts.Logger, progress: opts.Progress}
		if err := n.start(ctx); err != nil {
			return nil, err
		}
		n.summary(time.Since(start), "resumed")
		return n, nil
	}
	for attempt := 1; ; attempt++ {
		n := &Network{kids: newChildren(), log: opts.Logger, progress: opts.Progress}
		err := n.up(ctx, opts)
		if err == nil {
			n.summary(time.Since(start), "up")
			return n, nil
		}
		if n.state != nil {
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			if serr := n.stopAll(stopCtx); serr != nil {
				err = errors.Join(err, fmt.Errorf("stopping the nodes after the failure: %w", serr))
			}
			cancel()
			_ = n.state.save()
		}
		// Ports are free when chosen but another process may bind one
		// before our node does; then start over with new ports.
		if !portConflict(err) || attempt == upAttempts || ctx.Err() != nil {
			return nil, err
		}
		opts.Logger.WarnContext(ctx, "a port was taken before its node started; starting over with new ports", "err", err)
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "a port was taken by another process before its node started; starting over with new ports\n")
		}
		if err := removeHosts(ctx, n.state.Hosts); err != nil {
			return nil, err
		}
		if err := os.RemoveAll(opts.StateDir); err != nil {
			return nil, fmt.Errorf("clean state dir for a new attempt: %w", err)
		}
	}
}

// upAttempts bounds how often Up starts over after a port conflict.
const upAttempts = 3

// portConflict tells whether err comes from a port that another process
// took: found busy before start, or a node that exited unable to bind.
func portConflict(err error) bool {
	return errors.Is(err, ErrPortBusy) ||
		errors.Is(err, ErrNodeExited) && strings.Contains(err.Error(), "address already in use")
}

// prepareStateDir decides what Up does with the state directory (see
// upDecision): it returns the state of a complete stopped network to
// resume, refuses a running one, cleans one an earlier Up did not finish,
// and refuses a non-empty directory that holds no network.
func prepareStateDir(ctx context.Context, opts Options) (*State, error) {
	st, err := loadState(opts.StateDir)
	if err != nil && !errors.Is(err, ErrNotUp) {
		return nil, err
	}
	var entries []os.DirEntry
	if st == nil {
		entries, _ = os.ReadDir(opts.StateDir)
	}
	switch d := decideUp(st, len(entries) > 0); d {
	case upCreate:
		return nil, nil
	case upForeignDir:
		return nil, fmt.Errorf("state dir %s is not empty and holds no network.json: choose another --state-dir or remove it", opts.StateDir)
	case upRefuse:
		return nil, fmt.Errorf("%w in %s (%d of %d processes running): use `iotledger network status`; `iotledger network start` starts the nodes that are not running, `iotledger network down` removes the network",
			ErrAlreadyUp, opts.StateDir, len(st.liveNodes()), len(st.Nodes))
	case upResume:
		opts.Logger.InfoContext(ctx, "resuming a stopped network", "dir", opts.StateDir)
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "found a complete network in %s with no process running (%s): resuming it with its ledgers, crypto material and ports; nothing is regenerated (the options of up apply to new networks only)\n",
				opts.StateDir, stoppedHow(st))
		}
		return st, nil
	default: // upClean
		opts.Logger.InfoContext(ctx, "cleaning the state of a network that was never completely set up", "dir", opts.StateDir)
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "found an incomplete network in %s (an earlier up did not finish; no process running): removing it and creating a new one\n", opts.StateDir)
		}
		if err := removeHosts(ctx, st.Hosts); err != nil {
			return nil, err
		}
		return nil, os.RemoveAll(opts.StateDir)
	}
}

// upDecision is what Up does with a state directory.
type upDecision int

const (
	upCreate     upDecision = iota // nothing there: create a network
	upForeignDir                   // files but no network.json: refuse, they are not ours
	upRefuse                       // a process of the network runs: ErrAlreadyUp
	upResume                       // complete, nothing running: start it again as it was
	upClean                        // incomplete (a failed Up), nothing running: remove and create
)

// decideUp decides from the recorded state (nil if none) and whether the
// directory holds any file. A complete network is never removed by Up.
func decideUp(st *State, dirHasFiles bool) upDecision {
	switch {
	case st == nil && dirHasFiles:
		return upForeignDir
	case st == nil:
		return upCreate
	case len(st.liveNodes()) > 0:
		return upRefuse
	case st.complete():
		return upResume
	default:
		return upClean
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
	defer n.releaseHostsLock()
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
	// The chaincode server compiles while Fabric builds (on a cold cache)
	// and the nodes start.
	buildCtx, cancelBuild := context.WithCancel(ctx)
	ccBuild := n.buildChaincodeAsync(buildCtx, src, filepath.Join(dir, "chaincode", DefaultChaincode, "build"), opts.ChaincodePackage)
	defer func() {
		// On failure, stop the build and never leave it writing into a
		// state dir that is about to be cleaned.
		cancelBuild()
		_, _ = ccBuild()
	}()

	var bins *Binaries
	if err := n.step(ctx, "Fabric binaries ("+FabricVersion+", CA "+FabricCAVersion+")", func() (err error) {
		bins, err = EnsureBinaries(ctx, src, n.progress)
		return err
	}); err != nil {
		return err
	}

	if err := n.step(ctx, "crypto material and node configs", func() error {
		return n.plan(ctx, opts, src, bins)
	}); err != nil {
		return err
	}
	if n.state.Hosts != nil {
		err := n.step(ctx, fmt.Sprintf("hosts: %d namespaces on bridge %s (%s)", len(n.state.Hosts.Hosts), n.state.Hosts.Bridge, n.state.Hosts.Subnet), func() error {
			return createHosts(ctx, n.state.Hosts)
		})
		n.releaseHostsLock()
		if err != nil {
			return err
		}
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
	if err := n.step(ctx, "identities (operator, hub, auditor) and hub TLS per org", func() error {
		return n.enrollDefaultIdentities(ctx)
	}); err != nil {
		return err
	}
	// From here on the network is kept: Up resumes it, only Down removes it.
	n.state.Setup = SetupComplete
	return n.state.save()
}

func (n *Network) summary(d time.Duration, what string) {
	if n.progress == nil {
		return
	}
	fmt.Fprintf(n.progress, "\nnetwork %s in %s: channel %s, chaincode %s, state in %s\n",
		what, d.Round(100*time.Millisecond), n.state.Channel, DefaultChaincode, n.state.StateDir)
	for _, nd := range n.state.Nodes {
		fmt.Fprintf(n.progress, "  %-28s pid %-7d %-16s log %s\n", nd.Name, nd.PID, nd.Address(), nd.Log)
	}
	for _, o := range n.state.Orgs {
		fmt.Fprintf(n.progress, "  profile %-8s %s\n", o.Name, n.profilePath(o.Name))
	}
}

// plan is the step "crypto material and node configs" of docs/network.md:
// addresses (hosts mode), crypto material, ports, every orderer's and
// org's node configs, the genesis block, and the record of it all in
// network.json (before any process starts, so a failure later can always
// be cleaned up). Each part is one function below, in this order.
func (n *Network) plan(ctx context.Context, opts Options, src string, bins *Binaries) error {
	n.state = newState(opts, src, bins)
	if opts.Hosts {
		if err := n.planHostAddresses(ctx, opts); err != nil {
			return err
		}
	}
	if err := n.generateCryptoMaterial(ctx, opts, bins); err != nil {
		return err
	}
	ports, err := newPortAllocator(opts.Orderers*4 + len(opts.Orgs)*5)
	if err != nil {
		return err
	}
	channel, err := n.planOrderers(opts, bins, ports)
	if err != nil {
		return err
	}
	if err := n.planOrgs(opts, bins, ports, &channel); err != nil {
		return err
	}
	if err := n.writeGenesisBlock(ctx, bins, channel); err != nil {
		return err
	}
	return n.state.save()
}

// ordererDomain is the DNS domain of every node: orderers are
// <name>.iotledger.local, an org's peer peer0.<org>.iotledger.local.
const ordererDomain = "iotledger.local"

// newState is the record of a network about to be created.
func newState(opts Options, src string, bins *Binaries) *State {
	dir := opts.StateDir
	st := &State{
		Version: stateVersion, Name: "iotledger", Channel: DefaultChannel, StateDir: dir, SourceDir: src,
		Binaries: *bins, BatchTimeout: opts.BatchTimeout.String(), EndorsementPolicy: opts.EndorsementPolicy,
		OrdererDomain:    ordererDomain,
		OrdererCryptoDir: filepath.Join(cryptoRoot(dir, ordererOrgDirName, opts.Hosts), "ordererOrganizations", ordererDomain),
		GenesisBlock:     filepath.Join(dir, "config", DefaultChannel+".block"),
		CreatedAt:        time.Now().UTC(),
		Setup:            SetupCreating,
	}
	return st
}

// ordererOrgDirName is the orderer org's own directory in hosts mode
// (<state-dir>/ordererorg): its cryptogen output.
const ordererOrgDirName = "ordererorg"

// cryptoRoot is where cryptogen writes an org's material: <state>/crypto
// for every org, or in hosts mode the org's own <state>/<org>/crypto, so
// that no org's directory holds another org's keys.
func cryptoRoot(stateDir, orgDir string, hosts bool) string {
	if hosts {
		return filepath.Join(stateDir, orgDir, "crypto")
	}
	return filepath.Join(stateDir, "crypto")
}

// planHostAddresses (hosts mode) names a namespace for every orderer and
// org and chooses the network's /24 away from every route and address of
// the machine; Up creates them after the record is saved.
func (n *Network) planHostAddresses(ctx context.Context, opts Options) error {
	var names []string
	for i := 1; i <= opts.Orderers; i++ {
		names = append(names, fmt.Sprintf("orderer%d", i))
	}
	for _, org := range opts.Orgs {
		names = append(names, strings.ToLower(org))
	}
	// The subnets in use are the machine's routes, and a network that has
	// chosen its subnet has no route until its bridge exists: choosing and
	// creating happen under one machine-wide lock, released once up has
	// created the namespaces (or failed).
	unlock, err := lockFile(ctx, hostsLockPath())
	if err != nil {
		return fmt.Errorf("hosts mode: %w", err)
	}
	n.hostsLock = unlock
	used, err := usedPrefixes(ctx)
	if err != nil {
		return err
	}
	hs, err := planHosts(opts.StateDir, names, used)
	if err != nil {
		return err
	}
	n.state.Hosts = hs
	return nil
}

// nodeSANs are the names and addresses besides its host name that a node's
// TLS server certificate carries: loopback, or in hosts mode the address
// of its namespace.
func (n *Network) nodeSANs(host string) []string {
	if h := n.state.Hosts.host(host); h != nil {
		return []string{h.IP}
	}
	return loopbackSANs
}

// place puts a node on its host (hosts mode): its namespace and address.
func (n *Network) place(nd *Node, host string) {
	if h := n.state.Hosts.host(host); h != nil {
		nd.IP, nd.Netns = h.IP, h.Netns
	}
}

// generateCryptoMaterial runs cryptogen for the orderers, the peers and the
// org admins: once for all orgs, or in hosts mode once per org into the
// org's own directory.
func (n *Network) generateCryptoMaterial(ctx context.Context, opts Options, bins *Binaries) error {
	dir := opts.StateDir
	orderers := cryptoOrg{Name: "Orderer", Domain: ordererDomain, EnableNodeOUs: true}
	for i := 1; i <= opts.Orderers; i++ {
		name := fmt.Sprintf("orderer%d", i)
		orderers.Specs = append(orderers.Specs, cryptoSpec{Hostname: name, SANS: n.nodeSANs(name)})
	}
	var peerOrgs []cryptoOrg
	for _, org := range opts.Orgs {
		lower := strings.ToLower(org)
		co := peerCryptoOrg(org, ordererDomain)
		co.Template.SANS = n.nodeSANs(lower)
		peerOrgs = append(peerOrgs, co)
	}
	configDir := filepath.Join(dir, "config")
	if !opts.Hosts {
		return generateCrypto(ctx, bins.CryptoGen, filepath.Join(configDir, "crypto-config.yaml"), cryptoRoot(dir, "", false),
			cryptoConfig{OrdererOrgs: []cryptoOrg{orderers}, PeerOrgs: peerOrgs})
	}
	if err := generateCrypto(ctx, bins.CryptoGen, filepath.Join(configDir, "crypto-config."+ordererOrgDirName+".yaml"),
		cryptoRoot(dir, ordererOrgDirName, true), cryptoConfig{OrdererOrgs: []cryptoOrg{orderers}}); err != nil {
		return err
	}
	for i, org := range opts.Orgs {
		lower := strings.ToLower(org)
		if err := generateCrypto(ctx, bins.CryptoGen, filepath.Join(configDir, "crypto-config."+lower+".yaml"),
			cryptoRoot(dir, lower, true), cryptoConfig{PeerOrgs: peerOrgs[i : i+1]}); err != nil {
			return err
		}
	}
	return nil
}

// baseEnv is the environment every Fabric node starts with.
func baseEnv(opts Options) []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "FABRIC_LOGGING_SPEC=" + opts.FabricLogSpec}
}

// planOrderers records every orderer with its ports and writes its
// orderer.yaml; it returns the channel's orderer part (consenters and
// endpoints) for the genesis block.
func (n *Network) planOrderers(opts Options, bins *Binaries, ports *portAllocator) (channelConfigInput, error) {
	st := n.state
	in := channelConfigInput{OrdererMSPDir: filepath.Join(st.OrdererCryptoDir, "msp"), BatchTimeout: opts.BatchTimeout, MaxMessageCount: opts.MaxMessageCount}
	for i := 1; i <= opts.Orderers; i++ {
		name := fmt.Sprintf("orderer%d", i)
		host := name + "." + ordererDomain
		nodeDir := filepath.Join(st.StateDir, "nodes", name)
		tlsDir := filepath.Join(st.OrdererCryptoDir, "orderers", host, "tls")
		nd := &Node{
			Name: name, Kind: KindOrderer, Host: host, Command: bins.Orderer, Dir: nodeDir,
			Env:   append(baseEnv(opts), "FABRIC_CFG_PATH="+nodeDir),
			Log:   filepath.Join(st.StateDir, "logs", name+".log"),
			Ports: map[string]int{PortListen: ports.next(), PortCluster: ports.next(), PortAdmin: ports.next(), PortOperations: ports.next()},
		}
		n.place(nd, name)
		cfg := ordererConfig{
			MSPID: "OrdererMSP", MSPDir: filepath.Join(st.OrdererCryptoDir, "orderers", host, "msp"), TLSDir: tlsDir,
			AdminTLSCA: n.ordererTLSCA(), DataDir: filepath.Join(nodeDir, "data"), IP: nd.ip(),
			ListenPort: nd.Ports[PortListen], ClusterPort: nd.Ports[PortCluster], AdminPort: nd.Ports[PortAdmin], OperationsPort: nd.Ports[PortOperations],
		}
		if err := writeNodeConfig(bins.SampleConfig, "orderer.yaml", nodeDir, cfg.settings()); err != nil {
			return in, fmt.Errorf("%s: %w", name, err)
		}
		st.Nodes = append(st.Nodes, nd)
		in.Consenters = append(in.Consenters, ctxConsenter{
			Host: nd.ip(), Port: nd.Ports[PortCluster],
			ClientTLSCert: filepath.Join(tlsDir, "server.crt"), ServerTLSCert: filepath.Join(tlsDir, "server.crt"),
		})
		in.OrdererEndpoints = append(in.OrdererEndpoints, nd.Address())
	}
	return in, nil
}

// planOrgs records every org with its peer and CA (planPeerOrg: planPeer,
// planCA) and adds the org, with its anchor peer, to the channel's config.
func (n *Network) planOrgs(opts Options, bins *Binaries, ports *portAllocator, channel *channelConfigInput) error {
	st := n.state
	builder, err := writeCCaaSBuilder(filepath.Join(st.StateDir, "builders", "ccaas"))
	if err != nil {
		return err
	}
	for _, name := range opts.Orgs {
		org, nodes, appOrg, err := n.planPeerOrg(name, filepath.Join(cryptoRoot(st.StateDir, strings.ToLower(name), opts.Hosts), "peerOrganizations"),
			bins, builder, baseEnv(opts), ports)
		if err != nil {
			return err
		}
		st.Nodes = append(st.Nodes, nodes...)
		st.Orgs = append(st.Orgs, org)
		channel.PeerOrgs = append(channel.PeerOrgs, appOrg)
	}
	return nil
}

// planPeer records an org's peer and writes its core.yaml.
func (n *Network) planPeer(env []string, bins *Binaries, ports *portAllocator, org *OrgState, builder string) (*Node, error) {
	dir := n.state.StateDir
	host := "peer0." + org.Domain
	nodeDir := filepath.Join(dir, "nodes", org.Peer)
	peer := &Node{
		Name: org.Peer, Kind: KindPeer, Org: org.Name, Host: host, Command: bins.Peer, Args: []string{"node", "start"}, Dir: nodeDir,
		Env:   append(append([]string{}, env...), "FABRIC_CFG_PATH="+nodeDir),
		Log:   filepath.Join(dir, "logs", org.Peer+".log"),
		Ports: map[string]int{PortListen: ports.next(), PortChaincode: ports.next(), PortOperations: ports.next()},
	}
	n.place(peer, strings.ToLower(org.Name))
	pc := peerConfig{
		ID: host, MSPID: org.MSPID, MSPDir: filepath.Join(org.CryptoDir, "peers", host, "msp"),
		TLSDir: filepath.Join(org.CryptoDir, "peers", host, "tls"), DataDir: filepath.Join(nodeDir, "data"), IP: peer.ip(),
		ListenPort: peer.Ports[PortListen], ChaincodePort: peer.Ports[PortChaincode], OperationsPort: peer.Ports[PortOperations],
		BuilderDir: builder, Gossip: localGossip,
	}
	if err := writeNodeConfig(bins.SampleConfig, "core.yaml", nodeDir, pc.settings()); err != nil {
		return nil, fmt.Errorf("%s: %w", org.Peer, err)
	}
	return peer, nil
}

// planCA records an org's Fabric CA (signing with the org's cryptogen CA
// key) and its bootstrap admin's secret.
func (n *Network) planCA(bins *Binaries, ports *portAllocator, org *OrgState) (*Node, error) {
	dir := n.state.StateDir
	var err error
	org.CAAdminSecret, err = randomSecret()
	if err != nil {
		return nil, err
	}
	caHome := filepath.Join(dir, strings.ToLower(org.Name), "ca")
	if err := os.MkdirAll(caHome, 0o755); err != nil {
		return nil, err
	}
	caKey, err := findKey(filepath.Join(org.CryptoDir, "ca"))
	if err != nil {
		return nil, err
	}
	ca := &Node{
		Name: org.CA, Kind: KindCA, Org: org.Name, Host: "localhost", Command: bins.CAServer, Dir: caHome,
		Log:   filepath.Join(dir, "logs", org.CA+".log"),
		Ports: map[string]int{PortListen: ports.next(), PortOperations: ports.next()},
	}
	csrHosts := "localhost,127.0.0.1"
	if h := n.state.Hosts.host(strings.ToLower(org.Name)); h != nil {
		n.place(ca, h.Name)
		ca.Host = "ca." + org.Domain
		csrHosts = ca.Host + "," + h.IP
	}
	ca.Args = []string{"start", "-b", caAdminUser + ":" + org.CAAdminSecret, "--address", ca.ip(), "--port", fmt.Sprint(ca.Ports[PortListen]),
		"--tls.enabled", "--ca.name", org.CAName,
		// The CA signs with the org's cryptogen CA key, so the
		// identities it issues are members of the org's MSP.
		"--ca.certfile", n.caCert(org), "--ca.keyfile", caKey,
		"--csr.hosts", csrHosts}
	ca.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"FABRIC_CA_SERVER_HOME=" + caHome,
		"FABRIC_CA_SERVER_OPERATIONS_LISTENADDRESS=" + ca.addrOf(PortOperations),
		"FABRIC_CA_SERVER_METRICS_PROVIDER=prometheus"}
	return ca, nil
}

// writeGenesisBlock has configtxgen write the channel's genesis block.
func (n *Network) writeGenesisBlock(ctx context.Context, bins *Binaries, channel channelConfigInput) error {
	return generateGenesisBlock(ctx, bins.ConfigTxGen, filepath.Join(n.state.StateDir, "config"), n.state.Channel, n.state.GenesisBlock,
		buildConfigTx(channel))
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
		for pname := range nd.Ports {
			if err := nd.checkPortFree(pname); err != nil {
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
		if err := joinOrderer(ctx, hc, o.addrOf(PortAdmin), n.state.GenesisBlock); err != nil {
			return nodeFailure(o, err)
		}
	}
	// Wait for the channel to work (a Raft leader), then join the peers.
	if err := retry(ctx, 60*time.Second, func() error {
		for _, o := range n.state.nodesOf(KindOrderer) {
			info, err := ordererChannelInfo(ctx, hc, o.addrOf(PortAdmin), n.state.Channel)
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
	return n.eachOrg(func(_ int, org *OrgState) error {
		return retry(ctx, 60*time.Second, func() error {
			_, err := n.peerCLI(ctx, org, "channel", "join", "-b", n.state.GenesisBlock)
			if err != nil && strings.Contains(err.Error(), "already exists") {
				return nil
			}
			return err
		})
	})
}

func (n *Network) ordererAdminClient() (*http.Client, error) {
	admin := filepath.Join(n.state.OrdererCryptoDir, "users", "Admin@"+n.state.OrdererDomain, "tls")
	return adminClient(n.ordererTLSCA(), filepath.Join(admin, "client.crt"), filepath.Join(admin, "client.key"))
}

func (n *Network) enrollDefaultIdentities(ctx context.Context) error {
	return n.eachOrg(func(_ int, org *OrgState) error {
		if err := n.writeBaseProfile(org); err != nil {
			return err
		}
		if err := n.enrollCAAdmin(ctx, org); err != nil {
			return err
		}
		for _, role := range defaultIdentities {
			if _, err := n.enrollIdentity(ctx, org.Name, role, map[string]string{RoleAttribute: role}); err != nil {
				return err
			}
		}
		_, err := n.issueHubTLS(ctx, org)
		return err
	})
}

// hostsLockPath is the machine-wide lock of hosts-mode subnet choices.
func hostsLockPath() string { return filepath.Join(os.TempDir(), "iotledger-hosts.lock") }

// releaseHostsLock lets other ups choose subnets again.
func (n *Network) releaseHostsLock() {
	if n.hostsLock != nil {
		n.hostsLock()
		n.hostsLock = nil
	}
}
