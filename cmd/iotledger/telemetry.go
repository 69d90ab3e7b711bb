package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotledger/iotledger/chaincode/reading"
)

func newTelemetryCmd(g *globalOptions, open ledgerOpener) *cobra.Command {
	l := newLedgerCmd(g, open)
	cmd := &cobra.Command{
		Use:   "telemetry",
		Short: "Read device telemetry from the ledger and prove (offline) that a reading is on it",
	}
	l.lf.register(cmd)
	cmd.AddCommand(l.telemetryGetCmd(), l.telemetryListCmd(), l.telemetryProofCmd(), l.telemetryVerifyCmd())
	return cmd
}

// parseDeviceSeq checks the DEVICE SEQ arguments.
func parseDeviceSeq(args []string) (string, uint64, error) {
	if err := reading.ValidateID("device", args[0]); err != nil {
		return "", 0, fmt.Errorf("invalid device %q: %w", args[0], err)
	}
	seq, err := strconv.ParseUint(args[1], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("invalid sequence number %q: give a whole number >= 0", args[1])
	}
	return args[0], seq, nil
}

// errServedByIndex is what a verb that reads readings says: the ledger
// keeps none (world state holds each batch's Merkle root and each device's
// replay state; the readings are in the blocks, or for private devices in
// the owner's collection), and an org's index serves them.
//
// TODO(index): serve telemetry get, telemetry list and receipt reading
// (telemetry proof) from the org's index.
func errServedByIndex(verb string) error {
	return &hintError{msg: verb + ": the ledger keeps no readings any more, only each batch's Merkle root and each device's replay state; " +
		"an org's index serves readings and their proofs, and this command does not reach one yet"}
}

func (l *ledgerCmd) telemetryGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get DEVICE SEQ",
		Short: "Show one committed reading (served by an org's index)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, _, err := parseDeviceSeq(args); err != nil {
				return err
			}
			return errServedByIndex("telemetry get")
		},
	}
}

func (l *ledgerCmd) telemetryListCmd() *cobra.Command {
	var fromSeq uint64
	cmd := &cobra.Command{
		Use:   "list DEVICE [--from-seq N]",
		Short: "List a device's readings in sequence order (served by an org's index)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := reading.ValidateID("device", args[0]); err != nil {
				return fmt.Errorf("invalid device %q: %w", args[0], err)
			}
			return errServedByIndex("telemetry list")
		},
	}
	cmd.Flags().Uint64Var(&fromSeq, "from-seq", 0, "first sequence number")
	return cmd
}

func deviceTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
}

// telemetryProofCmd and telemetryVerifyCmd are `receipt reading` and
// `receipt verify` where people look for them first.
func (l *ledgerCmd) telemetryProofCmd() *cobra.Command {
	cmd := l.receiptReadingCmd()
	cmd.Use = "proof DEVICE SEQ [--out FILE]"
	cmd.Short = "Make the receipt of a committed reading (as `iotledger receipt reading`); check it with `telemetry verify`"
	return cmd
}

func (l *ledgerCmd) telemetryVerifyCmd() *cobra.Command {
	cmd := l.receiptVerifyCmd()
	cmd.Short = "Check a reading's receipt offline against the channel's trust anchor (as `iotledger receipt verify`)"
	return cmd
}
