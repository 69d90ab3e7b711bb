package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotledger/iotledger/network"
)

// newNetworkIdentityCmd is `iotledger network identity`: the org identities
// that the network's Fabric CAs issued (operators, hubs, auditors).
func newNetworkIdentityCmd(g *globalOptions, stateDir *string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "identity",
		Short: "Manage the identities the orgs' Fabric CAs issued (revoke a compromised one)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return errors.New("missing subcommand: use `iotledger network identity revoke --org ORG NAME`")
		},
	}
	cmd.AddCommand(newNetworkIdentityRevokeCmd(g, stateDir))
	return cmd
}

func newNetworkIdentityRevokeCmd(g *globalOptions, stateDir *string) *cobra.Command {
	var org, reason string
	cmd := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke an identity at its org's Fabric CA and put the CA's CRL into the org's channel MSP",
		Long: `Revokes every certificate of NAME (e.g. hub, operator, or one enrolled later) at the org's
Fabric CA as the CA's registrar, has the CA generate its certificate revocation list, and
submits a channel config update, signed by the org's admin (the org's own Admins policy
governs its MSP), that puts the CRL into the org's MSP in the channel configuration. It
returns when every orderer and peer has committed the new config block: from then on the
identity's proposals, queries and transactions are refused. The identity cannot enroll
again; enroll a new one under another name.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if org == "" {
				return errors.New("--org is required (the org whose CA issued the identity, e.g. Org1)")
			}
			n, err := loadNetwork(cmd, g, *stateDir)
			if err != nil {
				return err
			}
			rev, err := n.RevokeIdentity(cmd.Context(), org, args[0], reason)
			if err != nil {
				return err
			}
			if g.json() {
				return writeIndentedJSON(cmd.OutOrStdout(), rev)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "revoked %s of %s (%s)", rev.Name, rev.MSPID, rev.Reason)
			if rev.Serial != "" {
				fmt.Fprintf(w, ", certificate serial %s", rev.Serial)
			}
			fmt.Fprintf(w, "\nCRL %s lists %d certificate(s)\n", rev.CRL, rev.Revoked)
			if rev.Update == nil {
				fmt.Fprintln(w, "the channel MSP already held this CRL: no config update was needed")
			} else {
				fmt.Fprintf(w, "channel config sequence %d in block %d, signed by %s; every node has it\n",
					rev.Update.Sequence, rev.Update.Block, strings.Join(rev.Update.Signers, ", "))
			}
			fmt.Fprintf(w, "took %s\n", rev.Took.Round(10*time.Millisecond))
			return nil
		},
	}
	cmd.Flags().StringVar(&org, "org", "", "org whose CA issued the identity (Org1, Org2, ...)")
	cmd.Flags().StringVar(&reason, "reason", "unspecified", "revocation reason: "+strings.Join(network.RevocationReasons, ", "))
	return cmd
}
