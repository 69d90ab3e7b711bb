package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/iotledger/iotledger/client"
)

func newEventsCmd(g *globalOptions, open ledgerOpener) *cobra.Command {
	l := newLedgerCmd(g, open)
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Follow what the ledger's transactions produce",
	}
	l.lf.register(cmd)
	cmd.AddCommand(l.eventsWatchCmd())
	return cmd
}

func (l *ledgerCmd) eventsWatchCmd() *cobra.Command {
	var (
		checkpoint string
		fromBlock  uint64
		count      int
		types      []string
	)
	cmd := &cobra.Command{
		Use:   "watch [--checkpoint FILE] [--from-block N] [--type T]... [--count N]",
		Short: "Print chaincode events as they commit (one JSON object per line with -o json)",
		Long: `Prints each transaction's event as it commits. With --checkpoint FILE, the position is saved after
each printed event and a later watch with the same file resumes right after it: nothing missed,
nothing printed twice. Reconnects by itself when the peer goes away. Stops on Ctrl-C or after --count events.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if count < 0 {
				return usageErrorf("invalid --count %d: use 0 (no limit) or more", count)
			}
			if checkpoint != "" {
				if dir := filepath.Dir(checkpoint); dir != "" {
					if err := dirExists(dir); err != nil {
						return fmt.Errorf("invalid --checkpoint: %w", err)
					}
				}
			}
			want := map[string]bool{}
			for _, t := range types {
				if strings.TrimSpace(t) == "" {
					return usageErrorf("--type must not be empty (e.g. --type device.status)")
				}
				want[t] = true
			}
			var opts client.EventOptions
			if checkpoint != "" {
				cp, err := client.NewFileCheckpointer(checkpoint)
				if err != nil {
					return err
				}
				opts.Checkpoint = cp
			}
			if cmd.Flags().Changed("from-block") {
				opts.StartBlock = &fromBlock
			}
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				ctx, cancel := context.WithCancel(ctx)
				defer cancel()
				events, err := lg.Events(ctx, opts)
				if err != nil {
					return err
				}
				_, _ = fmt.Fprintln(cmd.ErrOrStderr(), "watching events (Ctrl-C to stop)")
				seen := 0
				out := cmd.OutOrStdout()
				for ev := range events {
					if len(want) == 0 || want[ev.Event.Type] {
						if err := l.printEvent(out, ev); err != nil {
							return err
						}
						seen++
					}
					if err := ev.Checkpoint(); err != nil {
						return fmt.Errorf("saving the checkpoint: %w", err)
					}
					if count > 0 && seen >= count {
						return nil
					}
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&checkpoint, "checkpoint", "", "file that keeps the position between runs")
	f.Uint64Var(&fromBlock, "from-block", 0, "first block to read when there is no checkpoint (default: from now)")
	f.IntVar(&count, "count", 0, "stop after this many printed events")
	f.StringArrayVar(&types, "type", nil, "only events of this type, e.g. device.status (repeatable)")
	return cmd
}

func (l *ledgerCmd) printEvent(w io.Writer, ev client.ChaincodeEvent) error {
	if l.g.json() {
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	e := ev.Event
	var detail []string
	if len(e.Devices) > 0 {
		detail = append(detail, "devices="+strings.Join(e.Devices, ","))
	}
	if e.Batch != nil {
		detail = append(detail, fmt.Sprintf("batch=%d root=%s", e.Batch.Size, shortID(e.Batch.Root.String())))
	}
	for _, a := range e.Alerts {
		detail = append(detail, fmt.Sprintf("ALERT[%s] %s seq %d: %s (rule %s)", a.Severity, a.Device, a.Seq, a.Message, a.Rule))
	}
	for _, c := range e.Commands {
		detail = append(detail, fmt.Sprintf("command %s→%s (%s)", c.Name, c.Device, c.Status))
	}
	for _, s := range e.StatusChanges {
		detail = append(detail, fmt.Sprintf("%s %s→%s", s.Device, s.From, s.To))
	}
	if len(e.Revocations) > 0 {
		detail = append(detail, "revoked="+strings.Join(e.Revocations, ","))
	}
	if e.PolicyID != "" {
		detail = append(detail, "policy="+e.PolicyID)
	}
	if e.RuleID != "" {
		detail = append(detail, "rule="+e.RuleID)
	}
	_, err := fmt.Fprintf(w, "%s  block %d  %-18s %s  %s  %s\n", when(e.Timestamp), ev.BlockNumber, e.Type, e.MSPID, shortID(ev.TxID), strings.Join(detail, "  "))
	return err
}
