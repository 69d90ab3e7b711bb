package main

import (
	"fmt"
	"slices"
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
		Short: "Manage the identities the orgs' Fabric CAs issue: enroll a new one, revoke a compromised one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErrorf("missing subcommand: use `iotledger network identity enroll|revoke --org ORG NAME`")
		},
	}
	cmd.AddCommand(newNetworkIdentityEnrollCmd(g, stateDir), newNetworkIdentityRevokeCmd(g, stateDir))
	return cmd
}

// identityRoles are the roles an enrolled identity may carry.
var identityRoles = []string{"operator", "hub", "auditor"}

func newNetworkIdentityEnrollCmd(g *globalOptions, stateDir *string) *cobra.Command {
	var org, role string
	cmd := &cobra.Command{
		Use:   "enroll NAME",
		Short: "Register and enroll a new identity with its org's Fabric CA and add it to the org's connection profile",
		Long: `Registers NAME with the org's Fabric CA as a client identity whose certificate carries
the role (` + network.RoleAttribute + `) as an ecert attribute, enrolls it, and adds it to
<state-dir>/<org>/connection.json, where --identity NAME finds it. A name is registered once:
to replace a revoked identity, enroll one under a new name.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if org == "" {
				return usageErrorf("--org is required (the org whose CA issues the identity, e.g. Org1)")
			}
			if !slices.Contains(identityRoles, role) {
				return usageErrorf("--role %q: use one of %s", role, strings.Join(identityRoles, ", "))
			}
			n, err := loadNetwork(cmd, g, *stateDir)
			if err != nil {
				return err
			}
			id, err := n.EnrollIdentity(cmd.Context(), org, args[0], map[string]string{network.RoleAttribute: role})
			if err != nil {
				return err
			}
			if g.json() {
				return writeIndentedJSON(cmd.OutOrStdout(), id)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "enrolled %s of %s as %s: certificate %s\nuse it with --org %s --identity %s\n",
				args[0], id.MSPID, role, id.Cert, org, args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&org, "org", "", "org whose CA issues the identity (Org1, Org2, ...)")
	cmd.Flags().StringVar(&role, "role", "", "role the identity carries: "+strings.Join(identityRoles, ", "))
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
				return usageErrorf("--org is required (the org whose CA issued the identity, e.g. Org1)")
			}
			if r := strings.ToLower(strings.TrimSpace(reason)); r != "" && !slices.Contains(network.RevocationReasons, r) {
				return usageErrorf("--reason %q: use one of %s", reason, strings.Join(network.RevocationReasons, ", "))
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
				fmt.Fprintln(w, "the channel MSP already held a CRL of this CA listing the same certificates: no config update was needed")
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
