package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotledger/iotledger/network"
)

// newOrgCmd is `iotledger org`: a new organisation joins the running
// channel of a network, in Fabric's three steps (create, add, join).
func newOrgCmd(g *globalOptions) *cobra.Command {
	var stateDir string
	cmd := &cobra.Command{
		Use:   "org",
		Short: "Add an organisation to the running channel: the newcomer creates its org, the members add it, the newcomer joins",
		Long: `An organisation joins a running channel in three steps, as on any Fabric network:

  iotledger org create City                  the newcomer: its own crypto material, peer and CA,
                                              and its org definition (configtxgen -printOrg)
  iotledger org add city-definition.json     the members: a channel config update adding it,
                                              signed by the admins of a MAJORITY of the orgs
  iotledger org join City                    the newcomer: its peer joins the channel, installs
                                              and approves the chaincode, its CA enrolls its
                                              operator, hub and auditor

The definition file (certificates and policies, no private key) is the only thing that passes
between the newcomer and the members. Each step prints how long it took.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return usageErrorf("missing subcommand: use `iotledger org create|add|join`")
		},
	}
	cmd.PersistentFlags().StringVar(&stateDir, "state-dir", network.DefaultStateDir(), "network state directory (env IOTLEDGER_STATE_DIR)")
	cmd.AddCommand(newOrgCreateCmd(g, &stateDir), newOrgAddCmd(g, &stateDir), newOrgJoinCmd(g, &stateDir))
	return cmd
}

func newOrgCreateCmd(g *globalOptions, stateDir *string) *cobra.Command {
	return &cobra.Command{
		Use:   "create NAME",
		Short: "The newcomer's side: generate the org's crypto material, start its peer and CA, export its org definition",
		Long: `Generates the org's own crypto material with cryptogen (CA, TLS CA, peer, admin), starts
its peer and Fabric CA (MSP ID NAMEMSP), and writes its org definition as configtxgen -printOrg
prints it, to <state-dir>/<name>/<name>-definition.json. No key of another org is used. Give
the definition to the channel's members for ` + "`iotledger org add`" + `.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := network.ValidateOrgName(args[0]); err != nil {
				return usageErrorf("%w", err)
			}
			return runOrgStep(cmd, g, *stateDir,
				func(ctx context.Context, n *network.Network) (network.OrgCreation, error) {
					return n.CreateOrg(ctx, args[0])
				},
				func(_ *network.Network, res network.OrgCreation) string {
					return fmt.Sprintf("created %s (%s): %s\norg definition %s\nnext: the members run `iotledger org add %s`, then `iotledger org join %s`\ntook %s\n",
						res.Org, res.MSPID, strings.Join(res.Nodes, ", "), res.Definition, res.Definition, res.Org, res.Took.Round(10*time.Millisecond))
				})
		},
	}
}

func newOrgAddCmd(g *globalOptions, stateDir *string) *cobra.Command {
	var signers []string
	cmd := &cobra.Command{
		Use:   "add DEFINITION.json",
		Short: "The members' side: add an org to the channel with a config update signed by a MAJORITY of the orgs' admins",
		Long: `Reads an org definition (the JSON of configtxgen -printOrg: MSP, policies, anchor peers),
checks it strictly, and submits a channel config update adding the org, signed by the admins of
--signers (default: the first MAJORITY of the member orgs, which /Channel/Application/Admins
requires), each with its own key. It returns when every orderer and peer has the new config
block. An org whose name or MSP ID the channel has is refused; nothing is submitted then.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, s := range signers {
				if strings.TrimSpace(s) == "" {
					return usageErrorf("--signers %q: an empty org name", strings.Join(signers, ","))
				}
			}
			data, err := readDefinition(args[0])
			if err != nil {
				return err
			}
			def, err := network.ParseOrgDefinition(data)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			return runOrgStep(cmd, g, *stateDir,
				func(ctx context.Context, n *network.Network) (network.OrgAddition, error) {
					return n.AddOrg(ctx, def, signers)
				},
				func(_ *network.Network, res network.OrgAddition) string {
					return fmt.Sprintf("added %s (%s) to the channel: config sequence %d in block %d, signed by %s; every node has it\nnext: the newcomer runs `iotledger org join %s`\ntook %s\n",
						res.Org, res.MSPID, res.Update.Sequence, res.Update.Block, strings.Join(res.Update.Signers, ", "), res.Org, res.Took.Round(10*time.Millisecond))
				})
		},
	}
	cmd.Flags().StringSliceVar(&signers, "signers", nil, "member orgs whose admins sign (default: the first MAJORITY of the members)")
	return cmd
}

// runOrgStep runs one step of joining on the network of stateDir and
// prints what it returned: as JSON with -o json, else as text says.
func runOrgStep[T any](cmd *cobra.Command, g *globalOptions, stateDir string,
	step func(context.Context, *network.Network) (T, error), text func(*network.Network, T) string,
) error {
	n, err := loadNetwork(cmd, g, stateDir)
	if err != nil {
		return err
	}
	res, err := step(cmd.Context(), n)
	if err != nil {
		return err
	}
	if g.json() {
		return writeIndentedJSON(cmd.OutOrStdout(), res)
	}
	fmt.Fprint(cmd.OutOrStdout(), text(n, res))
	return nil
}

// readDefinition reads an org definition file, refusing one too large to be one.
func readDefinition(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("org definition: %w", err)
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("org definition: %w", err)
	}
	if st.Size() > network.MaxOrgDefinitionBytes {
		return nil, fmt.Errorf("%s: %w: %d bytes, more than the %d an org definition may have", path, network.ErrMalformedOrgDefinition, st.Size(), network.MaxOrgDefinitionBytes)
	}
	return os.ReadFile(path)
}

func newOrgJoinCmd(g *globalOptions, stateDir *string) *cobra.Command {
	return &cobra.Command{
		Use:   "join NAME",
		Short: "The newcomer's side: join its peer to the channel, install and approve the chaincode, enroll its identities",
		Long: `For an org made with ` + "`iotledger org create`" + ` and added by the members: its peer fetches the
genesis block from the orderers, joins the channel and catches up; for each chaincode the
network runs, the org gets its own package and server and approves the committed definition;
its CA enrolls an operator, a hub and an auditor and issues its hubs' TLS certificate
(<state-dir>/<name>/connection.json). It returns once discovery at every org's peer offers
every org's peer. An org not yet added is refused and nothing changes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := network.ValidateOrgName(args[0]); err != nil {
				return usageErrorf("%w", err)
			}
			return runOrgStep(cmd, g, *stateDir,
				func(ctx context.Context, n *network.Network) (network.OrgJoin, error) { return n.JoinOrg(ctx, args[0]) },
				func(n *network.Network, res network.OrgJoin) string {
					return fmt.Sprintf("%s (%s) joined channel %s at height %d; profile %s\ntook %s\n",
						res.Org, res.MSPID, n.Channel(), res.Height, res.Profile, res.Took.Round(10*time.Millisecond))
				})
		},
	}
}
