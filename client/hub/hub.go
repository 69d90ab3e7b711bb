// Package hub is the iotledger IoT hub: an embedded MQTT broker whose
// devices authenticate with their ledger-enrolled keys, a topic ACL backed by
// the ledger's policies, a durable bbolt outbox written before the PUBACK,
// a batcher that submits readings to the ledger exactly once (even across
// crashes), and command delivery and revocation driven by chaincode events.
//
// The device-facing protocol is in package wire and docs/protocol.md.
package hub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/client/hub/wire"
	"github.com/iotledger/iotledger/receipt"
)

// maxPacketBytes is the largest MQTT packet the broker accepts: a maximal
// envelope plus topic and headers, with room to spare.
const maxPacketBytes = 64 * 1024

// DefaultSubmitters is the default number of concurrent SubmitBatch calls:
// enough 100-reading batches in flight to carry ≈ 1,000 readings/s at a
// commit latency of 3 s (submitters × batch size ÷ latency); measured in
// docs/performance.md ("Hub concurrency").
const DefaultSubmitters = 32

// DefaultStaleIfError is Config.StaleIfError's default. A cached record of
// a device that was active and writable by the hub, or a device:message
// allow, answers for the ledger for that long after it was read when the
// ledger does not answer: known devices keep connecting and sending through
// a ledger outage of half an hour; unknown and refused ones are not let in.
const DefaultStaleIfError = 30 * time.Minute

// Config configures a hub.
type Config struct {
	HubID    string      // names the hub in device auth tokens; unique per hub
	MQTTAddr string      // broker listen address, e.g. "127.0.0.1:1883" (":0" picks a port)
	TLS      *tls.Config // optional: serve MQTT over TLS
	HTTPAddr string      // metrics and health, e.g. "127.0.0.1:9100"; empty: none
	DataDir  string      // holds outbox.db
	// Listen opens the MQTT and HTTP listeners (default net.ListenConfig's
	// Listen); hosts mode opens them in the org's network namespace.
	Listen func(ctx context.Context, network, address string) (net.Listener, error)

	BatchSize  int           // readings per SubmitBatch (default and most: api.MaxBatchReadings, 500)
	BatchWait  time.Duration // longest a reading waits for a batch to fill (default 200ms)
	Submitters int           // concurrent SubmitBatch calls (default 32)
	Pprof      bool          // serve net/http/pprof under /debug/pprof/ on HTTPAddr (off by default)

	ClockSkew     time.Duration // accepted auth-token clock difference (default 5m)
	DeviceTTL     time.Duration // device cache lifetime without events (default 60s)
	AccessTTL     time.Duration // device:message decision cache lifetime (default 10s)
	StaleIfError  time.Duration // how long a cached device record or device:message allow answers when the ledger does not (default 30m; < 0: never; see directory)
	MaxNonces     int           // bound of the auth replay cache over all devices (default 100000; Limits.MaxNoncesPerDevice bounds each)
	FlushTimeout  time.Duration // how long Close waits for the outbox to drain (default 30s)
	LedgerTimeout time.Duration // per ledger call made while a device waits (default 10s)
	SeenRetention time.Duration // how long accepted (device, seq) pairs are refused at the door (default 24h)
	ParkedRecheck time.Duration // how often the devices of parked readings are looked up again (default 1m; parked.go)
	Limits        Limits        // bounds per socket, remote address and device (limits.go)

	Ledger Ledger
	Events EventSource // optional: without it commands and revocations are not pushed
	// Signer signs the commands and inbox messages the hub delivers (see
	// signing.go); without it they go unsigned, which devices that check
	// signatures refuse.
	Signer *wire.HubSigner
	// SubmitTrace, optional, is told the stages of every batch the hub
	// submits, besides the hub's own iotledger_hub_submit_stage_duration_seconds.
	SubmitTrace *client.SubmitTrace
	Logger      *slog.Logger
	Now         func() time.Time // clock (default time.Now)
}

// ConfigError says what is wrong with a Config.
type ConfigError struct{ Field, Reason string }

func (e *ConfigError) Error() string { return "hub config: " + e.Field + ": " + e.Reason }

func (c *Config) setDefaults() error {
	if c.HubID == "" {
		return &ConfigError{"HubID", "required (devices sign it into their connect token)"}
	}
	if c.DataDir == "" {
		return &ConfigError{"DataDir", "required"}
	}
	if c.Ledger == nil {
		return &ConfigError{"Ledger", "required"}
	}
	if c.MQTTAddr == "" {
		c.MQTTAddr = "127.0.0.1:1883"
	}
	if c.Listen == nil {
		c.Listen = (&net.ListenConfig{}).Listen
	}
	if c.BatchSize <= 0 {
		c.BatchSize = api.DefaultBatchReadings
	}
	if c.BatchSize > api.MaxBatchReadings {
		return &ConfigError{"BatchSize", fmt.Sprintf("%d: the chaincode takes at most %d readings per transaction", c.BatchSize, api.MaxBatchReadings)}
	}
	if c.BatchWait <= 0 {
		c.BatchWait = 200 * time.Millisecond
	}
	if c.Submitters <= 0 {
		c.Submitters = DefaultSubmitters
	}
	if c.ClockSkew <= 0 {
		c.ClockSkew = 5 * time.Minute
	}
	if c.DeviceTTL <= 0 {
		c.DeviceTTL = 60 * time.Second
	}
	if c.AccessTTL <= 0 {
		c.AccessTTL = 10 * time.Second
	}
	if c.StaleIfError == 0 {
		c.StaleIfError = DefaultStaleIfError
	}
	if c.MaxNonces <= 0 {
		c.MaxNonces = 100000
	}
	if err := c.Limits.setDefaults(); err != nil {
		return err
	}
	if c.FlushTimeout <= 0 {
		c.FlushTimeout = 30 * time.Second
	}
	if c.LedgerTimeout <= 0 {
		c.LedgerTimeout = 10 * time.Second
	}
	if c.SeenRetention <= 0 {
		c.SeenRetention = 24 * time.Hour
	}
	if c.ParkedRecheck <= 0 {
		c.ParkedRecheck = time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Hub is a running hub.
type Hub struct {
	cfg     Config
	log     *slog.Logger
	outbox  *Outbox
	dir     *directory
	limits  *limits
	metrics *metrics
	// submitTrace times the stages of the hub's submits (metrics, and
	// Config.SubmitTrace).
	submitTrace *client.SubmitTrace
	broker      *mqtt.Server
	http        *http.Server
	httpLn      net.Listener

	identity identityState // the ledger's identity, checked against the outbox's (identity.go)
	parkLog  parkLog       // devices whose parked readings were logged (parked.go)

	readingsReady chan struct{} // poked when a reading is appended
	acksReady     chan struct{} // poked when an ack is appended
	flushing      chan struct{} // closed when Close starts draining

	sessMu   sync.Mutex
	sessions map[string]*session // device id → connection

	cmdMu     sync.Mutex
	delivered map[string]*mqtt.Client // command id → the connection it was last sent on
	awaited   map[string]*time.Timer  // relayed messages not yet delivered (relay.go)
	// dropOnArrival: devices disconnected while still connecting (guarded by sessMu).
	dropOnArrival map[string]dropMark

	ctx    context.Context // lives until Close has drained
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed sync.Once
}

// session is one connected device.
// dropMark is a disconnect that found no session: the device was still
// connecting (events.go, disconnect).
type dropMark struct {
	status string
	at     time.Time
}

// dropOnArrivalWindow is how long such a mark waits for its session: more
// than a connection's authentication takes, less than a device takes to be
// reactivated and reconnect.
const dropOnArrivalWindow = 30 * time.Second

type session struct {
	client     *mqtt.Client
	subscribed bool // to its commands topic
	inbox      bool // to its inbox (relay.go)
}

// New opens the hub's outbox and prepares its broker; Start serves.
func New(cfg Config) (*Hub, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("hub data dir: %w", err)
	}
	ob, err := OpenOutbox(filepath.Join(cfg.DataDir, "outbox.db"))
	if err != nil {
		return nil, err
	}
	h := &Hub{
		cfg:           cfg,
		log:           cfg.Logger.With("hub", cfg.HubID),
		outbox:        ob,
		dir:           newDirectory(cfg, cfg.Logger.With("hub", cfg.HubID)),
		readingsReady: make(chan struct{}, 1),
		acksReady:     make(chan struct{}, 1),
		flushing:      make(chan struct{}),
		sessions:      map[string]*session{},
		delivered:     map[string]*mqtt.Client{},
	}
	h.identity.set(false, receipt.Anchor{}, errIdentityUnknown)
	if cfg.Signer == nil {
		h.log.Warn("no hub signer: commands and inbox messages are delivered unsigned, and devices that check signatures refuse them")
	}
	h.metrics = newMetrics(ob, func() float64 {
		h.sessMu.Lock()
		defer h.sessMu.Unlock()
		return float64(len(h.sessions))
	}, func() float64 {
		if verified, _, _ := h.identity.get(); verified {
			return 1
		}
		return 0
	})
	h.metrics.registry.MustRegister(h.dir.staleServed)
	h.submitTrace = h.newSubmitTrace()
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = maxPacketBytes // bounds what one device can make the hub buffer
	caps.MaximumSessionExpiryInterval = 0   // clean sessions only (conformance.go): MQTT 5 clients are told 0
	caps.WildcardSubAvailable = 0           // the ACL refuses wildcards anyway; MQTT 5 clients are told in CONNACK
	caps.SharedSubAvailable = 0
	caps.RetainAvailable = 0   // nothing is retained, not even a will (wills are refused)
	caps.TopicAliasMaximum = 0 // MQTT 5 clients are told 0; an alias is a protocol error
	h.broker = mqtt.New(&mqtt.Options{InlineClient: true, Capabilities: caps, Logger: slog.New(brokerLogHandler{h.log.With("component", "broker").Handler()}),
		SysTopicResendInterval: sysTopicInterval})
	h.limits = newLimits(h)
	if err := h.broker.AddHook(h.limits, nil); err != nil { // first: what it refuses never reaches brokerHook
		_ = ob.Close()
		return nil, fmt.Errorf("limits hook: %w", err)
	}
	if err := h.broker.AddHook(&brokerHook{h: h}, nil); err != nil {
		_ = ob.Close()
		return nil, fmt.Errorf("broker hook: %w", err)
	}
	return h, nil
}

// Start checks the ledger's identity against the outbox's, opens the
// listeners and starts the batcher, the ack worker and the event loop.
// Readings left in the outbox by an earlier run are recovered first
// (in-flight batches are re-checked against the ledger).
//
// A ledger other than the one the outbox belongs to is refused with a
// *LedgerMismatchError before anything listens, the outbox untouched: the
// operator decides (another network, or another data dir), not the hub. A
// ledger that does not answer does not stop the hub: it accepts readings
// into its outbox and submits nothing, neither readings nor acks, until
// the ledger's identity is verified (identity.go).
func (h *Hub) Start(ctx context.Context) error {
	var mismatch *LedgerMismatchError
	if err := h.checkLedger(ctx); errors.As(err, &mismatch) {
		_ = h.outbox.Close()
		return err
	} else if identityRefused(err) {
		h.log.Error("ledger identity unknown: "+identityRefusedAdvice, "err", err)
	} else if err != nil {
		h.log.Warn("ledger identity unknown: accepting readings, submitting none until it is verified", "err", err)
	}
	h.ctx, h.cancel = context.WithCancel(context.WithoutCancel(ctx))
	tcp, err := h.limits.listen(ctx, h.cfg.Listen, "mqtt", h.cfg.MQTTAddr, h.cfg.TLS) // counts sockets and bounds their CONNECT (limits.go)
	if err == nil {
		err = h.broker.AddListener(tcp)
	}
	if err != nil {
		h.cancel()
		_ = h.outbox.Close()
		return fmt.Errorf("mqtt listener %s: %w", h.cfg.MQTTAddr, err)
	}
	if h.cfg.HTTPAddr != "" {
		ln, err := h.cfg.Listen(ctx, "tcp", h.cfg.HTTPAddr)
		if err != nil {
			_ = h.broker.Close()
			h.cancel()
			_ = h.outbox.Close()
			return fmt.Errorf("http listener %s: %w", h.cfg.HTTPAddr, err)
		}
		h.httpLn = ln
		h.http = &http.Server{Handler: h.httpHandler(), ReadHeaderTimeout: 10 * time.Second}
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			if err := h.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				h.log.Error("http server stopped", "err", err)
			}
		}()
	}
	if err := h.broker.Serve(); err != nil {
		h.cancel()
		_ = h.outbox.Close()
		return fmt.Errorf("mqtt broker: %w", err)
	}
	if verified, _, _ := h.identity.get(); verified {
		h.startSubmitting()
	} else {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			h.awaitLedger(h.ctx)
		}()
	}
	h.wg.Add(2)
	go func() {
		defer h.wg.Done()
		h.pruneSeen(h.ctx)
	}()
	go func() {
		defer h.wg.Done()
		h.recheckParked(h.ctx)
	}()
	if h.cfg.Events != nil {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			h.runEvents(h.ctx)
		}()
	}
	_, anchor, _ := h.identity.get()
	h.log.Info("hub started", "mqtt", h.MQTTAddr(), "http", h.HTTPAddr(), "outbox", h.outbox.Depth(), "parked", h.outbox.Parked(),
		"channel", anchor.Channel, "genesis", anchor.Genesis)
	return nil
}

// startSubmitting starts what writes the outbox to the ledger: the batcher
// and the ack worker. It runs once the ledger's identity is verified.
func (h *Hub) startSubmitting() {
	if h.ctx.Err() != nil {
		return
	}
	h.startBatcher()
	h.startAckWorker()
}

// MQTTAddr is the broker's listen address (after Start).
func (h *Hub) MQTTAddr() string {
	if l, ok := h.broker.Listeners.Get("mqtt"); ok {
		return l.Address()
	}
	return h.cfg.MQTTAddr
}

// HTTPAddr is the metrics/health listen address (after Start), or "".
func (h *Hub) HTTPAddr() string {
	if h.httpLn == nil {
		return ""
	}
	return h.httpLn.Addr().String()
}

// Outbox exposes the hub's outbox (depth, pending records) to tests and tools.
func (h *Hub) Outbox() *Outbox { return h.outbox }

// Close stops accepting devices, waits up to FlushTimeout for the outbox to
// drain to the ledger, then stops everything. What is left stays in the
// outbox for the next start.
func (h *Hub) Close() error {
	var err error
	h.closed.Do(func() {
		if h.ctx == nil { // never started
			err = h.outbox.Close()
			return
		}
		h.closeBroker()
		close(h.flushing)
		deadline := time.NewTimer(h.cfg.FlushTimeout)
		tick := time.NewTicker(50 * time.Millisecond)
		// Nothing drains before the ledger's identity is verified.
		verified, _, _ := h.identity.get()
	drain:
		for verified && (h.outbox.Depth() > 0 || h.outbox.PendingAcks() > 0) {
			select {
			case <-deadline.C:
				h.log.Warn("flush timed out; the rest stays in the outbox", "depth", h.outbox.Depth(), "acks", h.outbox.PendingAcks())
				break drain
			case <-tick.C:
			}
		}
		deadline.Stop()
		tick.Stop()
		h.cancel()
		if h.http != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = h.http.Shutdown(sctx)
			cancel()
		}
		h.wg.Wait()
		err = h.outbox.Close()
		h.log.Info("hub stopped")
	})
	return err
}

// closeBroker stops the MQTT broker. It first stops accepting sockets and
// disconnects every device, and waits (up to 5 s) until the broker has
// forgotten them: the broker's Close lists the clients under a read lock
// that it takes twice, which deadlocks against a client being removed at
// that moment (a disconnecting device), so no removal may be under way.
func (h *Hub) closeBroker() {
	h.limits.closeListeners()
	stop := errors.New("hub shutting down")
	deadline := time.Now().Add(5 * time.Second)
	for h.brokerClients() > 0 && time.Now().Before(deadline) {
		for _, cl := range h.broker.Clients.GetAll() {
			if !cl.Net.Inline {
				cl.Stop(stop)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = h.broker.Close()
}

// brokerClients counts the broker's clients other than its own inline one.
func (h *Hub) brokerClients() int {
	n := 0
	for _, cl := range h.broker.Clients.GetAll() {
		if !cl.Net.Inline {
			n++
		}
	}
	return n
}

// Run starts the hub and closes it when ctx ends.
func (h *Hub) Run(ctx context.Context) error {
	if err := h.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return h.Close()
}

// pruneSeen keeps the duplicate index bounded: every 10 minutes it forgets
// acceptances older than SeenRetention (the ledger still refuses replays).
func (h *Hub) pruneSeen(ctx context.Context) {
	for {
		n, err := h.outbox.PruneSeen(h.cfg.Now().Add(-h.cfg.SeenRetention))
		if err != nil {
			h.log.Error("pruning the duplicate index", "err", err)
		} else if n > 0 {
			h.log.Debug("pruned the duplicate index", "forgotten", n)
		}
		if !sleepCtx(ctx, 10*time.Minute) {
			return
		}
	}
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
