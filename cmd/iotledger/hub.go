package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

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
	noEvents                bool
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
--flush-timeout) before exiting; anything left is submitted on the next start.`,
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
	f.StringVar(&o.data, "data", "", "data directory for the outbox and event checkpoint (default <state-dir>/hubs/<hub-id>)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate of the MQTT listener (PEM; default: the profile's hubTLS, issued by `network up`)")
	f.StringVar(&o.tlsKey, "tls-key", "", "private key of --tls-cert (PEM)")
	f.BoolVar(&o.plaintext, "insecure-plaintext", false, "serve MQTT without TLS (loopback addresses only, unless --allow-plaintext-on-network)")
	f.BoolVar(&o.plaintextOnNetwork, "allow-plaintext-on-network", false, "with --insecure-plaintext: allow an --mqtt address other than loopback")
	f.IntVar(&o.batchSize, "batch-size", 100, "readings per ledger transaction")
	f.DurationVar(&o.batchWait, "batch-wait", 200*time.Millisecond, "longest a reading waits for its batch to fill")
	f.IntVar(&o.submitters, "submitters", hub.DefaultSubmitters, "concurrent batch submissions")
	f.BoolVar(&o.pprof, "pprof", false, "serve Go profiles (net/http/pprof) under /debug/pprof/ on the --http listener")
	f.DurationVar(&o.flush, "flush-timeout", 30*time.Second, "how long shutdown waits for the outbox to drain")
	f.DurationVar(&o.skew, "clock-skew", 5*time.Minute, "accepted difference between a device's token time and the hub clock")
	f.BoolVar(&o.noEvents, "no-events", false, "do not follow chaincode events (no command delivery, no live revocation)")
	f.IntVar(&o.limits.MaxConnections, "max-connections", o.limits.MaxConnections, "open MQTT sockets, CONNECT or not (-1: no cap)")
	f.IntVar(&o.limits.MaxConnectionsPerAddr, "max-connections-per-address", o.limits.MaxConnectionsPerAddr, "open MQTT sockets per IPv4 address or IPv6 /64 (-1: no cap)")
	f.DurationVar(&o.limits.ConnectTimeout, "connect-timeout", o.limits.ConnectTimeout, "a socket must deliver its CONNECT within this (-1s: no deadline)")
	f.Float64Var(&o.limits.PublishRate, "device-publish-rate", o.limits.PublishRate, "messages per second per device: readings, acks, inbox (-1: no limit)")
	return cmd
}

func (o *hubOptions) validate() error {
	switch {
	case o.hubID == "":
		return errors.New("--hub-id is required: devices sign it into their connect token (e.g. --hub-id hub1)")
	case reading.ValidateID("hub-id", o.hubID) != nil:
		return fmt.Errorf("invalid --hub-id: %w", reading.ValidateID("hub-id", o.hubID))
	case o.batchSize < 1 || o.batchSize > 1000:
		return fmt.Errorf("invalid --batch-size %d: use 1-1000", o.batchSize)
	case o.batchWait <= 0:
		return fmt.Errorf("invalid --batch-wait %s: must be positive", o.batchWait)
	case o.submitters < 1 || o.submitters > 64:
		return fmt.Errorf("invalid --submitters %d: use 1-64", o.submitters)
	case o.flush <= 0:
		return fmt.Errorf("invalid --flush-timeout %s: must be positive", o.flush)
	case o.skew <= 0:
		return fmt.Errorf("invalid --clock-skew %s: must be positive", o.skew)
	case o.limits.MaxConnections == 0, o.limits.MaxConnectionsPerAddr == 0, o.limits.ConnectTimeout == 0, o.limits.PublishRate == 0:
		return errors.New("--max-connections, --max-connections-per-address, --connect-timeout, --device-publish-rate: 0 is no bound; -1 turns one off")
	case (o.tlsCert == "") != (o.tlsKey == ""):
		return errors.New("--tls-cert and --tls-key go together")
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
	data := o.data
	if data == "" {
		data = filepath.Join(l.lf.stateDir, "hubs", o.hubID)
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return fmt.Errorf("--data: %w", err)
	}
	c, err := client.Connect(ctx, p, l.lf.identity, client.WithLogger(log))
	if err != nil {
		return l.explain(err)
	}
	defer func() { _ = c.Close() }()
	cfg := hub.Config{
		HubID: o.hubID, MQTTAddr: o.mqtt, TLS: tlsCfg, HTTPAddr: o.http, DataDir: data,
		BatchSize: o.batchSize, BatchWait: o.batchWait, Submitters: o.submitters,
		Pprof: o.pprof, ClockSkew: o.skew, FlushTimeout: o.flush, Ledger: c, Logger: log,
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
