package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/iotledger/iotledger/index"
	"github.com/iotledger/iotledger/receipt"
)

// newReceiptCmd is `iotledger receipt`: receipts an outsider checks
// offline with the channel's trust anchor (docs/receipts.md).
func newReceiptCmd(g *globalOptions, open ledgerOpener) *cobra.Command {
	l := newLedgerCmd(g, open)
	cmd := &cobra.Command{
		Use:   "receipt",
		Short: "Make and check receipts: offline proofs that a reading, an ack or a device's status is on the ledger",
		Long: `A receipt holds the blocks the orderers signed, the endorsements and the channel configuration,
so that anyone can check it offline with only the channel's trust anchor (iotledger receipt anchor).
The format is docs/receipts.md.`,
	}
	l.lf.register(cmd)
	l.registerIndex(cmd)
	cmd.AddCommand(l.receiptAnchorCmd(), l.receiptReadingCmd(), l.receiptCommandCmd(), l.receiptDeviceCmd(),
		l.receiptVerifyCmd(), l.receiptCheckCmd())
	return cmd
}

// maxReceiptFile bounds what `receipt verify` reads.
const maxReceiptFile = receipt.MaxBytes

func readBounded(cmd *cobra.Command, path string, limit int64) ([]byte, error) {
	var r io.Reader
	if path == "-" {
		r = cmd.InOrStdin()
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer func() { _ = f.Close() }()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is over %d bytes", path, limit)
	}
	return data, nil
}

// anchorFlags say what a verification trusts.
type anchorFlags struct{ file, channel, genesis string }

func (a *anchorFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.file, "anchor", "", "trust anchor file written by `iotledger receipt anchor` (or `network trust-anchor`)")
	cmd.Flags().StringVar(&a.channel, "channel", "", "channel of the trust anchor (with --genesis)")
	cmd.Flags().StringVar(&a.genesis, "genesis", "", "hash (hex) of the channel's genesis block header (with --channel)")
}

func (a *anchorFlags) load(cmd *cobra.Command) (receipt.Anchor, error) {
	switch {
	case a.file != "" && (a.channel != "" || a.genesis != ""):
		return receipt.Anchor{}, usageErrorf("give --anchor FILE or --channel and --genesis, not both")
	case a.file != "":
		data, err := readBounded(cmd, a.file, 4096)
		if err != nil {
			return receipt.Anchor{}, fmt.Errorf("reading --anchor: %w", err)
		}
		return receipt.ParseAnchor(data)
	case a.channel != "" && a.genesis != "":
		an := receipt.Anchor{Channel: a.channel, Genesis: strings.ToLower(a.genesis)}
		data, _ := json.Marshal(an)
		return receipt.ParseAnchor(data)
	default:
		return receipt.Anchor{}, usageErrorf("a receipt is checked against a trust anchor obtained independently: give --anchor FILE (from `iotledger receipt anchor` run by any member) or --channel NAME --genesis HASH")
	}
}

func (l *ledgerCmd) receiptAnchorCmd() *cobra.Command {
	var out, block string
	cmd := &cobra.Command{
		Use:   "anchor [--out anchor.json] [--block genesis.block]",
		Short: "Print the channel's trust anchor (its name and genesis block hash), read from this org's peer",
		Long: `The trust anchor is what receipts are verified with. Every member's peer computes the same:
compare what two members give you. --block also saves the genesis block itself.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				a, genesis, err := lg.TrustAnchor(ctx)
				if err != nil {
					return err
				}
				if block != "" {
					raw, err := proto.Marshal(genesis)
					if err != nil {
						return err
					}
					if err := os.WriteFile(block, raw, 0o644); err != nil {
						return err
					}
				}
				return l.writeDoc(cmd, out, a, func(tw *tabwriter.Writer) {
					row(tw, "Channel", a.Channel)
					row(tw, "Genesis", a.Genesis)
					row(tw, "Read from", lg.MSPID()+"'s peer: compare with another member's")
				})
			})
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "write the anchor JSON to this file")
	cmd.Flags().StringVar(&block, "block", "", "also write the genesis block (protobuf) to this file")
	return cmd
}

// writeDoc writes a document to --out (and a summary to stdout), or the
// document itself to stdout.
func (l *ledgerCmd) writeDoc(cmd *cobra.Command, out string, v any, summary func(tw *tabwriter.Writer)) error {
	if out == "" {
		return writeIndentedJSON(cmd.OutOrStdout(), v)
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return err
	}
	return l.render(cmd.OutOrStdout(), v, func(tw *tabwriter.Writer) {
		summary(tw)
		row(tw, "Saved", out)
	})
}

func (l *ledgerCmd) receiptOut(cmd *cobra.Command, out string, r *receipt.Receipt) error {
	data, err := r.Marshal()
	if err != nil {
		return err
	}
	if out == "" {
		_, err := cmd.OutOrStdout().Write(data)
		return err
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	row(tw, "Receipt", fmt.Sprintf("%s of device %s, transaction %s", r.Kind, r.Device, r.TxID))
	row(tw, "Size", fmt.Sprintf("%d bytes (%d blocks, %d config blocks)", len(data), len(r.Blocks), len(r.Config)))
	row(tw, "Saved", out)
	row(tw, "", "check it offline: iotledger receipt verify "+out+" --anchor anchor.json")
	return tw.Flush()
}

func (l *ledgerCmd) receiptReadingCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "reading DEVICE SEQ [--out FILE]",
		Short: "Make the receipt of a committed reading (the reading and its path from the org's index, the blocks from its peer)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			device, seq, err := parseDeviceSeq(args)
			if err != nil {
				return err
			}
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				st, err := l.openReadIndex(ctx)
				if err != nil {
					return err
				}
				defer func() { _ = st.Close() }()
				p, err := index.ReadingProof(ctx, st, device, seq)
				if err != nil {
					return indexMiss(err, device, seq)
				}
				r, err := lg.ReadingReceipt(ctx, p)
				if err != nil {
					return err
				}
				return l.receiptOut(cmd, out, r)
			})
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "write the receipt to this file (default: standard output)")
	return cmd
}

func (l *ledgerCmd) receiptCommandCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "command ID [--out FILE]",
		Short: "Make the receipt of a command's device-signed ack",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				r, err := lg.CommandAckReceipt(ctx, args[0])
				if err != nil {
					return err
				}
				return l.receiptOut(cmd, out, r)
			})
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "write the receipt to this file (default: standard output)")
	return cmd
}

func (l *ledgerCmd) receiptDeviceCmd() *cobra.Command {
	var out, tx string
	cmd := &cobra.Command{
		Use:   "device ID [--tx TXID] [--out FILE]",
		Short: "Make the receipt of a device's record (status, key, owner) as a transaction wrote it; default the latest (a revocation, once revoked)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				r, err := lg.DeviceReceipt(ctx, args[0], tx)
				if err != nil {
					return err
				}
				return l.receiptOut(cmd, out, r)
			})
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "write the receipt to this file (default: standard output)")
	cmd.Flags().StringVar(&tx, "tx", "", "the transaction that wrote the record (see `iotledger device history`)")
	return cmd
}

// verifyFile checks a receipt file offline against the anchor the flags
// name, and returns it parsed with what it proves.
func verifyFile(cmd *cobra.Command, af *anchorFlags, path string) (*receipt.Receipt, *receipt.Result, error) {
	anchor, err := af.load(cmd)
	if err != nil {
		return nil, nil, err
	}
	data, err := readBounded(cmd, path, maxReceiptFile)
	if err != nil {
		return nil, nil, err
	}
	res, err := receipt.Verify(data, anchor)
	if err != nil {
		return nil, nil, fmt.Errorf("%s does NOT verify: %w", path, err)
	}
	r, err := receipt.Parse(data)
	if err != nil {
		return nil, nil, err
	}
	return r, res, nil
}

func (l *ledgerCmd) receiptVerifyCmd() *cobra.Command {
	var af anchorFlags
	cmd := &cobra.Command{
		Use:   "verify RECEIPT --anchor anchor.json",
		Short: "Check a receipt offline with nothing but the trust anchor; exits non-zero when it does not verify",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			start := time.Now()
			_, res, err := verifyFile(cmd, &af, args[0])
			if err != nil {
				return err
			}
			return l.renderResult(cmd.OutOrStdout(), res, time.Since(start))
		},
	}
	af.register(cmd)
	return cmd
}

func (l *ledgerCmd) receiptCheckCmd() *cobra.Command {
	var af anchorFlags
	cmd := &cobra.Command{
		Use:   "check RECEIPT --anchor anchor.json",
		Short: "Verify a receipt offline, then ask this org's peer what a receipt cannot prove: that its transactions are VALID",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, res, err := verifyFile(cmd, &af, args[0])
			if err != nil {
				return err
			}
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				cc, err := lg.CheckReceipt(ctx, r, res)
				if err != nil {
					return fmt.Errorf("%s verified offline, but the cross-check failed: %w", args[0], err)
				}
				return l.render(cmd.OutOrStdout(), cc, func(tw *tabwriter.Writer) {
					row(tw, "VERIFIED", "offline, and "+cc.Org+"'s peer agrees")
					for id, code := range cc.Transactions {
						row(tw, "Transaction", id+" "+code)
					}
					row(tw, "Blocks", fmt.Sprint(cc.Blocks))
				})
			})
		},
	}
	af.register(cmd)
	return cmd
}

func (l *ledgerCmd) renderResult(w io.Writer, res *receipt.Result, took time.Duration) error {
	return l.render(w, res, func(tw *tabwriter.Writer) {
		what := ""
		switch res.Kind {
		case receipt.KindReading:
			what = fmt.Sprintf("reading %d of device %s is in batch %s", res.Reading.Seq, res.Device, res.TxID)
		case receipt.KindCommandAck:
			what = fmt.Sprintf("device %s %s command %s", res.Device, res.Ack.Status, res.Ack.Command)
		case receipt.KindDeviceStatus:
			what = fmt.Sprintf("device %s is %s from block %d on", res.Device, res.Status, res.Block)
		}
		row(tw, "VERIFIED", what)
		row(tw, "Block", fmt.Sprintf("%d, transaction %d, %s (config sequence %d)", res.Block, res.TxIndex, res.Time.UTC().Format(time.RFC3339), res.Config))
		row(tw, "Submitted by", res.Creator)
		row(tw, "Endorsed by", strings.Join(res.Endorsers, ", "))
		row(tw, "Device", fmt.Sprintf("owner %s, %s, key %s (version %d), record of transaction %s in block %d", res.Owner, res.Status, res.KeyID, res.KeyVersion, res.RecordTx, res.RecordAt))
		if res.Reading != nil {
			row(tw, "Device time", deviceTime(res.Reading.Timestamp))
			row(tw, "Values", values(res.Reading.Values))
		}
		if res.Ack != nil && res.Ack.Result != "" {
			row(tw, "Result", res.Ack.Result)
		}
		if res.StatusNote != "" {
			row(tw, "Note", res.StatusNote)
		}
		row(tw, "Not proven offline", "the peers' validation flag: run `iotledger receipt check` against a member's peer")
		row(tw, "Checked in", took.Round(time.Millisecond).String())
	})
}
