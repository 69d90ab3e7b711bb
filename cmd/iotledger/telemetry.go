package main

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/index"
)

func newTelemetryCmd(g *globalOptions, open ledgerOpener) *cobra.Command {
	l := newLedgerCmd(g, open)
	cmd := &cobra.Command{
		Use:   "telemetry",
		Short: "Read device telemetry from the ledger and prove (offline) that a reading is on it",
	}
	l.lf.register(cmd)
	l.registerIndex(cmd)
	cmd.AddCommand(l.telemetryGetCmd(), l.telemetryListCmd(), l.telemetryProofCmd(), l.telemetryVerifyCmd())
	return cmd
}

// parseDeviceSeq checks the DEVICE SEQ arguments.
func parseDeviceSeq(args []string) (string, uint64, error) {
	if err := reading.ValidateID("device", args[0]); err != nil {
		return "", 0, usageErrorf("invalid device %q: %w", args[0], err)
	}
	seq, err := strconv.ParseUint(args[1], 10, 64)
	if err != nil {
		return "", 0, usageErrorf("invalid sequence number %q: give a whole number >= 0", args[1])
	}
	return args[0], seq, nil
}

func (l *ledgerCmd) telemetryGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get DEVICE SEQ",
		Short: "Show one committed reading (served by the org's index)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			device, seq, err := parseDeviceSeq(args)
			if err != nil {
				return err
			}
			return l.withIndex(cmd, func(ctx context.Context, st index.Store) error {
				r, err := st.Reading(ctx, device, seq)
				if err != nil {
					return indexMiss(err, device, seq)
				}
				v, err := index.View(*r)
				if err != nil {
					return err
				}
				return l.render(cmd.OutOrStdout(), v, func(tw *tabwriter.Writer) {
					row(tw, "Device", v.Device)
					row(tw, "Seq", v.Seq)
					row(tw, "Device time", deviceTime(v.Timestamp))
					row(tw, "Values", viewValues(v))
					row(tw, "Batch", fmt.Sprintf("%s #%d", v.BatchID, v.Index))
					row(tw, "Block", v.Block)
				})
			})
		},
	}
}

// viewValues shows a reading's values, or that they are another org's
// private data.
func viewValues(v index.ReadingView) string {
	if v.Private && len(v.Values) == 0 {
		return "(private to the device's owner)"
	}
	return values(v.Values)
}

func (l *ledgerCmd) telemetryListCmd() *cobra.Command {
	var (
		fromSeq  uint64
		pageSize int32
		bookmark string
		all      bool
	)
	cmd := &cobra.Command{
		Use:   "list DEVICE [--from-seq N]",
		Short: "List a device's readings in sequence order (served by the org's index)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			device := args[0]
			if err := reading.ValidateID("device", device); err != nil {
				return usageErrorf("invalid device %q: %w", device, err)
			}
			if err := checkPage(pageSize, all, bookmark); err != nil {
				return err
			}
			return l.withIndex(cmd, func(ctx context.Context, st index.Store) error {
				page, err := collectPages(cmd, all, func(bm string) (*index.ReadingPage, string, error) {
					p, err := index.ListReadings(ctx, st, device, fromSeq, int(pageSize), bm)
					if err != nil {
						return nil, "", err
					}
					return p, p.Bookmark, nil
				}, func(acc, next *index.ReadingPage) {
					acc.Readings = append(acc.Readings, next.Readings...)
					acc.Bookmark = next.Bookmark
				})
				if err != nil {
					return err
				}
				return l.render(cmd.OutOrStdout(), page, func(tw *tabwriter.Writer) {
					row(tw, "SEQ", "DEVICE TIME", "VALUES", "BATCH", "BLOCK")
					for _, r := range page.Readings {
						row(tw, r.Seq, deviceTime(r.Timestamp), viewValues(r), shortID(r.BatchID), r.Block)
					}
					moreHint(cmd, page.Bookmark)
				})
			})
		},
	}
	cmd.Flags().Uint64Var(&fromSeq, "from-seq", 0, "first sequence number")
	pageFlags(cmd, &pageSize, &bookmark, &all)
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
