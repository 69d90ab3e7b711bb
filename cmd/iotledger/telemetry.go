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

func (l *ledgerCmd) telemetryProofCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "proof DEVICE SEQ",
		Short: "Fetch the proof that a reading is in a committed batch (save it with -o json > proof.json)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			device, seq, err := parseDeviceSeq(args)
			if err != nil {
				return err
			}
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				p, err := lg.ReadingProof(ctx, device, seq)
				if err != nil {
					return readingNotFound(err, device, seq)
				}
				return l.render(cmd.OutOrStdout(), p, func(tw *tabwriter.Writer) {
					row(tw, "Device", device)
					row(tw, "Seq", seq)
					row(tw, "Batch", p.BatchID)
					row(tw, "Root", p.Root.String())
					row(tw, "Leaf", fmt.Sprintf("index %d of %d", p.Index, p.Size))
					row(tw, "Path", fmt.Sprintf("%d hashes", len(p.Path)))
					row(tw, "", "save with -o json > proof.json; check offline with `iotledger telemetry verify proof.json`")
				})
			})
		},
	}
}

// proofReport is what `telemetry verify` found.
type proofReport struct {
	Verified  bool            `json:"verified"`
	Device    string          `json:"device"`
	Seq       uint64          `json:"seq"`
	Timestamp int64           `json:"ts"`
	Values    []reading.Value `json:"values"`
	BatchID   string          `json:"batchId"`
	Root      reading.Hash    `json:"root"`
	Index     int             `json:"index"`
	Size      int             `json:"size"`
	KeyAlg    string          `json:"keyAlg"`
	KeyID     string          `json:"keyId"`
}

func (l *ledgerCmd) telemetryVerifyCmd() *cobra.Command {
	var root string
	cmd := &cobra.Command{
		Use:   "verify proof.json [--root HEX]",
		Short: "Check a reading's proof offline: device signature, Merkle path, and optionally the expected root",
		Long: `Checks a proof saved with ` + "`iotledger telemetry proof DEVICE SEQ -o json > proof.json`" + ` without
any network: the payload parses, the device's signature verifies with the key in the proof, and the
reading's leaf leads to the batch root in the proof. Give --root (taken from the ledger or from a
copy you trust, e.g. ` + "`iotledger`" + ` output of another org) to check that root too.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var want *reading.Hash
			if root != "" {
				h, err := reading.ParseHash(root)
				if err != nil {
					return fmt.Errorf("invalid --root: %w", err)
				}
				want = &h
			}
			var p reading.Proof
			if err := readDocument(cmd, args[0], &p); err != nil {
				return err
			}
			payload, err := p.Verify()
			if err != nil {
				return fmt.Errorf("proof %s does NOT verify: %w", args[0], err)
			}
			if want != nil && *want != p.Root {
				return fmt.Errorf("proof %s does NOT verify: its root %s is not the expected root %s", args[0], p.Root, *want)
			}
			key, err := reading.ParsePublicKey(p.PublicKey)
			if err != nil {
				return fmt.Errorf("proof %s: %w", args[0], err)
			}
			rep := proofReport{
				Verified: true, Device: payload.Device, Seq: payload.Seq, Timestamp: payload.Timestamp,
				Values: payload.Values, BatchID: p.BatchID, Root: p.Root, Index: p.Index, Size: p.Size,
				KeyAlg: string(key.Algorithm()), KeyID: key.Fingerprint(),
			}
			return l.render(cmd.OutOrStdout(), rep, func(tw *tabwriter.Writer) {
				row(tw, "VERIFIED", fmt.Sprintf("reading %d of device %s is in batch %s", rep.Seq, rep.Device, rep.BatchID))
				row(tw, "Signature", fmt.Sprintf("valid, %s key %s", rep.KeyAlg, rep.KeyID))
				row(tw, "Merkle path", fmt.Sprintf("leaf at index %d of %d leads to root %s", rep.Index, rep.Size, rep.Root))
				if want != nil {
					row(tw, "Root", "matches the expected root")
				} else {
					row(tw, "Root", "not compared: give --root to check it against the ledger's")
				}
				row(tw, "Device time", deviceTime(rep.Timestamp))
				row(tw, "Values", values(rep.Values))
			})
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "expected batch root (hex) to compare with the proof's")
	return cmd
}
