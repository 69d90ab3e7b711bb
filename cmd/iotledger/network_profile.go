package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/iotledger/iotledger/network"
)

// newNetworkProfileCmd is `iotledger network profile`: an org's connection
// profile, in iotledger's format or as a Fabric common connection profile
// for the tools and SDKs of others.
func newNetworkProfileCmd(stateDir *string) *cobra.Command {
	var org, format, out string
	cmd := &cobra.Command{
		Use:   "profile [--org ORG] [--format iotledger|ccp|ccp-yaml] [--out FILE]",
		Short: "Print an org's connection profile, as iotledger's own or as a Fabric common connection profile (CCP)",
		Long: `Prints the connection profile of --org. --format ccp (JSON) or ccp-yaml writes it as a Fabric common
connection profile in the shape fabric-samples' test-network writes: the org's peer and CA with their TLS CA
certificates inline, and the channel. It holds no identity: whoever uses it adds their own, and the chaincode
name, with --profile-overlay (see docs/network.md, "Using an existing network").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch format {
			case "iotledger", "ccp", "ccp-json", "ccp-yaml":
			default:
				return fmt.Errorf("unknown --format %q: use iotledger, ccp (JSON) or ccp-yaml", format)
			}
			n, err := network.Load(*stateDir)
			if err != nil {
				return err
			}
			p, err := n.Profile(org)
			if err != nil {
				return err
			}
			var data []byte
			if format == "iotledger" {
				data, err = json.MarshalIndent(p, "", "  ")
				data = append(data, '\n')
			} else {
				ccp, cerr := p.CCP()
				if cerr != nil {
					return cerr
				}
				if format == "ccp-yaml" {
					data, err = ccp.EncodeYAML()
				} else {
					data, err = ccp.EncodeJSON()
				}
			}
			if err != nil {
				return err
			}
			if out == "" {
				_, err = cmd.OutOrStdout().Write(data)
				return err
			}
			if err := os.WriteFile(out, data, 0o600); err != nil {
				return fmt.Errorf("write profile: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&org, "org", "Org1", "organisation whose profile to print")
	f.StringVar(&format, "format", "iotledger", "iotledger, ccp (Fabric common connection profile, JSON) or ccp-yaml")
	f.StringVar(&out, "out", "", "write to this file instead of standard output")
	return cmd
}
