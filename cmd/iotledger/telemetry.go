package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
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
		return "", 0, fmt.Errorf("invalid device %q: %w", args[0], err)
	}
	seq, err := strconv.ParseUint(args[1], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("invalid sequence number %q: give a whole number >= 0", args[1])
	}
	return args[0], seq, nil
}

func readingNotFound(err error, device string, seq uint64) error {
	if api.CodeOf(err) == api.CodeNotFound {
		return &hintError{
			msg: fmt.Sprintf("no reading %d of device %q on the ledger (%s); list its readings with `iotledger telemetry list %s`",
				seq, device, strings.TrimSpace(errMessage(err)), device),
			err: err,
		}
	}
	return err
}

// errMessage is the chaincode's message of a classified error.
func errMessage(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Message
	}
	return err.Error()
}

func (l *ledgerCmd) telemetryGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get DEVICE SEQ",
		Short: "Show one stored reading",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			device, seq, err := parseDeviceSeq(args)
			if err != nil {
				return err
			}
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				r, err := lg.Reading(ctx, device, seq)
				if err != nil {
					return readingNotFound(err, device, seq)
				}
				return l.render(cmd.OutOrStdout(), r, func(tw *tabwriter.Writer) {
					row(tw, "Device", r.Device)
					row(tw, "Seq", r.Seq)
					row(tw, "Device time", deviceTime(r.Timestamp))
					row(tw, "Values", readingValues(r))
					row(tw, "Key", r.KeyID)
					row(tw, "Batch", fmt.Sprintf("%s #%d", r.BatchID, r.Index))
					row(tw, "Committed", when(r.Committed))
				})
			})
		},
	}
}

// readingValues shows a stored reading's values, or whose private data
// holds them when the caller's org may not see them.
func readingValues(r *api.StoredReading) string {
	if r.Private && len(r.Values) == 0 {
		return "(private to " + r.PrivateTo + ")"
	}
	return values(r.Values)
}

func deviceTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
}

func (l *ledgerCmd) telemetryListCmd() *cobra.Command {
	var (
		q   api.ReadingQuery
		all bool
	)
	cmd := &cobra.Command{
		Use:   "list DEVICE [--from-seq N]",
		Short: "List a device's readings in sequence order",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q.Device = args[0]
			if err := reading.ValidateID("device", q.Device); err != nil {
				return fmt.Errorf("invalid device %q: %w", q.Device, err)
			}
			if err := checkPage(q.PageSize, all, q.Bookmark); err != nil {
				return err
			}
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				page, err := collectPages(cmd, all, func(bm string) (*api.ReadingPage, string, error) {
					q.Bookmark = bm
					p, err := lg.ListReadings(ctx, q)
					if err != nil {
						return nil, "", err
					}
					return p, p.Bookmark, nil
				}, func(acc, next *api.ReadingPage) {
					acc.Readings = append(acc.Readings, next.Readings...)
					acc.Bookmark = next.Bookmark
				})
				if err != nil {
					return notFound(err, "device", q.Device, deviceListCmd)
				}
				if page.Readings == nil {
					page.Readings = []api.StoredReading{}
				}
				return l.render(cmd.OutOrStdout(), page, func(tw *tabwriter.Writer) {
					row(tw, "SEQ", "DEVICE TIME", "VALUES", "BATCH", "COMMITTED")
					for _, r := range page.Readings {
						row(tw, r.Seq, deviceTime(r.Timestamp), readingValues(&r), shortID(r.BatchID), when(r.Committed))
					}
					moreHint(cmd, page.Bookmark)
				})
			})
		},
	}
	cmd.Flags().Uint64Var(&q.FromSeq, "from-seq", 0, "first sequence number")
	pageFlags(cmd, &q.PageSize, &q.Bookmark, &all)
	return cmd
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
