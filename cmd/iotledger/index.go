package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/index"
	"github.com/iotledger/iotledger/index/store"
	"github.com/iotledger/iotledger/network"
	"github.com/iotledger/iotledger/receipt"
)

// defaultIndexURL is an org's index in the network state directory.
func defaultIndexURL(f ledgerFlags) string {
	return "sqlite:" + filepath.Join(f.stateDir, strings.ToLower(f.org), "index.db")
}

func newIndexCmd(g *globalOptions) *cobra.Command {
	l := newLedgerCmd(g, nil)
	var db string
	var af anchorFlags
	cmd := &cobra.Command{
		Use:   "index [--db sqlite:FILE | --db postgres://...] [--anchor anchor.json]",
		Short: "Follow the channel into this org's index (SQLite or PostgreSQL), verifying every block first",
		Long: `Follows the channel's blocks from the org's peer into a database that serves reads: readings,
batches, alerts, commands, status changes and the audit trail of every transaction. Each block is
verified before it is applied — it must chain to the genesis block the trust anchor names, carry the
orderers' signatures, and every transaction the peer marked VALID must be endorsed as the channel and
the keys' own policies require — so the index trusts no peer and no other org. A block is applied
with the checkpoint in one database transaction: after a crash the index resumes without gaps or
duplicates.

The trust anchor is --anchor (or --channel/--genesis); by default the genesis block of the network
in --state-dir. The database is --db: "sqlite:PATH" (default <state-dir>/<org>/index.db) or a
PostgreSQL URL.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := l.lf.validate(); err != nil {
				return err
			}
			if db == "" {
				db = defaultIndexURL(l.lf)
			}
			p, err := l.lf.loadProfile()
			if err != nil {
				return err
			}
			if p.Format() == client.FormatCCP && af == (anchorFlags{}) && !cmd.Flags().Changed("state-dir") {
				return errors.New("a common connection profile names no trust anchor (and --state-dir no local network): give --anchor FILE, from `iotledger receipt anchor` asked of a member you trust")
			}
			anchor, err := indexAnchor(cmd, &af, l.lf.stateDir)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := l.logger(cmd)
			c, err := client.Connect(ctx, p, l.lf.identity, client.WithLogger(log))
			if err != nil {
				return err
			}
			defer func() { _ = c.Close() }()
			st, err := openIndex(ctx, db)
			if err != nil {
				return err
			}
			defer func() { _ = st.Close() }()
			f := index.NewFollower(st, c, anchor, p.Chaincode, log).WithPrivate(c, p.MSPID)
			f.OnApplied(func(b *index.Block) {
				n := 0
				for _, t := range b.Transactions {
					n += len(t.Readings)
				}
				log.Debug("block indexed", "block", b.Number, "transactions", len(b.Transactions), "readings", n)
			})
			log.Info("indexing", "org", p.Org, "db", db, "channel", anchor.Channel)
			err = f.Run(ctx)
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	l.lf.register(cmd)
	cmd.Flags().StringVar(&db, "db", "", `index database: "sqlite:PATH" or "postgres://..." (default sqlite:<state-dir>/<org>/index.db)`)
	af.register(cmd)
	return cmd
}

// indexAnchor is the anchor an index verifies with: given, or the genesis
// block of the local network.
func indexAnchor(cmd *cobra.Command, af *anchorFlags, stateDir string) (receipt.Anchor, error) {
	if af.file != "" || af.channel != "" || af.genesis != "" {
		return af.load(cmd)
	}
	a, err := localAnchor(stateDir)
	if err != nil {
		return receipt.Anchor{}, fmt.Errorf("no trust anchor: give --anchor FILE (from `iotledger receipt anchor`, asked of a member you trust), or --state-dir of the network whose genesis block to trust: %w", err)
	}
	return a, nil
}

// localAnchor is the anchor of the network in stateDir, computed from the
// genesis block file it was made with.
func localAnchor(stateDir string) (receipt.Anchor, error) {
	n, err := network.Load(stateDir)
	if err != nil {
		return receipt.Anchor{}, err
	}
	return receipt.AnchorOfFile(n.GenesisBlockPath())
}

func openIndex(ctx context.Context, url string) (index.Store, error) {
	st, err := store.Open(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("index database %s: %w", url, err)
	}
	return st, nil
}

// indexURL is the --index database: "default" is the org's SQLite index in
// the state directory.
func (l *ledgerCmd) indexURL() string {
	if l.index == "" || l.index == "default" {
		return defaultIndexURL(l.lf)
	}
	return l.index
}

// openReadIndex opens the org's index for reading; a SQLite index that does
// not exist yet is reported, not created empty.
func (l *ledgerCmd) openReadIndex(ctx context.Context) (index.Store, error) {
	url := l.indexURL()
	if path, ok := strings.CutPrefix(url, "sqlite:"); ok {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, &hintError{msg: fmt.Sprintf("no index at %s: the ledger keeps no readings, an org's index serves them — start it with `iotledger index --org %s` (it follows the channel, verifying every block), or give --index", path, l.lf.org)}
		}
	}
	return openIndex(ctx, url)
}

// withIndex runs fn on the org's index (no ledger connection).
func (l *ledgerCmd) withIndex(cmd *cobra.Command, fn func(ctx context.Context, st index.Store) error) error {
	if err := l.lf.validate(); err != nil {
		return err
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	st, err := l.openReadIndex(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	return fn(ctx, st)
}

// indexMiss turns the index's not-found into a hint.
func indexMiss(err error, device string, seq uint64) error {
	if errors.Is(err, index.ErrNotFound) {
		return &hintError{msg: fmt.Sprintf("the index has no reading %d of device %q (not committed, or the index is behind: is `iotledger index` running?); list the device's readings with `iotledger telemetry list %s`", seq, device, device), err: err}
	}
	return err
}
