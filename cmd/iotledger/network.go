package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotledger/iotledger/network"
)

// newNetworkCmd is `iotledger network`: a local Fabric v2.5 network of
// plain processes (no Docker).
func newNetworkCmd(g *globalOptions) *cobra.Command {
	var stateDir string
	cmd := &cobra.Command{
		Use:   "network",
		Short: "Run a local Hyperledger Fabric v2.5 network (3 Raft orderers, 2 orgs with a peer and a CA each) without Docker",
	}
	cmd.PersistentFlags().StringVar(&stateDir, "state-dir", network.DefaultStateDir(), "network state directory (env IOTLEDGER_STATE_DIR)")
	cmd.AddCommand(
		newNetworkUpCmd(g, &stateDir),
		newNetworkStopCmd(g, &stateDir),
		newNetworkStartCmd(g, &stateDir),
		newNetworkNodeCmd(g, &stateDir),
		newNetworkDownCmd(g, &stateDir),
		newNetworkStatusCmd(g, &stateDir),
		newNetworkDeployCmd(g, &stateDir),
		newNetworkTrustAnchorCmd(g, &stateDir),
		newNetworkProfileCmd(&stateDir),
		newNetworkIdentityCmd(g, &stateDir),
	)
	return cmd
}

func networkLogger(g *globalOptions, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		level = slog.LevelInfo
	}
	// Progress lines already tell people what happens; the log adds detail
	// only when asked for.
	if level >= slog.LevelInfo {
		level = slog.LevelWarn
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

func newNetworkUpCmd(g *globalOptions, stateDir *string) *cobra.Command {
	var (
		opts      network.Options
		sourceDir string
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Build the pinned Fabric binaries (once), start the network, deploy the iotledger chaincode, enroll identities",
		Long: `Builds Fabric v2.5.0 and Fabric CA v1.5.15 from their Go modules once into the user cache,
generates crypto and configs, starts the orderers, peers and CAs on 127.0.0.1 (free ports),
creates channel iotledger, deploys the iotledger chaincode as a service, enrolls an operator,
a hub and an auditor per org and writes <state-dir>/<org>/connection.json for each org.

On a state dir holding a complete network that is not running (after ` + "`network stop`" + `, a
crash or a reboot) up resumes it as ` + "`network start`" + ` does: same ledgers, crypto material and
ports; the other flags then do not apply. A state dir left by an up that did not finish is
removed and created anew. Only ` + "`network down`" + ` removes a complete network.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.StateDir = *stateDir
			opts.SourceDir = sourceDir
			opts.Logger = networkLogger(g, cmd.ErrOrStderr())
			if !g.json() {
				opts.Progress = cmd.OutOrStdout()
			}
			n, err := network.Up(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if g.json() {
				st, err := n.Status(cmd.Context())
				if err != nil {
					return err
				}
				return writeIndentedJSON(cmd.OutOrStdout(), st)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&opts.BatchTimeout, "batch-timeout", network.DefaultBatchTimeout, "orderer batch timeout (block cut after this long)")
	f.IntVar(&opts.Orderers, "orderers", network.DefaultOrderers, "number of Raft orderers")
	f.StringSliceVar(&opts.Orgs, "orgs", nil, "peer organisations, e.g. Hospital,Logistics (default Org1,Org2; MSP IDs are <name>MSP)")
	f.StringVar(&opts.EndorsementPolicy, "policy", network.DefaultPolicy, `endorsement policy of the iotledger chaincode: MAJORITY, ANY, ALL or a signature policy such as "OR('Org1MSP.peer','Org2MSP.peer')"`)
	f.IntVar(&opts.MaxMessageCount, "max-message-count", network.DefaultMaxMessageCount, "most transactions per block")
	f.StringVar(&opts.ChaincodePackage, "chaincode", network.DefaultChaincodePackage, "Go main package of the iotledger chaincode server")
	f.StringVar(&sourceDir, "source-dir", "", "iotledger source tree (default: found from the working directory)")
	f.StringVar(&opts.FabricLogSpec, "fabric-log-spec", "info", "FABRIC_LOGGING_SPEC of orderers and peers")
	f.BoolVar(&opts.Hosts, "hosts", false, "hosts mode: every org and every orderer in a network namespace of its own, on a bridge (Linux, as root)")
	return cmd
}

func newNetworkDownCmd(g *globalOptions, stateDir *string) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Stop every process the network started (by PID) and remove its state: ledgers, crypto material, CA databases, profiles (use stop to keep them)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := network.Load(*stateDir)
			if err != nil {
				return err
			}
			if !g.json() {
				n.SetProgress(cmd.OutOrStdout())
			}
			removal := n.Removal(cmd.Context())
			t := time.Now()
			if err := n.Down(cmd.Context()); err != nil {
				return err
			}
			if g.json() {
				return writeIndentedJSON(cmd.OutOrStdout(), removal)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "network down: %d processes stopped, %s removed (%s)\n",
				removal.Running, removal.StateDir, time.Since(t).Round(10*time.Millisecond))
			return nil
		},
	}
}

// loadNetwork loads the network in stateDir for a verb that changes it: its
// log goes to stderr, its progress to stdout unless the output is JSON.
func loadNetwork(cmd *cobra.Command, g *globalOptions, stateDir string) (*network.Network, error) {
	n, err := network.Load(stateDir)
	if err != nil {
		return nil, err
	}
	n.SetLogger(networkLogger(g, cmd.ErrOrStderr()))
	if !g.json() {
		n.SetProgress(cmd.OutOrStdout())
	}
	return n, nil
}

func newNetworkStopCmd(g *globalOptions, stateDir *string) *cobra.Command {
	return &cobra.Command{
		Use:   "stop",
		Short: "Stop every process of the network and keep its state (ledgers, crypto material, CA databases, ports, profiles); start or up resumes it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := loadNetwork(cmd, g, *stateDir)
			if err != nil {
				return err
			}
			if err := n.Stop(cmd.Context()); err != nil {
				return err
			}
			if g.json() {
				return writeIndentedJSON(cmd.OutOrStdout(), nodeRows(n.Nodes()))
			}
			return nil
		},
	}
}

func newNetworkStartCmd(g *globalOptions, stateDir *string) *cobra.Command {
	return &cobra.Command{
		Use:   "start",
		Short: "Start every node of a stopped network that is not running, on its recorded ports, and wait until it is healthy",
		Long: `Starts the CAs, orderers, peers and chaincode servers that are not running (after
` + "`network stop`" + `, a crash or a reboot) with their recorded commands and ports, and waits until
every node is healthy, the orderers have a Raft leader, the heights agree and discovery offers
every org's peer. Nothing is regenerated. A recorded port taken by another program fails the
start before anything starts. Starting a running network does nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := loadNetwork(cmd, g, *stateDir)
			if err != nil {
				return err
			}
			if err := n.Start(cmd.Context()); err != nil {
				return err
			}
			if g.json() {
				st, err := n.Status(cmd.Context())
				if err != nil {
					return err
				}
				return writeIndentedJSON(cmd.OutOrStdout(), st)
			}
			return nil
		},
	}
}

// newNetworkNodeCmd is `network node list|stop|start`.
func newNetworkNodeCmd(g *globalOptions, stateDir *string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "List, stop and start single nodes of the network (orderer1, peer0.org1, ca.org1, chaincode.iotledger.org1, ...)",
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the nodes: name, kind, org, PID, running or not, ports, log",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := network.Load(*stateDir)
			if err != nil {
				return err
			}
			rows := nodeRows(n.Nodes())
			if g.json() {
				return writeIndentedJSON(cmd.OutOrStdout(), rows)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			row(tw, "NODE", "KIND", "ORG", "PID", "STATE", "PORTS", "LOG")
			for _, r := range rows {
				pid := "-"
				if r.PID > 0 {
					pid = fmt.Sprint(r.PID)
				}
				row(tw, r.Name, r.Kind, orDash(r.Org), pid, r.State, portList(r.Ports), r.Log)
			}
			return tw.Flush()
		},
	}
	nodeVerb := func(verb, done, short string, do func(*network.Network, *cobra.Command, string) error) *cobra.Command {
		return &cobra.Command{
			Use:   verb + " NAME",
			Short: short,
			Args:  cobra.ArbitraryArgs, // checked in RunE, so that the error can list the node names
			RunE: func(cmd *cobra.Command, args []string) error {
				n, err := network.Load(*stateDir)
				if len(args) != 1 {
					// Wrong on any network; the names help when there is one.
					names := ""
					if err == nil {
						names = " (nodes: " + strings.Join(nodeNames(n), ", ") + ")"
					}
					return usageErrorf("`iotledger network node %s NAME` takes one node name, got %d%s", verb, len(args), names)
				}
				if err != nil {
					return err
				}
				t := time.Now()
				if err := do(n, cmd, args[0]); err != nil {
					return err
				}
				if g.json() {
					for _, r := range nodeRows(n.Nodes()) {
						if r.Name == args[0] {
							return writeIndentedJSON(cmd.OutOrStdout(), r)
						}
					}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s (%s)\n", args[0], done, time.Since(t).Round(10*time.Millisecond))
				return nil
			},
		}
	}
	cmd.AddCommand(list,
		nodeVerb("stop", "stopped", "Stop one node (SIGTERM, then SIGKILL); status reports it stopped until it is started", func(n *network.Network, cmd *cobra.Command, name string) error {
			return n.StopNode(cmd.Context(), name)
		}),
		nodeVerb("start", "started and healthy", "Start one stopped or crashed node on its recorded ports and wait until it is healthy", func(n *network.Network, cmd *cobra.Command, name string) error {
			return n.StartNode(cmd.Context(), name)
		}),
	)
	return cmd
}

// nodeRow is one line of `network node list`.
type nodeRow struct {
	Name  string           `json:"name"`
	Kind  network.NodeKind `json:"kind"`
	Org   string           `json:"org,omitempty"`
	PID   int              `json:"pid"`
	State string           `json:"state"` // running, stopped, down
	Ports map[string]int   `json:"ports"`
	Log   string           `json:"log"`
}

func nodeRows(nodes []network.Node) []nodeRow {
	rows := make([]nodeRow, len(nodes))
	for i, nd := range nodes {
		state := "running"
		switch {
		case !nd.Running() && nd.Stopped:
			state = "stopped"
		case !nd.Running():
			state = "down"
		}
		rows[i] = nodeRow{Name: nd.Name, Kind: nd.Kind, Org: nd.Org, PID: nd.PID, State: state, Ports: nd.Ports, Log: nd.Log}
	}
	return rows
}

func nodeNames(n *network.Network) []string {
	nodes := n.Nodes()
	names := make([]string, len(nodes))
	for i, nd := range nodes {
		names[i] = nd.Name
	}
	return names
}

func portList(ports map[string]int) string {
	names := make([]string, 0, len(ports))
	for name := range ports {
		names = append(names, name)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = fmt.Sprintf("%s=%d", name, ports[name])
	}
	return strings.Join(parts, " ")
}

// errNetworkUnhealthy makes `network status` exit non-zero.
var errNetworkUnhealthy = errors.New("network is not healthy")

func newNetworkStatusCmd(g *globalOptions, stateDir *string) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show every process (PID, address, health), the channel height and the deployed chaincodes; exit 1 if a node is down, lagging or isolated",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := network.Load(*stateDir)
			if err != nil {
				return err
			}
			st, err := n.Status(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if g.json() {
				if err := writeIndentedJSON(out, st); err != nil {
					return err
				}
			} else {
				printNetworkStatus(out, st)
			}
			if !st.Healthy {
				names := make([]string, 0)
				for _, ns := range st.Unhealthy() {
					why := ns.Health
					if ns.Error != "" && (ns.Health == network.HealthLagging || ns.Health == network.HealthIsolated) {
						why += ": " + ns.Error
					}
					names = append(names, ns.Name+" ("+why+", log "+ns.Log+")")
				}
				return fmt.Errorf("%w: %s", errNetworkUnhealthy, strings.Join(names, "; "))
			}
			return nil
		},
	}
}

func printNetworkStatus(w io.Writer, st *network.Status) {
	fmt.Fprintf(w, "network %s  channel %s  height %d\n", st.StateDir, st.Channel, st.Height)
	if st.StoppedAt != nil {
		fmt.Fprintf(w, "stopped at %s at height %d; `iotledger network start` resumes it\n",
			st.StoppedAt.Local().Format(time.DateTime), st.StoppedHeight)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row(tw, "NODE", "KIND", "PID", "ADDRESS", "HEALTH", "HEIGHT", "RAFT", "LOG")
	for _, n := range st.Nodes {
		height := "-"
		if n.Height != nil {
			height = fmt.Sprint(*n.Height)
		} else if n.AwaitingJoin {
			height = "not joined"
		}
		health := n.Health
		if n.Error != "" && n.Health != network.HealthOK {
			health += ": " + n.Error
		}
		raft := "-"
		if r := n.Raft; r != nil {
			raft = "follower"
			if r.Leader {
				raft = fmt.Sprintf("leader %d/%d active", r.ActiveNodes, r.ClusterSize)
			}
		}
		row(tw, n.Name, n.Kind, n.PID, n.Address, health, height, raft, n.Log)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row(tw, "CHAINCODE", "VERSION", "SEQUENCE", "COMMITTED", "POLICY")
	for _, c := range st.Chaincodes {
		committed := fmt.Sprint(c.CommittedSequence)
		if c.Error != "" {
			committed = "? (" + c.Error + ")"
		}
		row(tw, c.Name, c.Version, c.Sequence, committed, c.EndorsementPolicy)
	}
	_ = tw.Flush()
}

func newNetworkDeployCmd(g *globalOptions, stateDir *string) *cobra.Command {
	var spec network.ChaincodeSpec
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Rebuild the chaincode server and deploy it again (next sequence) without restarting the network",
		Long: `Rebuilds the chaincode server from the source tree, packages it for every org, installs,
approves and commits the next sequence and restarts the chaincode servers. The orderers,
peers and CAs keep running. With --name and --package any other chaincode-as-a-service
server of the source tree is deployed the same way.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := loadNetwork(cmd, g, *stateDir)
			if err != nil {
				return err
			}
			if spec.Name == "" || spec.Name == network.DefaultChaincode && spec.Package == "" {
				if spec.EndorsementPolicy != "" {
					return usageErrorf("--policy needs --name and --package (the iotledger chaincode keeps its policy)")
				}
				err = n.Deploy(cmd.Context())
				spec.Name = network.DefaultChaincode
			} else {
				if spec.Package == "" {
					return usageErrorf("--package is required with --name %s (e.g. ./cmd/iotledger-refchaincode)", spec.Name)
				}
				if c, ok := n.Chaincode(spec.Name); ok && spec.EndorsementPolicy == "" {
					spec.EndorsementPolicy = c.EndorsementPolicy
				}
				err = n.DeployChaincode(cmd.Context(), spec)
			}
			if err != nil {
				return err
			}
			c, _ := n.Chaincode(spec.Name)
			if g.json() {
				return writeIndentedJSON(cmd.OutOrStdout(), c)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "chaincode %s deployed: version %s, sequence %d\n", c.Name, c.Version, c.Sequence)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec.Name, "name", network.DefaultChaincode, "chaincode name")
	f.StringVar(&spec.Package, "package", "", "Go main package of the chaincode server (default: the one it was deployed from)")
	f.StringVar(&spec.EndorsementPolicy, "policy", "", "endorsement policy (default: keep the current one)")
	return cmd
}

func newNetworkTrustAnchorCmd(g *globalOptions, stateDir *string) *cobra.Command {
	return &cobra.Command{
		Use:   "trust-anchor",
		Short: "Print the channel's trust anchor (name and genesis block hash) from the genesis block this network was made with",
		Long: `Receipts are verified against this anchor (iotledger receipt verify --anchor). It is computed
from the genesis block file in the state directory; ` + "`iotledger receipt anchor`" + ` reads the same from any
member's peer, and every member gets the same value.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := localAnchor(*stateDir)
			if err != nil {
				return err
			}
			return writeIndentedJSON(cmd.OutOrStdout(), a)
		},
	}
}
