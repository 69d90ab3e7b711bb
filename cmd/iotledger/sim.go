package main

import (
	"context"
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotledger/iotledger/client/sim"
)

type simOptions struct {
	hubAddr, hubID, rate, scenario, keys, prefix, caFile string
	devices                                              int
	duration                                             time.Duration
	seed                                                 uint64
	enroll, plaintext                                    bool
	groups                                               []string
}

func newSimCmd(g *globalOptions) *cobra.Command {
	l := newLedgerCmd(g, nil)
	o := simOptions{}
	names := ""
	for i, s := range sim.Scenarios() {
		if i > 0 {
			names += ", "
		}
		names += s.Name
	}
	cmd := &cobra.Command{
		Use:   "sim --hub-id NAME --keys DIR [--hub 127.0.0.1:1883] [--devices 10] [--rate 2/s] [--scenario cold-chain] [--duration 60s] [--enroll]",
		Short: "Simulate IoT devices that publish signed readings to a hub and acknowledge commands",
		Long: `Runs N simulated devices, each with its own key pair (kept in --keys DIR as <id>.key; created when
missing). With --enroll, devices not yet on the ledger are enrolled and activated by the --identity
(default operator) of --org. Devices connect to the hub over MQTT 5 with a signed token, publish
signed readings at --rate each, and acknowledge (signed) every command they receive. They connect
over TLS and pin the org's CA (the profile's hubTLS, which ` + "`network up`" + ` writes), or --ca;
--insecure-plaintext connects to a hub run with --insecure-plaintext.

Scenarios: ` + names + `.
Values are reproducible with --seed. Sequence numbers start at the run's start time in Unix ms,
so runs with the same keys never reuse one. Prints sent/accepted/refused counts at the end.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rate, err := sim.ParseRate(o.rate)
			if err != nil {
				return usageErrorf("invalid --rate: %w", err)
			}
			if o.hubID == "" {
				return usageErrorf("--hub-id is required: the id the hub was started with (iotledger hub --hub-id ...)")
			}
			if o.keys == "" {
				return usageErrorf("--keys is required: a directory for the devices' private keys")
			}
			if o.duration < 0 {
				return usageErrorf("invalid --duration %s: use 0 (until Ctrl-C) or more", o.duration)
			}
			cfg := sim.Config{Hub: o.hubAddr, HubID: o.hubID, Devices: o.devices, Rate: rate, Scenario: o.scenario,
				Duration: o.duration, Seed: o.seed, KeysDir: o.keys, Prefix: o.prefix, Groups: o.groups, Logger: l.logger(cmd)}
			// The simulation's own settings first: finding the hub's CA may
			// need a network.
			probe := cfg
			probe.InsecurePlaintext = true
			if err := probe.Validate(); err != nil {
				return err
			}
			pool, err := simTransport(o, l)
			if err != nil {
				return err
			}
			cfg.RootCAs, cfg.InsecurePlaintext = pool, pool == nil
			if o.enroll {
				return l.run(cmd, func(ctx context.Context, lg ledger) error {
					cfg.Enroller = lg
					return runSim(ctx, cmd, l, cfg)
				})
			}
			return runSim(cmd.Context(), cmd, l, cfg)
		},
	}
	l.lf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.hubAddr, "hub", "127.0.0.1:1883", "hub MQTT address")
	f.StringVar(&o.hubID, "hub-id", "", "the hub's --hub-id (required)")
	f.IntVar(&o.devices, "devices", 10, "number of devices")
	f.StringVar(&o.rate, "rate", "2/s", "readings per device, e.g. 2/s, 30/m")
	f.StringVar(&o.scenario, "scenario", "cold-chain", "scenario: "+names)
	f.DurationVar(&o.duration, "duration", 60*time.Second, "how long to run (0: until Ctrl-C)")
	f.Uint64Var(&o.seed, "seed", 1, "seed of the simulated values")
	f.StringVar(&o.keys, "keys", "", "directory of device keys (required)")
	f.StringVar(&o.prefix, "prefix", "", "device id prefix (default: the scenario name)")
	f.StringSliceVar(&o.groups, "group", nil, "extra device group for enrolled devices (repeatable)")
	f.BoolVar(&o.enroll, "enroll", false, "enroll and activate devices that are not on the ledger yet")
	f.StringVar(&o.caFile, "ca", "", "CA the hub's TLS certificate must chain to (PEM; default: the profile's hubTLS.caCert)")
	f.BoolVar(&o.plaintext, "insecure-plaintext", false, "connect without TLS, to a hub run with --insecure-plaintext")
	return cmd
}

func runSim(ctx context.Context, cmd *cobra.Command, l *ledgerCmd, cfg sim.Config) error {
	rep, err := sim.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if rep.Accepted == 0 && rep.ConnectFailures > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "devices could not connect (%d attempts, last: %s)\n"+
			"check --hub and --hub-id, and that the devices are enrolled and active (--enroll does both)\n",
			rep.ConnectFailures, rep.LastConnectError)
	}
	return l.render(cmd.OutOrStdout(), rep, func(tw *tabwriter.Writer) {
		row(tw, "SCENARIO", "DEVICES", "SENT", "ACCEPTED", "REFUSED", "COMMANDS", "ACKED", "RECONNECTS", "ELAPSED")
		var refused int64
		for _, n := range rep.Refused {
			refused += n
		}
		row(tw, rep.Scenario, rep.Devices, rep.Sent, rep.Accepted, refused, rep.CommandsReceived, rep.CommandsAcked, rep.Reconnects, rep.Elapsed.Round(time.Millisecond))
		reasons := rep.Reasons()
		sort.Strings(reasons)
		for _, r := range reasons {
			row(tw, "  refused: "+r, rep.Refused[r])
		}
	})
}
