package network

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"gopkg.in/yaml.v3"

	"github.com/iotledger/iotledger/deploy/ccaas"
)

// An organisation joins a running channel the way Fabric operators do it,
// in three steps whose sides never share a private key:
//
//   - CreateOrg, the newcomer's side: its own crypto material (cryptogen),
//     peer and Fabric CA, and the export of its org definition
//     (`configtxgen -printOrg`), which holds certificates and policies only;
//   - AddOrg, the members' side: a channel config update adding that
//     definition, signed by the admins of a MAJORITY of the member orgs
//     (/Channel/Application/Admins), each with its own key;
//   - JoinOrg, the newcomer's side again: its peer joins the channel from
//     the orderers' genesis block, installs each chaincode with its own
//     package and server and approves the committed definition, and
//     enrolls its operator, hub and auditor at its CA.
//
// The definition file is the only thing that crosses from one side to the
// other. The chaincode definitions need no new sequence: the network's
// MAJORITY policy is the channel's implicit /Channel/Application/Endorsement
// (MAJORITY of the orgs' Endorsement policies), which counts the newcomer
// as soon as the config update commits (2 of 3 with three orgs), and the
// chaincode keeps each org's private data in its implicit collection,
// which every member org has without a collections config.

// OrgCreation is what CreateOrg made.
type OrgCreation struct {
	Org   string `json:"org"`
	MSPID string `json:"mspId"`
	// Definition is the org definition file for the channel's members.
	Definition  string        `json:"definition"`
	Nodes       []string      `json:"nodes"`
	Took        time.Duration `json:"-"`
	TookSeconds float64       `json:"tookSeconds"`
}

// OrgAddition is what AddOrg did.
type OrgAddition struct {
	Org         string              `json:"org"`
	MSPID       string              `json:"mspId"`
	Update      ChannelUpdateResult `json:"update"`
	Took        time.Duration       `json:"-"`
	TookSeconds float64             `json:"tookSeconds"`
}

// OrgJoin is what JoinOrg did.
type OrgJoin struct {
	Org   string `json:"org"`
	MSPID string `json:"mspId"`
	// Height is the channel height the newcomer's peer reached.
	Height uint64 `json:"height"`
	// Chaincodes maps each chaincode the newcomer approved to its package ID.
	Chaincodes  map[string]string `json:"chaincodes"`
	Profile     string            `json:"profile"`
	Took        time.Duration     `json:"-"`
	TookSeconds float64           `json:"tookSeconds"`
}

// ErrNotAdded is returned by JoinOrg for an org that the channel's members
// have not added yet.
var ErrNotAdded = errors.New("organisation not in the channel configuration")

// ErrUnknownOrg is returned for an org name the network does not know.
var ErrUnknownOrg = errors.New("no such organisation")

// ValidateOrgName checks an organisation name: letters and digits,
// starting with a letter, at most 32 characters.
func ValidateOrgName(name string) error {
	if !validOrgName(name) {
		return fmt.Errorf("organisation name %q: use letters and digits, starting with a letter (at most 32)", name)
	}
	return nil
}

// orgDir is where an org keeps what is its own: <stateDir>/<org lowercase>.
func (n *Network) orgDir(name string) string {
	return filepath.Join(n.state.StateDir, strings.ToLower(name))
}

// DefinitionPath is where CreateOrg writes an org's definition.
func (n *Network) DefinitionPath(org string) string {
	return filepath.Join(n.orgDir(org), strings.ToLower(org)+"-definition.json")
}

// CreateOrg is the newcomer's side of joining: it generates the org's own
// crypto material, starts its peer and Fabric CA (not yet in the channel)
// and writes its org definition, which it returns the path of. It uses no
// key of any other org. On failure it leaves no trace of the org.
func (n *Network) CreateOrg(ctx context.Context, name string) (OrgCreation, error) {
	unlock, err := n.exclusive(ctx)
	if err != nil {
		return OrgCreation{}, err
	}
	defer unlock()
	start := time.Now()
	if err := ValidateOrgName(name); err != nil {
		return OrgCreation{}, err
	}
	if err := n.checkNewOrg(name); err != nil {
		return OrgCreation{}, err
	}
	res := OrgCreation{Org: name, MSPID: name + "MSP"}
	var nodes []*Node
	err = n.createOrg(ctx, name, &res, &nodes)
	if err != nil {
		n.forgetCreatedOrg(ctx, name, nodes)
		return OrgCreation{}, err
	}
	res.Took = time.Since(start)
	res.TookSeconds = res.Took.Seconds()
	return res, nil
}

// checkNewOrg refuses a name or MSP ID the network has (member or created)
// and a name whose directory or nodes exist.
func (n *Network) checkNewOrg(name string) error {
	if !n.state.complete() {
		return fmt.Errorf("the network in %s is not completely set up: an org can join a complete network only", n.state.StateDir)
	}
	for _, o := range append(append([]OrgState{}, n.state.Orgs...), n.state.PendingOrgs...) {
		if strings.EqualFold(o.Name, name) || strings.EqualFold(o.MSPID, name+"MSP") {
			return fmt.Errorf("%w: the network has an org %s (%s)", ErrOrgExists, o.Name, o.MSPID)
		}
	}
	lower := strings.ToLower(name)
	for _, nd := range []string{"peer0." + lower, "ca." + lower} {
		if _, err := n.state.node(nd); err == nil {
			return fmt.Errorf("organisation %s: the network has a node %s already", name, nd)
		}
	}
	// In hosts mode the org's host is named like the org: an orderer's host
	// (or any other) must not be taken over, nor removed by a failed create.
	if h := n.state.Hosts.host(lower); h != nil {
		return fmt.Errorf("organisation %s: the network has a host %s already (namespace %s)", name, lower, h.Netns)
	}
	if _, err := os.Stat(n.orgDir(name)); err == nil {
		return fmt.Errorf("organisation %s: %s exists (the name is taken by a part of the state directory)", name, n.orgDir(name))
	}
	return nil
}

func (n *Network) createOrg(ctx context.Context, name string, res *OrgCreation, started *[]*Node) error {
	dir := n.orgDir(name)
	configDir := filepath.Join(dir, "config")
	cryptoDir := filepath.Join(dir, "crypto")
	if err := os.MkdirAll(configDir, 0o755); err != nil {
		return err
	}
	if n.state.Hosts != nil {
		if err := n.addOrgHost(ctx, name); err != nil {
			return err
		}
	}
	if err := n.step(ctx, "crypto material of "+name+" (its own cryptogen CA, TLS CA, peer and admin)", func() error {
		co := peerCryptoOrg(name, n.state.OrdererDomain)
		co.Template.SANS = n.nodeSANs(strings.ToLower(name))
		return generateCrypto(ctx, n.state.Binaries.CryptoGen, filepath.Join(configDir, "crypto-config.yaml"), cryptoDir,
			cryptoConfig{PeerOrgs: []cryptoOrg{co}})
	}); err != nil {
		return err
	}
	var (
		org    OrgState
		nodes  []*Node
		appOrg ctxOrg
	)
	if err := n.step(ctx, "peer and CA configs of "+name, func() error {
		ports, err := newPortAllocator(5)
		if err != nil {
			return err
		}
		baseEnv := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "FABRIC_LOGGING_SPEC=" + n.fabricLogSpec()}
		org, nodes, appOrg, err = n.planPeerOrg(name, filepath.Join(cryptoDir, "peerOrganizations"), &n.state.Binaries,
			filepath.Join(n.state.StateDir, "builders", "ccaas"), baseEnv, ports)
		if err != nil {
			return err
		}
		// Recorded before any process starts, so that Down finds them.
		n.state.PendingOrgs = append(n.state.PendingOrgs, org)
		n.state.Nodes = append(n.state.Nodes, nodes...)
		*started = nodes
		return n.state.save()
	}); err != nil {
		return err
	}
	if err := n.step(ctx, fmt.Sprintf("start %s and %s", org.Peer, org.CA), func() error {
		return n.startNodes(ctx, nodes)
	}); err != nil {
		return err
	}
	res.Definition = n.DefinitionPath(name)
	if err := n.step(ctx, "export the org definition (configtxgen -printOrg)", func() error {
		return exportOrgDefinition(ctx, n.state.Binaries.ConfigTxGen, configDir, appOrg, res.Definition)
	}); err != nil {
		return err
	}
	for _, nd := range nodes {
		res.Nodes = append(res.Nodes, nd.Name)
	}
	return nil
}

// addOrgHost gives a new org of a hosts-mode network its host: the next
// address on the bridge and a namespace, recorded before it is made so that
// Down (or a failed CreateOrg) removes it.
func (n *Network) addOrgHost(ctx context.Context, name string) error {
	h, err := n.state.Hosts.nextHost(strings.ToLower(name))
	if err != nil {
		return err
	}
	return n.step(ctx, fmt.Sprintf("host of %s: namespace %s (%s) on bridge %s", name, h.Netns, h.IP, n.state.Hosts.Bridge), func() error {
		n.state.Hosts.Hosts = append(n.state.Hosts.Hosts, h)
		if err := n.state.save(); err != nil {
			return err
		}
		return addHost(ctx, n.state.Hosts, h)
	})
}

// fabricLogSpec is the FABRIC_LOGGING_SPEC the network's nodes run with.
func (n *Network) fabricLogSpec() string {
	for _, nd := range n.state.Nodes {
		for _, e := range nd.Env {
			if v, ok := strings.CutPrefix(e, "FABRIC_LOGGING_SPEC="); ok {
				return v
			}
		}
	}
	return "info"
}

// forgetCreatedOrg undoes a CreateOrg that failed: it stops the nodes it
// started, removes them and the org from network.json and removes the
// org's files.
func (n *Network) forgetCreatedOrg(ctx context.Context, name string, nodes []*Node) {
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_ = n.stopNodes(stopCtx, nodes)
	n.dropNodes(nodes)
	if i, _ := n.state.pendingOrg(name); i >= 0 {
		n.state.PendingOrgs = slices.Delete(n.state.PendingOrgs, i, i+1)
	}
	if hs := n.state.Hosts; hs != nil {
		if h := hs.host(strings.ToLower(name)); h != nil {
			if gone := h.Name; removeHost(stopCtx, *h) == nil {
				hs.Hosts = slices.DeleteFunc(hs.Hosts, func(o Host) bool { return o.Name == gone })
			}
		}
	}
	_ = n.state.save()
	_ = os.RemoveAll(n.orgDir(name))
	for _, nd := range nodes {
		if nd.Kind == KindPeer {
			_ = os.RemoveAll(nd.Dir)
		}
	}
}

func (n *Network) dropNodes(nodes []*Node) {
	n.state.Nodes = slices.DeleteFunc(n.state.Nodes, func(nd *Node) bool {
		return slices.ContainsFunc(nodes, func(d *Node) bool { return d.Name == nd.Name })
	})
}

// orgOnlyConfigTx is a configtx.yaml holding one org, for -printOrg.
type orgOnlyConfigTx struct {
	Organizations []ctxOrg `yaml:"Organizations"`
}

// exportOrgDefinition writes org's definition with `configtxgen -printOrg`
// and checks that it parses as one.
func exportOrgDefinition(ctx context.Context, configtxgen, dir string, org ctxOrg, out string) error {
	data, err := yaml.Marshal(orgOnlyConfigTx{Organizations: []ctxOrg{org}})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "configtx.yaml"), data, 0o644); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, configtxgen, "-configPath", dir, "-printOrg", org.Name)
	cmd.Env = append(os.Environ(), "FABRIC_CFG_PATH="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	def, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("configtxgen -printOrg %s: %w: %s", org.Name, err, tail(stderr.String(), 20))
	}
	if _, err := ParseOrgDefinition(def); err != nil {
		return fmt.Errorf("configtxgen -printOrg %s: %w", org.Name, err)
	}
	return os.WriteFile(out, def, 0o644)
}

// AddOrg is the members' side of joining: a channel config update that adds
// the org of def to the channel, signed by the admins of signers (member
// org names; default: the first MAJORITY of the members, as
// /Channel/Application/Admins requires). Nothing of the newcomer but its
// definition is used. An org whose name or MSP ID the channel has is
// refused, and so are too few signers, before anything is signed.
func (n *Network) AddOrg(ctx context.Context, def *OrgDefinition, signers []string) (OrgAddition, error) {
	unlock, err := n.exclusive(ctx)
	if err != nil {
		return OrgAddition{}, err
	}
	defer unlock()
	start := time.Now()
	if def == nil || def.group == nil {
		return OrgAddition{}, fmt.Errorf("%w: no definition", ErrMalformedOrgDefinition)
	}
	for _, o := range n.state.Orgs {
		if strings.EqualFold(o.Name, def.Name) || o.MSPID == def.MSPID {
			return OrgAddition{}, fmt.Errorf("%w: %s (%s) is a member", ErrOrgExists, o.Name, o.MSPID)
		}
	}
	if len(n.state.Orgs) == 0 {
		return OrgAddition{}, fmt.Errorf("the network in %s has no member org to add %s", n.state.StateDir, def.MSPID)
	}
	majority := len(n.state.Orgs)/2 + 1
	if len(signers) == 0 {
		for _, o := range n.state.Orgs[:majority] {
			signers = append(signers, o.Name)
		}
	}
	var names []string
	for _, s := range signers {
		o, err := n.state.org(s)
		if err != nil {
			return OrgAddition{}, fmt.Errorf("signer: %w", err)
		}
		if !slices.Contains(names, o.Name) {
			names = append(names, o.Name)
		}
	}
	if len(names) < majority {
		return OrgAddition{}, fmt.Errorf("adding an org needs the admins of a MAJORITY of the %d member orgs (%d), not %d (%s): /Channel/Application/Admins is MAJORITY Admins",
			len(n.state.Orgs), majority, len(names), strings.Join(names, ", "))
	}
	upd, err := n.updateChannel(ctx, ChannelUpdate{
		Description: "add org " + def.MSPID,
		Change:      addApplicationOrg(def),
		Signers:     names,
	})
	if err != nil {
		return OrgAddition{}, err
	}
	res := OrgAddition{Org: def.Name, MSPID: def.MSPID, Update: upd, Took: time.Since(start)}
	res.TookSeconds = res.Took.Seconds()
	return res, nil
}

// JoinOrg is the newcomer's side after the members added it: its peer
// joins the channel from the orderers' genesis block and catches up, each
// chaincode the network runs servers for gets the org's package, server
// and approval of the committed definition, the org's CA enrolls its
// operator, hub and auditor and its hubs' TLS certificate, and JoinOrg
// returns once discovery at every org offers every org's peer. An org the
// members have not added gets ErrNotAdded and nothing changes.
func (n *Network) JoinOrg(ctx context.Context, name string) (OrgJoin, error) {
	unlock, err := n.exclusive(ctx)
	if err != nil {
		return OrgJoin{}, err
	}
	defer unlock()
	start := time.Now()
	idx, org := n.state.pendingOrg(name)
	if org == nil {
		if o, err := n.state.org(name); err == nil {
			return OrgJoin{}, fmt.Errorf("organisation %s has joined the channel already", o.Name)
		}
		return OrgJoin{}, fmt.Errorf("%w %q created to join (create it first with `iotledger org create %s`)", ErrUnknownOrg, name, name)
	}
	res := OrgJoin{Org: org.Name, MSPID: org.MSPID, Chaincodes: map[string]string{}}
	var servers []*Node
	if err := n.joinOrg(ctx, org, &res, &servers); err != nil {
		// Leave the org created and not joined: stop and forget the
		// chaincode servers started for it. Joining again is safe (the
		// peer's channel, packages, approvals and identities are kept).
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		_ = n.stopNodes(stopCtx, servers)
		cancel()
		n.dropNodes(servers)
		for _, cc := range n.state.Chaincodes {
			delete(cc.Servers, org.Name)
			delete(cc.PackageIDs, org.Name)
		}
		_ = n.state.save()
		return OrgJoin{}, err
	}
	// Now a member: it takes part in every later deployment.
	n.state.Orgs = append(n.state.Orgs, *org)
	n.state.PendingOrgs = slices.Delete(n.state.PendingOrgs, idx, idx+1)
	if err := n.state.save(); err != nil {
		return OrgJoin{}, err
	}
	res.Took = time.Since(start)
	res.TookSeconds = res.Took.Seconds()
	return res, nil
}

func (n *Network) joinOrg(ctx context.Context, org *OrgState, res *OrgJoin, servers *[]*Node) error {
	var configBlock uint64
	if err := n.step(ctx, org.MSPID+" is in the channel configuration", func() (err error) {
		configBlock, err = n.checkAdded(ctx, org)
		return err
	}); err != nil {
		return err
	}
	genesis := filepath.Join(n.orgDir(org.Name), n.state.Channel+"-genesis.block")
	if err := n.step(ctx, fmt.Sprintf("%s joins channel %s and has config block %d", org.Peer, n.state.Channel, configBlock), func() error {
		return n.joinPeer(ctx, org, genesis, configBlock, &res.Height)
	}); err != nil {
		return err
	}
	if err := n.setOwnAnchorPeer(ctx, org); err != nil {
		return err
	}
	for _, cc := range n.state.Chaincodes {
		if len(cc.Servers) == 0 {
			continue // servers run elsewhere: their operators install and approve
		}
		if err := n.step(ctx, fmt.Sprintf("chaincode %s: %s installs, starts its server, approves sequence %d", cc.Name, org.Name, cc.Sequence), func() error {
			srv, err := n.joinChaincode(ctx, org, cc)
			if srv != nil {
				*servers = append(*servers, srv)
			}
			return err
		}); err != nil {
			return err
		}
		res.Chaincodes[cc.Name] = cc.PackageIDs[org.Name]
	}
	if err := n.step(ctx, "identities (operator, hub, auditor) and hub TLS of "+org.Name, func() error {
		return n.enrollJoinerIdentities(ctx, org)
	}); err != nil {
		return err
	}
	res.Profile = n.profilePath(org.Name)
	members := append(append([]OrgState{}, n.state.Orgs...), *org)
	for _, cc := range n.state.Chaincodes {
		if err := n.step(ctx, fmt.Sprintf("chaincode %s: discovery offers the peers of all %d orgs", cc.Name, len(members)), func() error {
			return n.waitDiscoveryOf(ctx, cc.Name, members, 2*time.Minute)
		}); err != nil {
			return err
		}
	}
	return nil
}

// setOwnAnchorPeer makes the org's peer its anchor peer with a config
// update signed by the org's own admin, as its Admins policy requires:
// through it the other orgs' peers learn of the newcomer's peer (gossip),
// and discovery offers it. Already set, nothing is submitted.
func (n *Network) setOwnAnchorPeer(ctx context.Context, org *OrgState) error {
	p, err := n.state.node(org.Peer)
	if err != nil {
		return err
	}
	_, err = n.updateChannel(ctx, ChannelUpdate{
		Description: "anchor peer of " + org.MSPID,
		Change:      setAnchorPeers(org.MSPID, []*pb.AnchorPeer{{Host: "127.0.0.1", Port: int32(p.Ports[PortListen])}}),
		Signers:     []string{org.Name},
	})
	if errors.Is(err, ErrNoConfigChange) {
		return nil
	}
	return err
}

// checkAdded fetches the channel configuration as the newcomer's admin:
// the orderers refuse a non-member (FORBIDDEN), and the configuration must
// hold the org's MSP. It returns the number of the config block.
func (n *Network) checkAdded(ctx context.Context, org *OrgState) (uint64, error) {
	dir, err := os.MkdirTemp(n.state.StateDir, "config-fetch-")
	if err != nil {
		return 0, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	out := filepath.Join(dir, "config.block")
	if err := n.fetchAsMember(ctx, org, "config", out); err != nil {
		return 0, err
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return 0, err
	}
	cfg, num, err := configFromBlock(data)
	if err != nil {
		return 0, err
	}
	if _, _, err := applicationMSP(cfg, org.MSPID); err != nil {
		return 0, fmt.Errorf("%w: %s: %w", ErrNotAdded, org.MSPID, err)
	}
	return num, nil
}

// fetchAsMember is `peer channel fetch` as org's admin, retried while the
// orderers are briefly unavailable; a FORBIDDEN answer (the org is no
// member) is final and gives ErrNotAdded.
func (n *Network) fetchAsMember(ctx context.Context, org *OrgState, which, out string) error {
	oargs, err := n.ordererArgs()
	if err != nil {
		return err
	}
	args := append([]string{"channel", "fetch", which, out, "-c", n.state.Channel}, oargs...)
	var forbidden error
	err = retry(ctx, 30*time.Second, func() error {
		_, err := n.peerCLI(ctx, org, args...)
		if err != nil && strings.Contains(err.Error(), "FORBIDDEN") {
			forbidden = fmt.Errorf("%w: the orderers refuse %s's admin the channel %s (the channel's members add an org with `iotledger org add`): %w",
				ErrNotAdded, org.MSPID, n.state.Channel, err)
			return nil
		}
		return err
	})
	if forbidden != nil {
		return forbidden
	}
	return err
}

// joinPeer fetches the genesis block from the orderers, joins the org's
// peer to the channel and waits until it has committed configBlock (the
// one that made the org a member).
func (n *Network) joinPeer(ctx context.Context, org *OrgState, genesis string, configBlock uint64, height *uint64) error {
	if err := n.fetchAsMember(ctx, org, "0", genesis); err != nil {
		return err
	}
	if err := retry(ctx, 60*time.Second, func() error {
		_, err := n.peerCLI(ctx, org, "channel", "join", "-b", genesis)
		if err != nil && strings.Contains(err.Error(), "already exists") {
			return nil
		}
		return err
	}); err != nil {
		return err
	}
	p, err := n.state.node(org.Peer)
	if err != nil {
		return err
	}
	return retry(ctx, 2*time.Minute, func() error {
		h, err := peerHeight(ctx, p, n.state.Channel)
		if err != nil {
			return err
		}
		if h <= configBlock {
			return fmt.Errorf("%s at height %d, catching up to config block %d", org.Peer, h, configBlock)
		}
		*height = h
		return nil
	})
}

// joinChaincode gives the newcomer its package of cc (its own server
// address, so its own package ID), installs it on its peer, starts its
// server and approves the committed definition — the same sequence,
// version, policy and collections the members approved — with that ID.
// It returns the server node once started.
func (n *Network) joinChaincode(ctx context.Context, org *OrgState, cc *ChaincodeState) (*Node, error) {
	members := make([]string, len(n.state.Orgs))
	for i, o := range n.state.Orgs {
		members[i] = o.MSPID
	}
	// ANY and ALL are rendered as signature policies over the members that
	// approved them: the newcomer approves the same (a later deployment
	// renders them over every org).
	policy, err := policyArgs(cc.EndorsementPolicy, members)
	if err != nil {
		return nil, err
	}
	committed, err := n.queryCommitted(ctx, org, cc.Name)
	if err != nil {
		return nil, err
	}
	if committed.Sequence != cc.Sequence {
		return nil, fmt.Errorf("chaincode %s: the channel has sequence %d committed, the network recorded %d", cc.Name, committed.Sequence, cc.Sequence)
	}
	ccDir := filepath.Dir(cc.Binary)
	ports, err := newPortAllocator(1)
	if err != nil {
		return nil, err
	}
	port := ports.next()
	pkg, err := ccaas.Build(cc.Label, ccaas.Connection{Address: n.chaincodeServerAddress(org.Name, port)})
	if err != nil {
		return nil, err
	}
	pkgFile := filepath.Join(ccDir, strings.ToLower(org.Name)+".tar.gz")
	if err := os.WriteFile(pkgFile, pkg.Bytes, 0o644); err != nil {
		return nil, err
	}
	if err := n.installPackage(ctx, org, pkgFile); err != nil {
		return nil, err
	}
	srv := n.chaincodeServerNode(cc.Name, org.Name, cc.Binary, ccDir, port, pkg.ID)
	if old, err := n.state.node(srv.Name); err == nil {
		// A server left by an earlier attempt that did not finish.
		if err := n.kids.stop(ctx, old, 10*time.Second); err != nil {
			return nil, err
		}
	}
	n.replaceNode(srv)
	if err := n.startNodes(ctx, []*Node{srv}); err != nil {
		return srv, err
	}
	args := append([]string{"--package-id", pkg.ID,
		"-C", n.state.Channel, "-n", cc.Name, "-v", cc.Version, "--sequence", strconv.FormatInt(cc.Sequence, 10)}, policy...)
	if cc.CollectionsConfig != "" {
		args = append(args, "--collections-config", cc.CollectionsConfig)
	}
	oargs, err := n.ordererArgs()
	if err != nil {
		return srv, err
	}
	if err := n.approveForOrg(ctx, org, append(args, oargs...)); err != nil {
		return srv, err
	}
	cc.PackageIDs[org.Name] = pkg.ID
	cc.Servers[org.Name] = srv.Name
	return srv, n.state.save()
}

// enrollJoinerIdentities gives the newcomer what Up gives every org: its
// connection profile, its CA's registrar, an operator, a hub and an
// auditor, and its hubs' TLS certificate. What an earlier attempt enrolled
// is kept.
func (n *Network) enrollJoinerIdentities(ctx context.Context, org *OrgState) error {
	if _, err := os.Stat(n.profilePath(org.Name)); err != nil {
		if err := n.writeBaseProfile(org); err != nil {
			return err
		}
	}
	if err := n.enrollCAAdmin(ctx, org); err != nil {
		return err
	}
	for _, role := range defaultIdentities {
		if _, err := os.Stat(n.userDir(org, role)); err == nil {
			continue
		}
		if _, err := n.enrollIdentityOf(ctx, org, role, map[string]string{RoleAttribute: role}); err != nil {
			return err
		}
	}
	if _, err := os.Stat(n.hubTLSDir(org)); err == nil {
		return nil
	}
	_, err := n.issueHubTLS(ctx, org)
	return err
}

// peerCryptoOrg is cryptogen's entry for a peer org: one peer, NodeOUs, an
// admin and no other users (people and hubs come from the org's CA).
func peerCryptoOrg(name, ordererDomain string) cryptoOrg {
	return cryptoOrg{
		Name: name, Domain: strings.ToLower(name) + "." + ordererDomain, EnableNodeOUs: true,
		Template: &cryptoTemplate{Count: 1, SANS: loopbackSANs}, Users: &cryptoUsers{Count: 0},
	}
}

// planPeerOrg plans one peer org whose cryptogen material is in
// peerCryptoDir (<crypto>/peerOrganizations): its peer and CA nodes, their
// configs, and its entry in configtx.yaml (policies, anchor peer).
func (n *Network) planPeerOrg(name, peerCryptoDir string, bins *Binaries, builder string, baseEnv []string, ports *portAllocator) (OrgState, []*Node, ctxOrg, error) {
	dir, ordererDomain := n.state.StateDir, n.state.OrdererDomain
	lower := strings.ToLower(name)
	domain := lower + "." + ordererDomain
	org := OrgState{
		Name: name, MSPID: name + "MSP", Domain: domain,
		Peer: "peer0." + lower, CA: "ca." + lower, CAName: "ca-" + lower,
		CryptoDir:   filepath.Join(peerCryptoDir, domain),
		CAAdminHome: filepath.Join(dir, lower, "ca-admin"),
	}
	peer, err := n.planPeer(baseEnv, bins, ports, &org, builder)
	if err != nil {
		return OrgState{}, nil, ctxOrg{}, err
	}
	ca, err := n.planCA(bins, ports, &org)
	if err != nil {
		return OrgState{}, nil, ctxOrg{}, err
	}
	return org, []*Node{peer, ca}, ctxOrg{
		Name: name, ID: org.MSPID, MSPDir: filepath.Join(org.CryptoDir, "msp"), Policies: peerOrgPolicies(org.MSPID),
		AnchorPeers: []ctxAnchorPeer{{Host: peer.ip(), Port: peer.Ports[PortListen]}},
	}, nil
}
