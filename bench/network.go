package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/network"
)

// Reference chaincode deployed next to iotledger.
const (
	RefChaincodeName    = "refcc"
	RefChaincodePackage = "./cmd/iotledger-refchaincode"
)

// NetworkOptions says which network a run loads.
type NetworkOptions struct {
	// StateDir of a running network to use; empty brings a fresh network up
	// in a temporary directory and takes it down afterwards.
	StateDir  string
	SourceDir string // iotledger source tree (for chaincode builds); found from the working directory if empty
	Keep      bool   // leave a network the bench brought up running
	Up        network.Options
	Progress  io.Writer
	Logger    *slog.Logger
}

// Network is the network a run loads, ready for Run.
type Network struct {
	Net       *network.Network
	Target    Target
	broughtUp bool
	keep      bool
	tempDir   string
}

// OpenNetwork loads (or brings up) the network, deploys the reference
// chaincode next to iotledger with the same endorsement policy if it is not
// there yet, and describes the target.
func OpenNetwork(ctx context.Context, opts NetworkOptions) (*Network, error) {
	out := &Network{keep: opts.Keep}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	if opts.StateDir != "" {
		n, err := network.Load(opts.StateDir)
		if err != nil {
			return nil, err
		}
		out.Net = n
	} else {
		dir, err := os.MkdirTemp("", "iotledger-bench-")
		if err != nil {
			return nil, fmt.Errorf("bench: state directory: %w", err)
		}
		out.tempDir = dir
		up := opts.Up
		up.StateDir = filepath.Join(dir, "network")
		up.SourceDir = opts.SourceDir
		up.Progress = opts.Progress
		up.Logger = opts.Logger
		fmt.Fprintf(progress, "bench: bringing a network up in %s\n", up.StateDir)
		n, err := network.Up(ctx, up)
		if err != nil {
			return nil, fmt.Errorf("bench: network up: %w (state kept in %s)", err, up.StateDir)
		}
		out.Net, out.broughtUp = n, true
	}
	out.Net.SetProgress(opts.Progress)
	out.Net.SetLogger(opts.Logger)

	cc, ok := out.Net.Chaincode(network.DefaultChaincode)
	if !ok {
		return out, fmt.Errorf("bench: chaincode %s is not deployed on the network in %s", network.DefaultChaincode, out.Net.StateDir())
	}
	if _, ok := out.Net.Chaincode(RefChaincodeName); !ok {
		fmt.Fprintf(progress, "bench: deploying reference chaincode %s (%s)\n", RefChaincodeName, cc.EndorsementPolicy)
		err := out.Net.DeployChaincode(ctx, network.ChaincodeSpec{
			Name: RefChaincodeName, Package: RefChaincodePackage, EndorsementPolicy: cc.EndorsementPolicy,
		})
		if err != nil {
			return out, fmt.Errorf("bench: deploy reference chaincode: %w", err)
		}
	}
	t, err := describe(out.Net, opts.Up)
	if err != nil {
		return out, err
	}
	t.Info.BroughtUp = out.broughtUp
	if out.broughtUp && t.Info.MaxMessageCount == 0 {
		t.Info.MaxMessageCount = network.DefaultMaxMessageCount
	}
	out.Target = t
	return out, nil
}

// TempDir is the temporary directory of a network the bench brought up
// (removed with it), "" for a network it was given.
func (n *Network) TempDir() string { return n.tempDir }

// Close takes down a network the bench brought up (unless kept).
func (n *Network) Close(ctx context.Context) error {
	if n == nil || n.Net == nil || !n.broughtUp || n.keep {
		return nil
	}
	err := n.Net.Down(ctx)
	if err == nil && n.tempDir != "" {
		err = os.RemoveAll(n.tempDir)
	}
	return err
}

// describe builds the target of a loaded network: Org1's profile takes the
// load, every process is accounted.
func describe(n *network.Network, up network.Options) (Target, error) {
	orgs := n.Orgs()
	if len(orgs) == 0 {
		return Target{}, errors.New("bench: the network has no organisations")
	}
	var profiles []*client.Profile
	for _, org := range orgs {
		p, err := n.Profile(org)
		if err != nil {
			return Target{}, fmt.Errorf("bench: profile of %s: %w", org, err)
		}
		profiles = append(profiles, p)
	}
	t := Target{Profile: profiles[0], Profiles: profiles, RefChaincode: RefChaincodeName}
	cc, _ := n.Chaincode(network.DefaultChaincode)
	t.Info = NetworkInfo{Orgs: orgs, EndorsementPolicy: cc.EndorsementPolicy, StateDir: n.StateDir()}
	for _, nd := range n.Nodes() {
		if nd.PID <= 0 || nd.Stopped {
			continue
		}
		t.Processes = append(t.Processes, Process{Name: nd.Name, PID: nd.PID})
		switch nd.Kind {
		case network.KindOrderer:
			t.Info.Orderers++
		case network.KindPeer:
			t.Info.Peers++
			if t.PeerData == nil {
				t.PeerData = map[string]string{}
			}
			// peer.fileSystemPath (network/nodeconfig.go, network/up.go).
			t.PeerData[nd.Name] = filepath.Join(nd.Dir, "data")
		}
	}
	sort.SliceStable(t.Processes, func(i, j int) bool { return t.Processes[i].Name < t.Processes[j].Name })
	if bt, err := recordedBatchTimeout(n.StateDir()); err == nil && bt > 0 {
		t.Info.BatchTimeoutMs = float64(bt) / float64(time.Millisecond)
	}
	if up.MaxMessageCount > 0 {
		t.Info.MaxMessageCount = up.MaxMessageCount
	}
	return t, nil
}

// recordedBatchTimeout reads the BatchTimeout the network was created with.
func recordedBatchTimeout(stateDir string) (time.Duration, error) {
	data, err := os.ReadFile(filepath.Join(stateDir, "network.json"))
	if err != nil {
		return 0, err
	}
	var st struct {
		BatchTimeout string `json:"batchTimeout"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return 0, err
	}
	return time.ParseDuration(st.BatchTimeout)
}
