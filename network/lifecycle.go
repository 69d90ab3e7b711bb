package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// deploy runs the v2 lifecycle for a chaincode server binary already built.
func (n *Network) deploy(ctx context.Context, spec ChaincodeSpec, binary string) error {
	if spec.EndorsementPolicy == "" {
		spec.EndorsementPolicy = DefaultPolicy
	}
	if err := spec.validate(n.mspIDs()); err != nil {
		return err
	}
	policy, err := policyArgs(spec.EndorsementPolicy, n.mspIDs())
	if err != nil {
		return err
	}
	prev := n.state.chaincode(spec.Name)
	committed, err := n.queryCommitted(ctx, &n.state.Orgs[0], spec.Name)
	if err != nil {
		return err
	}
	seq := committed.Sequence + 1
	version := spec.Version
	if version == "" {
		version = strconv.FormatInt(seq, 10)
	}
	label := fmt.Sprintf("%s_%d", spec.Name, seq)
	ccDir := filepath.Join(n.state.StateDir, "chaincode", spec.Name, strconv.FormatInt(seq, 10))
	if err := os.MkdirAll(ccDir, 0o755); err != nil {
		return err
	}
	// Keep the binary per sequence: the running servers still use the old one.
	seqBinary := filepath.Join(ccDir, filepath.Base(binary))
	if err := os.Rename(binary, seqBinary); err != nil {
		return fmt.Errorf("chaincode binary: %w", err)
	}
	var collections []string
	cs := &ChaincodeState{
		Name: spec.Name, Package: spec.Package, Version: version, Sequence: seq, Label: label,
		EndorsementPolicy: spec.EndorsementPolicy, PackageIDs: map[string]string{}, Servers: map[string]string{},
		Binary: seqBinary,
	}
	if spec.CollectionsConfig != "" {
		cs.CollectionsConfig = filepath.Join(ccDir, "collections.json")
		if err := os.WriteFile(cs.CollectionsConfig, []byte(spec.CollectionsConfig), 0o644); err != nil {
			return err
		}
		collections = []string{"--collections-config", cs.CollectionsConfig}
	}

	// One server per org, each with its own address and so its own package.
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
		return err
	}
	pkgFiles := make([]string, len(n.state.Orgs))
	for i, org := range n.state.Orgs {
		port := 0
		if servers[i] != nil {
			port = servers[i].Ports[PortListen]
		} else {
			port = ports.next()
		}
		// Plaintext on loopback: the server listens on 127.0.0.1 only.
		pkg, err := ccaas.Build(label, ccaas.Connection{Address: addr(port)})
		if err != nil {
			return err
		}
		id := pkg.ID
		pkgFiles[i] = filepath.Join(ccDir, strings.ToLower(org.Name)+".tar.gz")
		if err := os.WriteFile(pkgFiles[i], pkg.Bytes, 0o644); err != nil {
			return err
		}
		cs.PackageIDs[org.Name] = id
		logName := "chaincode." + spec.Name + "." + strings.ToLower(org.Name) + ".log"
		if spec.Name == DefaultChaincode {
			logName = "chaincode." + strings.ToLower(org.Name) + ".log"
		}
		name := "chaincode." + spec.Name + "." + strings.ToLower(org.Name)
		next := &Node{
			Name: name, Kind: KindChaincode, Org: org.Name, Command: seqBinary, Dir: ccDir,
			// Only what the server needs: none of the peer's settings leak in.
			Env: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
				"CHAINCODE_SERVER_ADDRESS=" + addr(port), "CORE_CHAINCODE_ID_NAME=" + id},
			Log: filepath.Join(n.state.StateDir, "logs", logName), Ports: map[string]int{PortListen: port},
		}
		if servers[i] != nil {
			next.PID, next.StartTicks = servers[i].PID, servers[i].StartTicks
		}
		servers[i] = next
		cs.Servers[org.Name] = name
	}

	if err := n.step(ctx, fmt.Sprintf("chaincode %s: install %s on every peer", spec.Name, label), func() error {
		return n.eachOrg(func(i int, org *OrgState) error {
			return retry(ctx, 60*time.Second, func() error {
				_, err := n.peerCLI(ctx, org, "lifecycle", "chaincode", "install", pkgFiles[i])
				if err != nil && strings.Contains(err.Error(), "already successfully installed") {
					return nil
				}
				return err
			})
		})
	}); err != nil {
		return err
	}
	ordererArgs, err := n.ordererArgs()
	if err != nil {
		return err
	}
	def := append([]string{"-C", n.state.Channel, "-n", spec.Name, "-v", version, "--sequence", strconv.FormatInt(seq, 10)}, policy...)
	def = append(def, collections...)
	if err := n.step(ctx, fmt.Sprintf("chaincode %s: approve sequence %d by every org", spec.Name, seq), func() error {
		return n.eachOrg(func(i int, org *OrgState) error {
			args := append([]string{"lifecycle", "chaincode", "approveformyorg", "--package-id", cs.PackageIDs[org.Name]}, def...)
			args = append(args, ordererArgs...)
			return retry(ctx, 90*time.Second, func() error {
				_, err := n.peerCLI(ctx, org, args...)
				if err != nil && strings.Contains(err.Error(), "unchanged content") {
					return nil // approved by an earlier attempt
				}
				return err
			})
		})
	}); err != nil {
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
	if err := n.step(ctx, fmt.Sprintf("chaincode %s: commit sequence %d", spec.Name, seq), func() error {
		args := append([]string{"lifecycle", "chaincode", "commit"}, def...)
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
				if d, qerr := n.queryCommitted(ctx, &n.state.Orgs[0], spec.Name); qerr == nil && d.Sequence == seq {
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
	return n.step(ctx, fmt.Sprintf("chaincode %s: discovery offers every org's peer", spec.Name), func() error {
		return n.waitDiscovery(ctx, spec.Name, 90*time.Second)
	})
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
