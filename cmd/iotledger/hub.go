package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/client/hub"
	"github.com/iotledger/iotledger/client/hub/wire"
)

// The SDK client is the hub's ledger, private batches included.
var _ hub.PrivateLedger = (*client.Client)(nil)

// hubLedger is the SDK surface the hub uses, plus the event stream.
type hubLedger interface {
	hub.Ledger
	Events(ctx context.Context, opts client.EventOptions) (<-chan client.ChaincodeEvent, error)
	Close() error
}

// Satisfied at compile time: the SDK client is what the hub runs on, and
// its event feed is where the hub's commands and revocations come from.
var (
	_ hubLedger       = (*client.Client)(nil)
	_ hub.EventSource = client.EventFeed{}
)

type hubOptions struct {
	mqtt, http, data, hubID string
	tlsCert, tlsKey         string
	plaintext               bool // --insecure-plaintext
	plaintextOnNetwork      bool // --allow-plaintext-on-network
	batchSize, submitters   int
	pprof                   bool
	batchWait, flush, skew  time.Duration
	staleIfError            time.Duration
	noEvents                bool
	parallel                string // --parallel-endorsement
	limits                  hub.Limits
}

func newHubCmd(g *globalOptions) *cobra.Command {
	l := newLedgerCmd(g, nil)
	o := hubOptions{limits: hub.DefaultLimits()}
	cmd := &cobra.Command{
		Use:   "hub --hub-id NAME [--mqtt 127.0.0.1:1883] [--http 127.0.0.1:9100] [--data DIR]",
		Short: "Run an IoT hub: MQTT broker for devices, durable outbox, batched submission to the ledger",
		Long: `Runs the IoT hub: an embedded MQTT 3.1.1/5 broker where devices authenticate with a token signed by
their enrolled key (see docs/protocol.md), a topic ACL backed by the ledger, a durable outbox written
before each PUBACK, and a batcher that submits readings to the ledger exactly once, even after a crash.
Commands and revocations arrive as chaincode events and take effect at once.

Metrics are on http://<--http>/metrics, health on /healthz. SIGTERM or Ctrl-C drains the outbox (up to
--flush-timeout) before exiting; anything left is submitted on the next start.

The outbox (--data) lives outside the network state directory by default, in
$XDG_STATE_HOME/iotledger/hubs/<org>-<hub-id> (~/.local/state/... when XDG_STATE_HOME is unset), so
that ` + "`network down`" + ` never takes acknowledged readings with it. It belongs to the ledger it first
drained into (channel and genesis block hash): on another ledger the hub refuses to start. Readings
the ledger refuses because it does not know their device are parked, not dropped: see
` + "`iotledger hub parked`" + `.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			if err := l.lf.validate(); err != nil {
				return err
			}
			return runHub(cmd, l, o)
		},
	}
	l.lf.register(cmd)
	// A hub runs as its org's hub identity, whose key signs what it delivers
	// (wire.LoadHubSigner), and says so in --help.
	identity := cmd.PersistentFlags().Lookup("identity")
	identity.DefValue = "hub"
	_ = identity.Value.Set("hub")
	f := cmd.Flags()
	f.StringVar(&o.hubID, "hub-id", "", "this hub's id; devices sign it into their connect token (required)")
	f.StringVar(&o.mqtt, "mqtt", "127.0.0.1:1883", "MQTT listen address")
	f.StringVar(&o.http, "http", "127.0.0.1:9100", `metrics and health listen address ("" disables)`)
	f.StringVar(&o.data, "data", "", "data directory for the outbox and event checkpoint (default $XDG_STATE_HOME/iotledger/hubs/<org>-<hub-id>, outside the network state directory)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate of the MQTT listener (PEM; default: the profile's hubTLS, issued by `network up`)")
	f.StringVar(&o.tlsKey, "tls-key", "", "private key of --tls-cert (PEM)")
	f.BoolVar(&o.plaintext, "insecure-plaintext", false, "serve MQTT without TLS (loopback addresses only, unless --allow-plaintext-on-network)")
	f.BoolVar(&o.plaintextOnNetwork, "allow-plaintext-on-network", false, "with --insecure-plaintext: allow an --mqtt address other than loopback")
	f.IntVar(&o.batchSize, "batch-size", api.DefaultBatchReadings, fmt.Sprintf("readings per ledger transaction (1-%d)", api.MaxBatchReadings))
	f.DurationVar(&o.batchWait, "batch-wait", 200*time.Millisecond, "longest a reading waits for its batch to fill")
	f.IntVar(&o.submitters, "submitters", hub.DefaultSubmitters, "concurrent batch submissions")
	f.BoolVar(&o.pprof, "pprof", false, "serve Go profiles (net/http/pprof) under /debug/pprof/ on the --http listener")
	f.DurationVar(&o.flush, "flush-timeout", 30*time.Second, "how long shutdown waits for the outbox to drain")
	f.DurationVar(&o.skew, "clock-skew", 5*time.Minute, "accepted difference between a device's token time and the hub clock")
	f.DurationVar(&o.staleIfError, "stale-if-error", hub.DefaultStaleIfError, "while the ledger does not answer, accept known, active devices from records read up to this long ago (-1s: never)")
	f.StringVar(&o.parallel, "parallel-endorsement", "", `have every org's peer endorse a batch at once instead of the gateway's own org first and the others after it: "all" (every org of the channel) or MSP IDs, comma-separated, that satisfy the endorsement policy; if they do not, or one has no peer up, the hub falls back to the gateway's plan for a minute (default: the gateway's plan)`)
	f.BoolVar(&o.noEvents, "no-events", false, "do not follow chaincode events (no command delivery, no live revocation)")
	f.IntVar(&o.limits.MaxConnections, "max-connections", o.limits.MaxConnections, "open MQTT sockets, CONNECT or not (-1: no cap)")
	f.IntVar(&o.limits.MaxConnectionsPerAddr, "max-connections-per-address", o.limits.MaxConnectionsPerAddr, "open MQTT sockets per IPv4 address or IPv6 /64 (-1: no cap)")
	f.DurationVar(&o.limits.ConnectTimeout, "connect-timeout", o.limits.ConnectTimeout, "a socket must deliver its CONNECT within this (-1s: no deadline)")
	f.Float64Var(&o.limits.PublishRate, "device-publish-rate", o.limits.PublishRate, "messages per second per device: readings, acks, inbox (-1: no limit)")
	cmd.AddCommand(newHubParkedCmd(g, l))
	return cmd
}

// parallelOrgs is what --parallel-endorsement asks for: whether to
// endorse in parallel, and at which orgs (none: the channel's).
func (o *hubOptions) parallelOrgs() ([]string, bool) {
	switch o.parallel {
	case "":
		return nil, false
	case "all":
		return nil, true
	}
	return strings.Split(o.parallel, ","), true
}

// validParallel checks --parallel-endorsement: "all", or MSP IDs.
func (o *hubOptions) validParallel() error {
	orgs, ok := o.parallelOrgs()
	if !ok || orgs == nil {
		return nil
	}
	seen := map[string]bool{}
	for _, m := range orgs {
		if err := reading.ValidateID("MSP ID", m); err != nil {
			return usageErrorf("invalid --parallel-endorsement %q: %w (give \"all\" or MSP IDs separated by commas, e.g. Org1MSP,Org2MSP)", o.parallel, err)
		}
		if seen[m] {
			return usageErrorf("invalid --parallel-endorsement %q: %s is named twice", o.parallel, m)
		}
		seen[m] = true
	}
	return nil
}

func (o *hubOptions) validate() error {
	if err := o.validParallel(); err != nil {
		return err
	}
	switch {
	case o.hubID == "":
		return usageErrorf("--hub-id is required: devices sign it into their connect token (e.g. --hub-id hub1)")
	case reading.ValidateID("hub-id", o.hubID) != nil:
		return usageErrorf("invalid --hub-id: %w", reading.ValidateID("hub-id", o.hubID))
	case o.batchSize < 1 || o.batchSize > api.MaxBatchReadings:
		return usageErrorf("invalid --batch-size %d: use 1-%d (the chaincode takes at most %d readings per transaction)", o.batchSize, api.MaxBatchReadings, api.MaxBatchReadings)
	case o.batchWait <= 0:
		return usageErrorf("invalid --batch-wait %s: must be positive", o.batchWait)
	case o.submitters < 1 || o.submitters > 64:
		return usageErrorf("invalid --submitters %d: use 1-64", o.submitters)
	case o.flush <= 0:
		return usageErrorf("invalid --flush-timeout %s: must be positive", o.flush)
	case o.skew <= 0:
		return usageErrorf("invalid --clock-skew %s: must be positive", o.skew)
	case o.staleIfError == 0:
		return usageErrorf("invalid --stale-if-error 0: give a duration, or a negative one (-1s) to refuse every device while the ledger does not answer")
	case o.limits.MaxConnections == 0, o.limits.MaxConnectionsPerAddr == 0, o.limits.ConnectTimeout == 0, o.limits.PublishRate == 0:
		return usageErrorf("--max-connections, --max-connections-per-address, --connect-timeout, --device-publish-rate: 0 is no bound; -1 turns one off")
	case (o.tlsCert == "") != (o.tlsKey == ""):
		return usageErrorf("--tls-cert and --tls-key go together")
	}
	return o.validateTransport()
}

func runHub(cmd *cobra.Command, l *ledgerCmd, o hubOptions) error {
	ctx := cmd.Context()
	log := l.logger(cmd)
	if o.plaintext {
		warnPlaintext(cmd.ErrOrStderr(), log, o.mqtt)
	}
	p, err := l.lf.loadProfile()
	if err != nil {
		return err
	}
	tlsCfg, transport, err := o.serverTLS(p)
	if err != nil {
		return err
	}
	id, err := p.Identity(l.lf.identity)
	if err != nil {
		return fmt.Errorf("--identity: %w", err)
	}
	signer, err := wire.LoadHubSigner(id.Cert, id.Key)
	if err != nil {
		return fmt.Errorf("--identity %s: %w", l.lf.identity, err)
	}
	data, err := o.dataDir(l.lf, p)
	if err != nil {
		return err
	}
	if o.data != "" && l.lf.profile == "" && within(l.lf.stateDir, data) {
		fmt.Fprintf(cmd.ErrOrStderr(), "WARNING: --data %s is inside the network state directory %s: `iotledger network down` deletes it, and the readings in the hub's outbox with it\n", data, l.lf.stateDir)
		log.Warn("the hub's data dir is inside the network state directory, which `network down` deletes", "data", data, "state_dir", l.lf.stateDir)
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return fmt.Errorf("--data: %w", err)
	}
	copts := []client.Option{client.WithLogger(log)}
	if orgs, ok := o.parallelOrgs(); ok {
		copts = append(copts, client.WithParallelEndorsement(orgs...))
	}
	c, err := client.Connect(ctx, p, l.lf.identity, copts...)
	if err != nil {
		return l.explain(err)
	}
	defer func() { _ = c.Close() }()
	cfg := hub.Config{
		HubID: o.hubID, MQTTAddr: o.mqtt, TLS: tlsCfg, HTTPAddr: o.http, DataDir: data,
		BatchSize: o.batchSize, BatchWait: o.batchWait, Submitters: o.submitters,
		Pprof: o.pprof, ClockSkew: o.skew, StaleIfError: o.staleIfError, FlushTimeout: o.flush, Ledger: c, Logger: log,
	}
	cfg.Signer = signer
	cfg.Limits = o.limits
	if !o.noEvents {
		cp, err := client.NewFileCheckpointer(filepath.Join(data, "events.checkpoint"))
		if err != nil {
			return fmt.Errorf("event checkpoint: %w", err)
		}
		cfg.Events = client.EventFeed{Client: c, Checkpoint: cp}
	}
	h, err := hub.New(cfg)
	if err != nil {
		return err
	}
	if err := h.Start(ctx); err != nil {
		_ = h.Close()
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "hub %s of %s: mqtt %s (%s), http %s, data %s\n", o.hubID, c.MSPID(), h.MQTTAddr(), transport, orDash(h.HTTPAddr()), data)
	<-ctx.Done()
	fmt.Fprintln(cmd.ErrOrStderr(), "stopping: draining the outbox...")
	return h.Close()
}

// defaultHubData is the data directory of a hub without --data: a per-user
// state directory, $XDG_STATE_HOME/iotledger/hubs/<org>-<hub-id>
// (~/.local/state when XDG_STATE_HOME is unset or relative, as the XDG base
// directory specification says; %LocalAppData% on Windows). It is outside
// every network state directory, which `network down` deletes, so that a
// hub's acknowledged readings outlive the network's local state; the outbox
// records which ledger it belongs to, and a hub refuses to drain it into
// another one. The org is in the name so that two orgs' hubs of the same id
// on one machine do not share an outbox.
func defaultHubData(org, hubID string) (string, error) {
	base := os.Getenv("XDG_STATE_HOME")
	if !filepath.IsAbs(base) {
		switch home, err := os.UserHomeDir(); {
		case runtime.GOOS == "windows":
			if base, err = os.UserCacheDir(); err != nil {
				return "", fmt.Errorf("no per-user state directory for the hub's data (%w): pass --data", err)
			}
		case err != nil:
			return "", fmt.Errorf("no home directory for the hub's data (%w): pass --data or set XDG_STATE_HOME", err)
		default:
			base = filepath.Join(home, ".local", "state")
		}
	}
	return filepath.Join(base, "iotledger", "hubs", strings.ToLower(org)+"-"+hubID), nil
}

// dataDir is --data, or the default data directory, which must not be
// inside the network state directory (it is when IOTLEDGER_STATE_DIR or
// --state-dir points above the per-user state directory).
func (o *hubOptions) dataDir(lf ledgerFlags, p *client.Profile) (string, error) {
	if o.data != "" {
		return o.data, nil
	}
	data, err := defaultHubData(hubOrg(lf, p), o.hubID)
	if err != nil {
		return "", err
	}
	if lf.profile == "" && within(lf.stateDir, data) {
		return "", fmt.Errorf("the hub's default data directory %s is inside the network state directory %s, which `iotledger network down` deletes: pass --data (a directory outside it)", data, lf.stateDir)
	}
	return data, nil
}

// within reports whether path is dir or inside it.
func within(dir, path string) bool {
	d, err1 := filepath.Abs(dir)
	p, err2 := filepath.Abs(path)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// hubOrg is the org a hub's default data directory is named after: the
// profile's, else --org.
func hubOrg(lf ledgerFlags, p *client.Profile) string {
	if p != nil && p.Org != "" {
		return p.Org
	}
	return lf.org
}

// parkedOptions are the flags of `hub parked`.
type parkedOptions struct {
	data, hubID string
	devices     []string
	all         bool
}

// newHubParkedCmd is `hub parked list|retry|drop`: what an operator does
// with the readings a hub parked because the ledger did not know their
// device, on the outbox file itself, with the hub stopped.
func newHubParkedCmd(g *globalOptions, l *ledgerCmd) *cobra.Command {
	o := &parkedOptions{}
	cmd := &cobra.Command{
		Use:   "parked",
		Short: "List, retry or drop the readings a hub parked because the ledger did not know their device (hub stopped)",
		Long: `A hub parks an accepted reading, instead of dropping it, when the ledger refuses it as NOT_FOUND: the
ledger does not know its device, although the hub looked the device up before it accepted the reading.
The hub is connected to another network than the one it accepted the reading for, or the device's
record went away. A running hub submits a device's parked readings again once the ledger knows the
device and it is active; /healthz is unhealthy while any are parked.

These verbs work on the outbox file while the hub is stopped (a running hub holds its lock):
  list    the parked readings, by device
  retry   put them back in the outbox; the hub submits them when it starts
  drop    delete them (--device or --all); they are not submitted, ever

The outbox is --data, or the default data directory of --hub-id and --org.`,
		Args: cobra.NoArgs,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.data, "data", "", "the hub's data directory (default: that of --hub-id and --org, as `iotledger hub` uses)")
	pf.StringVar(&o.hubID, "hub-id", "", "the hub's id, to find its default data directory")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the parked readings, by device",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.withOutbox(l, func(ob *hub.Outbox, dir string) error {
				recs, err := ob.ParkedRecords()
				if err != nil {
					return err
				}
				groups := parkedByDevice(recs)
				if !g.json() && len(groups) == 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "no parked readings in %s\n", dir)
					return nil
				}
				return l.render(cmd.OutOrStdout(), groups, func(tw *tabwriter.Writer) {
					row(tw, "DEVICE", "READINGS", "SEQS", "REASON", "PARKED SINCE", "LEDGER SAID")
					for _, p := range groups {
						row(tw, p.Device, p.Readings, fmt.Sprintf("%d-%d", p.FirstSeq, p.LastSeq), p.Reason, when(p.Since), p.Error)
					}
				})
			})
		},
	}
	retry := &cobra.Command{
		Use:   "retry [--device ID]...",
		Short: "Put parked readings back in the outbox (all, or those of --device); the hub submits them when it starts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.withOutbox(l, func(ob *hub.Outbox, dir string) error {
				n, err := ob.Unpark(o.devices...)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%d parked readings back in the outbox of %s; the hub submits them when it starts (readings the ledger still does not know the device of are parked again)\n", n, dir)
				return nil
			})
		},
	}
	retry.Flags().StringSliceVar(&o.devices, "device", nil, "only this device's readings (repeatable)")
	drop := &cobra.Command{
		Use:   "drop (--device ID... | --all)",
		Short: "Delete parked readings (those of --device, or --all): they are never submitted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(o.devices) == 0 && !o.all {
				return usageErrorf("say which parked readings to delete: --device ID (repeatable) or --all; `iotledger hub parked list` shows them")
			}
			if len(o.devices) > 0 && o.all {
				return usageErrorf("--device and --all go separately")
			}
			return o.withOutbox(l, func(ob *hub.Outbox, dir string) error {
				n, err := ob.DropParked(o.devices...)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted %d parked readings from the outbox of %s\n", n, dir)
				return nil
			})
		},
	}
	drop.Flags().StringSliceVar(&o.devices, "device", nil, "this device's readings (repeatable)")
	drop.Flags().BoolVar(&o.all, "all", false, "every parked reading")
	cmd.AddCommand(list, retry, drop)
	return cmd
}

// dataDir is the outbox directory the parked verbs work on.
func (o *parkedOptions) dataDir(l *ledgerCmd) (string, error) {
	if o.data != "" {
		return o.data, nil
	}
	if o.hubID == "" {
		return "", usageErrorf("say which hub: --data DIR, or --hub-id NAME (and --org) for its default data directory")
	}
	if err := reading.ValidateID("hub-id", o.hubID); err != nil {
		return "", usageErrorf("invalid --hub-id: %w", err)
	}
	var p *client.Profile
	if l.lf.profile != "" {
		var err error
		if p, err = l.lf.loadProfile(); err != nil {
			return "", err
		}
	}
	return defaultHubData(hubOrg(l.lf, p), o.hubID)
}

// withOutbox opens the hub's outbox (it must exist) for fn.
func (o *parkedOptions) withOutbox(l *ledgerCmd, fn func(ob *hub.Outbox, dir string) error) error {
	dir, err := o.dataDir(l)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "outbox.db")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no hub outbox at %s: check --data (or --hub-id and --org)", path)
	}
	ob, err := hub.OpenOutbox(path)
	if err != nil {
		return err
	}
	err = fn(ob, dir)
	if cerr := ob.Close(); err == nil {
		err = cerr
	}
	return err
}

// parkedDevice is one device's parked readings, as `hub parked list` shows them.
type parkedDevice struct {
	Device   string    `json:"device"`
	Readings int       `json:"readings"`
	FirstSeq uint64    `json:"firstSeq"`
	LastSeq  uint64    `json:"lastSeq"`
	Reason   string    `json:"reason"`
	Since    time.Time `json:"since"` // when the first of them was parked
	Error    string    `json:"error"` // what the ledger said, of the first
}

func parkedByDevice(recs []hub.ParkedRecord) []parkedDevice {
	index := map[string]int{}
	var out []parkedDevice
	for _, r := range recs {
		i, ok := index[r.Device]
		if !ok {
			i = len(out)
			index[r.Device] = i
			out = append(out, parkedDevice{Device: r.Device, FirstSeq: r.Seq, LastSeq: r.Seq, Reason: r.Reason, Since: r.ParkedAt().UTC(), Error: r.Error})
		}
		p := &out[i]
		p.Readings++
		p.FirstSeq, p.LastSeq = min(p.FirstSeq, r.Seq), max(p.LastSeq, r.Seq)
		if t := r.ParkedAt().UTC(); t.Before(p.Since) {
			p.Since = t
		}
	}
	slices.SortFunc(out, func(a, b parkedDevice) int { return strings.Compare(a.Device, b.Device) })
	return out
}
