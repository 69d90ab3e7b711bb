// Command iotledger is the operator's tool for an iotledger consortium: it
// runs a local Fabric network, manages devices, policies, rules and commands,
// reads telemetry, and runs the IoT hub and the device simulator.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// globalOptions are the flags every verb understands.
type globalOptions struct {
	output   string // "table" or "json"
	logLevel string
}

func (g *globalOptions) json() bool { return g.output == "json" }

func newRootCmd() *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "iotledger",
		Short: "Tamper-evident IoT device identity, access control and telemetry on Hyperledger Fabric",
		Long: "Tamper-evident IoT device identity, access control and telemetry on Hyperledger Fabric.\n\n" +
			exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if g.output != "table" && g.output != "json" {
				return usageErrorf("invalid --output %q: use \"table\" or \"json\"", g.output)
			}
			return nil
		},
	}
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "table", `output format: "table" for people, "json" for scripts`)
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")

	// Each verb group lives in its own file and is wired here.
	root.AddCommand(
		newNetworkCmd(g),
		newOrgCmd(g),
		newDeviceCmd(g, connectLedger),
		newPolicyCmd(g, connectLedger),
		newRuleCmd(g, connectLedger),
		newCommandCmd(g, connectLedger),
		newTelemetryCmd(g, connectLedger),
		newReceiptCmd(g, connectLedger),
		newIndexCmd(g),
		newEventsCmd(g, connectLedger),
		newBenchCmd(g),
		newHubCmd(g),
		newSimCmd(g),
		newDemoCmd(g),
		newConsoleCmd(g),
		newChaincodeCmd(g),
		newVersionCmd(g),
	)
	setVersionFlag(root, g)
	strictUsage(root)
	return root
}
