package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/iotledger/iotledger/deploy/ccaas"
)

// ChaincodeSpec describes a chaincode to deploy as a service.
type ChaincodeSpec struct {
	Name              string // chaincode name on the channel
	Package           string // Go main package of its server, relative to the source root (e.g. "./cmd/iotledger-refchaincode")
	Version           string // default: the sequence number
	EndorsementPolicy string // MAJORITY (default), ANY, ALL, a signature policy such as "OR('Org1MSP.peer','Org2MSP.peer')", or a channel policy path "/Channel/Application/..."
	CollectionsConfig string // optional JSON of private data collections
}

var chaincodeNameRE = regexp.MustCompile(`^[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*$`)

func (s ChaincodeSpec) validate(orgMSPs []string) error {
	if !chaincodeNameRE.MatchString(s.Name) {
		return fmt.Errorf("chaincode name %q: letters and digits, optionally joined by '-' or '_'", s.Name)
	}
	if s.Package == "" {
		return fmt.Errorf("chaincode %s: the Go main package of its server is required", s.Name)
	}
	if _, err := policyArgs(s.EndorsementPolicy, orgMSPs); err != nil {
		return err
	}
	if s.CollectionsConfig != "" && !json.Valid([]byte(s.CollectionsConfig)) {
		return fmt.Errorf("chaincode %s: collections config is not valid JSON", s.Name)
	}
	return nil
}

// policyArgs turns an endorsement policy into peer lifecycle flags.
// MAJORITY (or empty) is the channel's default /Channel/Application/Endorsement.
func policyArgs(policy string, orgMSPs []string) ([]string, error) {
	p := strings.TrimSpace(policy)
	peers := make([]string, len(orgMSPs))
	for i, m := range orgMSPs {
		peers[i] = "'" + m + ".peer'"
	}
	switch {
	case p == "" || strings.EqualFold(p, "MAJORITY"):
		return nil, nil
	case strings.EqualFold(p, "ANY"):
		return []string{"--signature-policy", "OR(" + strings.Join(peers, ",") + ")"}, nil
	case strings.EqualFold(p, "ALL"):
		return []string{"--signature-policy", "AND(" + strings.Join(peers, ",") + ")"}, nil
	case strings.HasPrefix(p, "/Channel/"):
		return []string{"--channel-config-policy", p}, nil
	case strings.HasPrefix(p, "OR(") || strings.HasPrefix(p, "AND(") || strings.HasPrefix(p, "OutOf("):
		if strings.Count(p, "(") != strings.Count(p, ")") {
			return nil, fmt.Errorf("endorsement policy %q: unbalanced parentheses", policy)
		}
		return []string{"--signature-policy", p}, nil
	default:
		return nil, fmt.Errorf("endorsement policy %q: use MAJORITY, ANY, ALL, a signature policy like OR('Org1MSP.peer','Org2MSP.peer'), or a /Channel/... policy path", policy)
	}
}

// writeCCaaSBuilder writes the external builder for chaincode as a service:
// three small scripts. detect accepts packages of type "ccaas"; build and
// release hand the package's connection.json (the server's address) to the
// peer, which then dials the chaincode server instead of launching it.
func writeCCaaSBuilder(dir string) (string, error) {
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", err
	}
	scripts := map[string]string{
		"detect": `#!/bin/sh
# detect SOURCE METADATA: claim packages whose metadata.json says type "ccaas".
grep -q '"type"[[:space:]]*:[[:space:]]*"ccaas"' "$2/metadata.json"
`,
		"build": `#!/bin/sh
# build SOURCE METADATA OUTPUT: nothing to compile, keep the server's address.
set -e
cp "$1/connection.json" "$3/connection.json"
if [ -d "$1/metadata" ]; then cp -R "$1/metadata" "$3/metadata"; fi
`,
		"release": `#!/bin/sh
# release BUILD_OUTPUT RELEASE_OUTPUT: tell the peer where the server is.
set -e
mkdir -p "$2/chaincode/server"
cp "$1/connection.json" "$2/chaincode/server/connection.json"
if [ -d "$1/metadata" ]; then mkdir -p "$2/statedb" && cp -R "$1/metadata/." "$2/statedb/"; fi
`,
	}
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			return "", fmt.Errorf("write external builder: %w", err)
		}
	}
	return dir, nil
}

// buildChaincode compiles a chaincode server with go build.
func buildChaincode(ctx context.Context, src, outDir, pkg string) (string, error) {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(outDir, filepath.Base(pkg))
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, tail(string(b), 30))
	}
	return out, nil
}

func (n *Network) buildChaincodeAsync(ctx context.Context, src, outDir, pkg string) func() (string, error) {
	var (
		out string
		err error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		out, err = buildChaincode(ctx, src, outDir, pkg)
	}()
	return func() (string, error) {
		<-done
		return out, err
	}
}

// Deploy rebuilds the iotledger chaincode server from the source tree and
// deploys it again with the next sequence: new packages, install, approve,
// restart the servers, commit. The network keeps running.
func (n *Network) Deploy(ctx context.Context) error {
	n.mu.Lock()
	err := n.reload()
	var cc *ChaincodeState
	if err == nil {
		cc = n.state.chaincode(DefaultChaincode)
	}
	n.mu.Unlock()
	if err != nil {
		return err
	}
	if cc == nil {
		return fmt.Errorf("chaincode %s was never deployed on this network", DefaultChaincode)
	}
	return n.DeployChaincode(ctx, ChaincodeSpec{
		Name: cc.Name, Package: cc.Package, EndorsementPolicy: cc.EndorsementPolicy, CollectionsConfig: readOptional(cc.CollectionsConfig),
	})
}

func readOptional(path string) string {
	if path == "" {
		return ""
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

// DeployChaincode builds spec.Package and deploys it as a service under
// spec.Name: first deployment or upgrade (next sequence).
func (n *Network) DeployChaincode(ctx context.Context, spec ChaincodeSpec) error {
	unlock, err := n.exclusive(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := spec.validate(n.mspIDs()); err != nil {
		return err
	}
	var bin string
	if err := n.step(ctx, "chaincode "+spec.Name+" server build", func() (err error) {
		bin, err = buildChaincode(ctx, n.state.SourceDir, filepath.Join(n.state.StateDir, "chaincode", spec.Name, "build"), spec.Package)
		return err
	}); err != nil {
		return err
	}
	return n.deploy(ctx, spec, bin)
}

func (n *Network) mspIDs() []string {
	out := make([]string, len(n.state.Orgs))
	for i, o := range n.state.Orgs {
		out[i] = o.MSPID
	}
	return out
}

// committedDefinition is `peer lifecycle chaincode querycommitted -O json`.
type committedDefinition struct {
	Sequence int64  `json:"sequence"`
	Version  string `json:"version"`
}

func (n *Network) queryCommitted(ctx context.Context, org *OrgState, name string) (*committedDefinition, error) {
	out, err := n.peerCLI(ctx, org, "lifecycle", "chaincode", "querycommitted", "-C", n.state.Channel, "-n", name, "-O", "json")
	if err != nil {
		if strings.Contains(err.Error(), "status: 404") || strings.Contains(err.Error(), "not defined") {
			return &committedDefinition{}, nil
		}
		return nil, err
	}
	var d committedDefinition
	if err := json.Unmarshal(out, &d); err != nil {
		return nil, fmt.Errorf("querycommitted: %w: %s", err, out)
	}
	return &d, nil
}

// definition is what every org approves and one org commits.
type definition struct {
	name, version string
	sequence      int64
	args          []string // -C … -n … -v … --sequence … and the policy and collections flags
}

// nextDefinition reads the committed sequence and prepares sequence+1.
func (n *Network) nextDefinition(ctx context.Context, spec ChaincodeSpec) (*definition, error) {
	policy, err := policyArgs(spec.EndorsementPolicy, n.mspIDs())
	if err != nil {
		return nil, err
	}
	committed, err := n.queryCommitted(ctx, &n.state.Orgs[0], spec.Name)
	if err != nil {
		return nil, err
	}
	d := &definition{name: spec.Name, version: spec.Version, sequence: committed.Sequence + 1}
	if d.version == "" {
		d.version = strconv.FormatInt(d.sequence, 10)
	}
	d.args = append([]string{"-C", n.state.Channel, "-n", spec.Name, "-v", d.version, "--sequence", strconv.FormatInt(d.sequence, 10)}, policy...)
	return d, nil
}

// deploy runs the v2 lifecycle for a chaincode server binary already built:
// one server per org, each with its own address and so its own package.
func (n *Network) deploy(ctx context.Context, spec ChaincodeSpec, binary string) error {
	if spec.EndorsementPolicy == "" {
		spec.EndorsementPolicy = DefaultPolicy
	}
	if err := spec.validate(n.mspIDs()); err != nil {
		return err
	}
	prev := n.state.chaincode(spec.Name)
	def, err := n.nextDefinition(ctx, spec)
	if err != nil {
		return err
	}
	label := fmt.Sprintf("%s_%d", spec.Name, def.sequence)
	ccDir := filepath.Join(n.state.StateDir, "chaincode", spec.Name, strconv.FormatInt(def.sequence, 10))
	if err := os.MkdirAll(ccDir, 0o755); err != nil {
		return err
	}
	// Keep the binary per sequence: the running servers still use the old one.
	seqBinary := filepath.Join(ccDir, filepath.Base(binary))
	if err := os.Rename(binary, seqBinary); err != nil {
		return fmt.Errorf("chaincode binary: %w", err)
	}
	cs := &ChaincodeState{
		Name: spec.Name, Package: spec.Package, Version: def.version, Sequence: def.sequence, Label: label,
		EndorsementPolicy: spec.EndorsementPolicy, PackageIDs: map[string]string{}, Servers: map[string]string{},
		Binary: seqBinary,
	}
	if spec.CollectionsConfig != "" {
		cs.CollectionsConfig = filepath.Join(ccDir, "collections.json")
		if err := os.WriteFile(cs.CollectionsConfig, []byte(spec.CollectionsConfig), 0o644); err != nil {
			return err
		}
		def.args = append(def.args, "--collections-config", cs.CollectionsConfig)
	}
	servers, pkgFiles, err := n.planServers(spec.Name, label, ccDir, seqBinary, prev, cs)
	if err != nil {
		return err
	}
	if err := n.installPackages(ctx, spec.Name, label, pkgFiles, cs.PackageIDs); err != nil {
		return err
	}
	if err := n.approveForEveryOrg(ctx, def, cs.PackageIDs); err != nil {
		return err
	}
	if err := n.step(ctx, fmt.Sprintf("chaincode %s: start %d servers", spec.Name, len(servers)), func() error {
		for _, s := range servers {
			if err := n.kids.stop(ctx, s, 10*time.Second); err != nil {
				return err
			}
			n.replaceNode(s)
		}
		return n.startNodes(ctx, servers)
	}); err != nil {
		return err
	}
	return n.commitAndRecord(ctx, def, cs)
}

// planServers writes each org's package for its server (on the port of the
// previous sequence's server, if there was one) and the server node that
// runs with that package's ID.
func (n *Network) planServers(name, label, ccDir, binary string, prev, cs *ChaincodeState) ([]*Node, []string, error) {
	servers := make([]*Node, len(n.state.Orgs))
	var need int
	for i, org := range n.state.Orgs {
		if prev != nil {
			if old, err := n.state.node(prev.Servers[org.Name]); err == nil {
				servers[i] = old
				continue
			}
		}
		need++
	}
	ports, err := newPortAllocator(need)
	if err != nil {
		return nil, nil, err
	}
	pkgFiles := make([]string, len(n.state.Orgs))
	for i, org := range n.state.Orgs {
		port := 0
		if servers[i] != nil {
			port = servers[i].Ports[PortListen]
		} else {
			port = ports.next()
		}
		pkg, err := ccaas.Build(label, ccaas.Connection{Address: n.chaincodeServerAddress(org.Name, port)})
		if err != nil {
			return nil, nil, err
		}
		pkgFiles[i] = filepath.Join(ccDir, strings.ToLower(org.Name)+".tar.gz")
		if err := os.WriteFile(pkgFiles[i], pkg.Bytes, 0o644); err != nil {
			return nil, nil, err
		}
		cs.PackageIDs[org.Name] = pkg.ID
		next := n.chaincodeServerNode(name, org.Name, binary, ccDir, port, pkg.ID)
		if servers[i] != nil {
			next.PID, next.StartTicks = servers[i].PID, servers[i].StartTicks
		}
		servers[i] = next
		cs.Servers[org.Name] = next.Name
	}
	return servers, pkgFiles, nil
}

// chaincodeServerAddress is where org's chaincode server on port listens,
// which its package tells the peer: plaintext on 127.0.0.1 only, or in
// hosts mode on the org's own namespace address, beside its peer.
func (n *Network) chaincodeServerAddress(org string, port int) string {
	listen := &Node{Ports: map[string]int{PortListen: port}}
	n.place(listen, strings.ToLower(org))
	return listen.Address()
}

// chaincodeServerNode is the node of org's server of chaincode name,
// listening on port and presenting packageID.
func (n *Network) chaincodeServerNode(name, org, binary, ccDir string, port int, packageID string) *Node {
	logName := "chaincode." + name + "." + strings.ToLower(org) + ".log"
	if name == DefaultChaincode {
		logName = "chaincode." + strings.ToLower(org) + ".log"
	}
	nd := &Node{
		Name: "chaincode." + name + "." + strings.ToLower(org), Kind: KindChaincode, Org: org, Command: binary, Dir: ccDir,
		Log: filepath.Join(n.state.StateDir, "logs", logName), Ports: map[string]int{PortListen: port},
	}
	// In hosts mode the server runs in its org's namespace, beside its peer.
	n.place(nd, strings.ToLower(org))
	// Only what the server needs: none of the peer's settings leak in.
	nd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"CHAINCODE_SERVER_ADDRESS=" + nd.Address(), "CORE_CHAINCODE_ID_NAME=" + packageID}
	return nd
}

// installPackages installs pkgFiles[i] on the peer of org i and checks
// that the peer knows it by the ID computed here (packageIDs, org -> ID):
// that ID is the one approved and the one the server presents.
func (n *Network) installPackages(ctx context.Context, name, label string, pkgFiles []string, packageIDs map[string]string) error {
	return n.step(ctx, fmt.Sprintf("chaincode %s: install %s on every peer", name, label), func() error {
		return n.eachOrg(func(i int, org *OrgState) error {
			if err := n.installPackage(ctx, org, pkgFiles[i]); err != nil {
				return err
			}
			installed, err := n.installedPackageIDs(ctx, org)
			if err != nil {
				return err
			}
			if want := packageIDs[org.Name]; !slices.Contains(installed, want) {
				return fmt.Errorf("peer installed %s but knows no package %s (it has %s)", pkgFiles[i], want, strings.Join(installed, ", "))
			}
			return nil
		})
	})
}

// installedPackageIDs is `peer lifecycle chaincode queryinstalled`.
func (n *Network) installedPackageIDs(ctx context.Context, org *OrgState) ([]string, error) {
	out, err := n.peerCLI(ctx, org, "lifecycle", "chaincode", "queryinstalled", "-O", "json")
	if err != nil {
		return nil, err
	}
	var res struct {
		Installed []struct {
			PackageID string `json:"package_id"`
		} `json:"installed_chaincodes"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("queryinstalled: %w: %s", err, out)
	}
	ids := make([]string, len(res.Installed))
	for i, c := range res.Installed {
		ids[i] = c.PackageID
	}
	return ids, nil
}

// approveForEveryOrg approves def by each org, with that org's package ID.
func (n *Network) approveForEveryOrg(ctx context.Context, def *definition, packageIDs map[string]string) error {
	ordererArgs, err := n.ordererArgs()
	if err != nil {
		return err
	}
	return n.step(ctx, fmt.Sprintf("chaincode %s: approve sequence %d by every org", def.name, def.sequence), func() error {
		return n.eachOrg(func(i int, org *OrgState) error {
			args := append([]string{"--package-id", packageIDs[org.Name]}, def.args...)
			return n.approveForOrg(ctx, org, append(args, ordererArgs...))
		})
	})
}

// installPackage installs a chaincode package on an org's peer; a package
// it has already is fine (an earlier attempt installed it).
func (n *Network) installPackage(ctx context.Context, org *OrgState, pkgFile string) error {
	return retry(ctx, 60*time.Second, func() error {
		_, err := n.peerCLI(ctx, org, "lifecycle", "chaincode", "install", pkgFile)
		if err != nil && strings.Contains(err.Error(), "already successfully installed") {
			return nil
		}
		return err
	})
}

// approveForOrg approves a chaincode definition (args after
// approveformyorg) for an org, retrying while the channel has no Raft
// leader; a definition the org approved already is fine.
func (n *Network) approveForOrg(ctx context.Context, org *OrgState, args []string) error {
	return retry(ctx, 90*time.Second, func() error {
		_, err := n.peerCLI(ctx, org, append([]string{"lifecycle", "chaincode", "approveformyorg"}, args...)...)
		if err != nil && strings.Contains(err.Error(), "unchanged content") {
			return nil // approved by an earlier attempt
		}
		return err
	})
}

// commitAndRecord commits def with every org's peer endorsing, records cs
// and waits until discovery offers every org's peer for it.
func (n *Network) commitAndRecord(ctx context.Context, def *definition, cs *ChaincodeState) error {
	ordererArgs, err := n.ordererArgs()
	if err != nil {
		return err
	}
	if err := n.step(ctx, fmt.Sprintf("chaincode %s: commit sequence %d", def.name, def.sequence), func() error {
		args := append([]string{"lifecycle", "chaincode", "commit"}, def.args...)
		for _, org := range n.state.Orgs {
			p, err := n.state.node(org.Peer)
			if err != nil {
				return err
			}
			args = append(args, "--peerAddresses", p.Address(), "--tlsRootCertFiles", n.peerTLSCA(&org))
		}
		args = append(args, ordererArgs...)
		return retry(ctx, 90*time.Second, func() error {
			_, err := n.peerCLI(ctx, &n.state.Orgs[0], args...)
			if err != nil {
				if d, qerr := n.queryCommitted(ctx, &n.state.Orgs[0], def.name); qerr == nil && d.Sequence == def.sequence {
					return nil // an earlier attempt committed
				}
			}
			return err
		})
	}); err != nil {
		return err
	}
	cs.DeployedAt = time.Now().UTC()
	n.replaceChaincode(cs)
	if err := n.state.save(); err != nil {
		return err
	}
	return n.step(ctx, fmt.Sprintf("chaincode %s: discovery offers every org's peer", def.name), func() error {
		return n.waitDiscovery(ctx, def.name, 90*time.Second)
	})
}

// ServiceSpec describes a chaincode whose servers run outside the network,
// as they do on any production Fabric network: the caller wrote each org's
// package (`iotledger chaincode package`) and runs the servers.
type ServiceSpec struct {
	Name              string // chaincode name on the channel
	Version           string // default: the sequence number
	EndorsementPolicy string // as in ChaincodeSpec
}

// DeployService installs each org's chaincode-as-a-service package on that
// org's peer (packages maps org name to package bytes; every org needs one),
// approves the next sequence by every org with its package ID, and commits.
// The peers dial the servers the packages name when the chaincode is first
// called; run them with the package IDs this returns (org -> ID).
func (n *Network) DeployService(ctx context.Context, spec ServiceSpec, packages map[string][]byte) (map[string]string, error) {
	unlock, err := n.exclusive(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if spec.EndorsementPolicy == "" {
		spec.EndorsementPolicy = DefaultPolicy
	}
	cspec := ChaincodeSpec{Name: spec.Name, Package: "(external)", Version: spec.Version, EndorsementPolicy: spec.EndorsementPolicy}
	if err := cspec.validate(n.mspIDs()); err != nil {
		return nil, err
	}
	if prev := n.state.chaincode(spec.Name); prev != nil && len(prev.Servers) > 0 {
		return nil, fmt.Errorf("chaincode %s runs on servers this network starts: deploy it with DeployChaincode", spec.Name)
	}
	def, err := n.nextDefinition(ctx, cspec)
	if err != nil {
		return nil, err
	}
	ccDir := filepath.Join(n.state.StateDir, "chaincode", spec.Name, strconv.FormatInt(def.sequence, 10))
	if err := os.MkdirAll(ccDir, 0o755); err != nil {
		return nil, err
	}
	cs := &ChaincodeState{Name: spec.Name, Version: def.version, Sequence: def.sequence,
		EndorsementPolicy: spec.EndorsementPolicy, PackageIDs: map[string]string{}, Servers: map[string]string{}}
	if len(packages) != len(n.state.Orgs) {
		return nil, fmt.Errorf("chaincode %s: %d packages for %d orgs: give one per org (%s)", spec.Name, len(packages), len(n.state.Orgs), strings.Join(n.state.orgNames(), ", "))
	}
	pkgFiles := make([]string, len(n.state.Orgs))
	for i, org := range n.state.Orgs {
		b, ok := packages[org.Name]
		if !ok {
			return nil, fmt.Errorf("chaincode %s: no package for %s (every org's peer installs its own)", spec.Name, org.Name)
		}
		p, err := ccaas.Parse(b)
		if err != nil {
			return nil, fmt.Errorf("chaincode %s: package of %s: %w", spec.Name, org.Name, err)
		}
		cs.Label = p.Metadata.Label
		cs.PackageIDs[org.Name] = p.ID
		pkgFiles[i] = filepath.Join(ccDir, strings.ToLower(org.Name)+".tar.gz")
		if err := os.WriteFile(pkgFiles[i], b, 0o600); err != nil {
			return nil, err
		}
	}
	if err := n.installPackages(ctx, spec.Name, cs.Label, pkgFiles, cs.PackageIDs); err != nil {
		return nil, err
	}
	if err := n.approveForEveryOrg(ctx, def, cs.PackageIDs); err != nil {
		return nil, err
	}
	if err := n.commitAndRecord(ctx, def, cs); err != nil {
		return nil, err
	}
	return maps.Clone(cs.PackageIDs), nil
}

func (n *Network) replaceNode(nd *Node) {
	for i, old := range n.state.Nodes {
		if old.Name == nd.Name {
			n.state.Nodes[i] = nd
			return
		}
	}
	n.state.Nodes = append(n.state.Nodes, nd)
}

func (n *Network) replaceChaincode(cs *ChaincodeState) {
	for i, old := range n.state.Chaincodes {
		if old.Name == cs.Name {
			n.state.Chaincodes[i] = cs
			return
		}
	}
	n.state.Chaincodes = append(n.state.Chaincodes, cs)
}

// eachOrg runs f for every org in parallel and joins the errors.
func (n *Network) eachOrg(f func(i int, org *OrgState) error) error {
	errs := make([]error, len(n.state.Orgs))
	var wg sync.WaitGroup
	for i := range n.state.Orgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(i, &n.state.Orgs[i]); err != nil {
				errs[i] = fmt.Errorf("%s: %w", n.state.Orgs[i].Name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
