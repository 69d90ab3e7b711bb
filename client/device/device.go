// Package device is an iotledger device as firmware would be: it holds the
// key enrolled on the ledger, connects to a hub over MQTT 5 and TLS (the
// hub's certificate checked against a pinned CA pool) with a connect token
// signed by that key, publishes signed readings and waits for the hub's
// PUBACK, hands commands to a handler and publishes their signed acks,
// sends and receives device-to-device messages, and reconnects with
// back-off. It speaks nothing but the protocol of docs/protocol.md, so it is
// also that document's reference implementation. The simulator (client/sim),
// the benchmark's fleet (bench) and the demo's hand-driven devices all use it.
//
//	d, err := device.New(device.Config{ID: "cold-0001", Signer: key,
//		Hub: "127.0.0.1:8883", HubID: "hub1", RootCAs: orgCA, Reconnect: &device.DefaultBackoff})
//	d.OnCommand(func(ctx context.Context, c api.Command) (api.CommandStatus, string) {
//		return api.CommandAcked, "setpoint applied"
//	})
//	if err := d.Connect(ctx); err != nil { ... } // *ConnectError
//	defer d.Close()
//	seq, err := d.Publish(ctx, reading.Payload{Values: values}) // *RefusedError when the hub refuses it
//
// Set the handlers (OnCommand, OnError, OnInbox, OnConnectionLost) before
// Connect. They run one at a time, in arrival order, on one goroutine of the
// device; they may call Publish, Ack and SendTo, but not Close.
package device

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/hub/wire"
)

// Config describes one device and the hub it talks to.
type Config struct {
	ID     string          // device id: MQTT client id and user name
	Signer *reading.Signer // the device's key, whose public half is enrolled on the ledger
	Hub    string          // host:port of the hub's MQTT listener
	HubID  string          // the hub's --hub-id, signed into every connect token

	// RootCAs pins the CAs the hub's TLS certificate must chain to; for a
	// hub of a network started by `iotledger network up`, the org's CA.
	// Required unless InsecurePlaintext.
	RootCAs *x509.CertPool
	// ServerName is the name the hub's certificate must carry (default:
	// the host of Hub).
	ServerName string
	// InsecurePlaintext connects without TLS: readings, commands and
	// connect tokens travel in clear. Only for a hub run with
	// --insecure-plaintext on a loopback address.
	InsecurePlaintext bool

	// Reconnect, when set, re-establishes a lost connection in the
	// background after a first Connect succeeded (new token, resubscribed),
	// and Publish, Ack and SendTo wait for it and send again what the hub
	// had not acknowledged. Nil: a lost connection stays lost and those
	// calls return ErrNotConnected until Connect is called again.
	Reconnect *Backoff

	// FirstSeq numbers the first reading Publish signs without a Seq;
	// default: the Unix ms at New, so that a device restarted with the same
	// key never reuses a sequence number (docs/protocol.md §4).
	FirstSeq uint64

	KeepAlive      time.Duration // MQTT keep-alive (default 30 s)
	ConnectTimeout time.Duration // one connection attempt, TLS and SUBACK included (default 10 s)
	AckTimeout     time.Duration // wait for each PUBACK (default 30 s)

	// HubCAs are the CA roots a hub's signature on commands and inbox
	// messages must chain to (docs/protocol.md §5); default RootCAs. A
	// device with neither refuses every command and inbox message.
	HubCAs *x509.CertPool

	// VerifyCommand, if set, turns the exact bytes of a message on the
	// device's commands topic into the command it carries, in place of
	// plain JSON decoding: this is where a device checks a command's
	// signature (and unwraps a signed envelope). A message it returns an
	// error for never reaches the OnCommand handler and is not acked (it is
	// counted in Stats.CommandsRefused and logged); a command it returns
	// must still name this device.
	VerifyCommand func(raw []byte) (api.Command, error)
	// VerifyInbox does the same for messages on the device's inbox topic;
	// a message it refuses never reaches the OnInbox handler.
	VerifyInbox func(raw []byte) (wire.InboxMessage, error)

	Logger *slog.Logger
	Now    func() time.Time // clock of tokens, readings and acks (default time.Now)
}

// CommandHandler acts on a command and says how it ended: api.CommandAcked
// or api.CommandFailed and a result text (at most 1024 bytes), which the
// device signs and publishes as the command's ack. Returning an empty
// status leaves the command unacknowledged: ack it later with Device.Ack.
// ctx ends when the device is closed. A command id reaches the handler once
// per Device, however often the hub delivers it.
type CommandHandler func(ctx context.Context, cmd api.Command) (status api.CommandStatus, result string)

// Stats counts what happened to a device's connections and commands.
type Stats struct {
	Connects         int64  `json:"connects"`        // connections made by Connect
	Reconnects       int64  `json:"reconnects"`      // connections re-established in the background after a loss
	ConnectFailures  int64  `json:"connectFailures"` // failed attempts, Connect's and the background ones
	LastConnectError string `json:"lastConnectError,omitempty"`
	CommandsReceived int64  `json:"commandsReceived"` // commands handed to the handler
	CommandsRefused  int64  `json:"commandsRefused"`  // commands VerifyCommand refused, unreadable ones, or another device's
	CommandsAcked    int64  `json:"commandsAcked"`    // acks the hub acknowledged
}

// Device is one device and its connection to a hub. Its methods are safe
// for concurrent use.
type Device struct {
	cfg    Config
	log    *slog.Logger
	tls    *tls.Config // nil: plaintext
	topics struct{ telemetry, acks, commands, errors, inbox string }
	seq    atomic.Uint64

	connectMu sync.Mutex // one connection attempt at a time

	mu           sync.Mutex
	cur          *conn
	changed      chan struct{} // closed and replaced whenever cur changes
	started      bool          // the dispatcher runs
	reconnecting bool          // the reconnect loop runs
	closed       bool
	onCommand    CommandHandler
	onError      func(wire.ErrorMessage)
	onInbox      func(wire.InboxMessage)
	onLost       func(error)
	waiters      map[string]*waiter
	commands     commandLog
	stats        Stats

	ctx     context.Context // ends at Close
	cancel  context.CancelFunc
	lostSig chan struct{}
	events  queue
	wg      sync.WaitGroup
}

// conn is one MQTT connection; err says why it ended.
type conn struct {
	c   *paho.Client
	err error
}

// New checks cfg and returns a device that is not connected yet.
func New(cfg Config) (*Device, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	d := &Device{cfg: cfg, log: cfg.Logger.With("device", cfg.ID), changed: make(chan struct{}),
		waiters: map[string]*waiter{}, commands: newCommandLog(1024), lostSig: make(chan struct{}, 1)}
	if !cfg.InsecurePlaintext {
		d.tls = clientTLS(cfg)
	}
	d.topics.telemetry = wire.Topic(cfg.ID, wire.KindTelemetry)
	d.topics.acks = wire.Topic(cfg.ID, wire.KindAcks)
	d.topics.commands = wire.Topic(cfg.ID, wire.KindCommands)
	d.topics.errors = wire.Topic(cfg.ID, wire.KindErrors)
	d.topics.inbox = wire.Topic(cfg.ID, wire.KindInbox)
	d.seq.Store(cfg.FirstSeq)
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.events.ready = make(chan struct{}, 1)
	return d, nil
}

func (c *Config) validate() error {
	if err := reading.ValidateID("device", c.ID); err != nil {
		return &ConfigError{"ID", err.Error()}
	}
	if c.Signer == nil {
		return &ConfigError{"Signer", "required (the key enrolled on the ledger)"}
	}
	if host, _, err := net.SplitHostPort(c.Hub); err != nil || host == "" {
		return &ConfigError{"Hub", "want host:port of the hub's MQTT listener, got " + strconv.Quote(c.Hub)}
	}
	if err := reading.ValidateID("hub id", c.HubID); err != nil {
		return &ConfigError{"HubID", err.Error() + " (the hub's --hub-id)"}
	}
	switch {
	case c.InsecurePlaintext && c.RootCAs != nil:
		return &ConfigError{"InsecurePlaintext", "conflicts with RootCAs: choose TLS or plaintext"}
	case !c.InsecurePlaintext && c.RootCAs == nil:
		return &ConfigError{"RootCAs", "required: the CA pool the hub's TLS certificate must chain to (or InsecurePlaintext for a plaintext hub on loopback)"}
	}
	if c.Reconnect != nil {
		if c.Reconnect.Min < 0 || c.Reconnect.Max < 0 {
			return &ConfigError{"Reconnect", "back-off durations must not be negative"}
		}
		b := *c.Reconnect // the device's own copy
		c.Reconnect = &b
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = 30 * time.Second
	}
	if c.KeepAlive > 18*time.Hour { // MQTT carries it in 16 bits of seconds
		return &ConfigError{"KeepAlive", "at most 65535 s"}
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.FirstSeq == 0 {
		c.FirstSeq = uint64(c.Now().UnixMilli())
	}
	c.defaultVerification()
	return nil
}

// ID is the device id.
func (d *Device) ID() string { return d.cfg.ID }

// OnCommand sets the command handler. Without one, commands are received
// (and counted) but neither acted on nor acked.
func (d *Device) OnCommand(h CommandHandler) { d.mu.Lock(); d.onCommand = h; d.mu.Unlock() }

// OnError sets the handler of the messages on the device's errors topic:
// every refusal the hub reports, including those Publish returns and the
// ledger's later refusals of acks (docs/protocol.md §7).
func (d *Device) OnError(h func(wire.ErrorMessage)) { d.mu.Lock(); d.onError = h; d.mu.Unlock() }

// OnInbox sets the handler of device-to-device messages (docs/protocol.md §6).
func (d *Device) OnInbox(h func(wire.InboxMessage)) { d.mu.Lock(); d.onInbox = h; d.mu.Unlock() }

// OnConnectionLost sets the handler told when an established connection
// ends (not when Close ends it); err is a *DisconnectError.
func (d *Device) OnConnectionLost(h func(err error)) { d.mu.Lock(); d.onLost = h; d.mu.Unlock() }

// Connected tells whether the device holds a connection now.
func (d *Device) Connected() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cur != nil
}

// Stats returns the device's counters so far.
func (d *Device) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// Connect makes one connection attempt: TCP, TLS against the pinned CAs,
// MQTT 5 CONNECT with a fresh signed token and a clean session, then
// SUBSCRIBE to the device's errors, commands and inbox topics (the hub then
// sends the commands that are pending). Its error is a *ConnectError
// (ErrClosed, ErrAlreadyConnected aside). Call it again after a failure,
// waiting Backoff.Delay between attempts; once it has succeeded, a device
// with Config.Reconnect keeps itself connected until Close.
func (d *Device) Connect(ctx context.Context) error {
	d.connectMu.Lock()
	defer d.connectMu.Unlock()
	d.mu.Lock()
	switch {
	case d.closed:
		d.mu.Unlock()
		return ErrClosed
	case d.cur != nil:
		d.mu.Unlock()
		return ErrAlreadyConnected
	}
	if !d.started {
		d.started = true
		d.wg.Go(func() { d.events.run(d.ctx) })
	}
	d.mu.Unlock()

	cn, err := d.dial(ctx)
	if err != nil {
		d.connectFailed(err)
		return err
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		_ = cn.c.Disconnect(&paho.Disconnect{})
		return ErrClosed
	}
	d.setConn(cn)
	d.stats.Connects++
	if d.cfg.Reconnect != nil && !d.reconnecting {
		d.reconnecting = true
		d.wg.Go(d.keepConnected)
	}
	d.mu.Unlock()
	d.log.Debug("connected", "hub", d.cfg.Hub)
	d.lostEarly(cn)
	return nil
}

// lostEarly handles a connection that ended between its SUBACK and
// becoming current, when its callbacks found it not current yet.
func (d *Device) lostEarly(cn *conn) {
	if err := d.lostErr(cn); err != nil {
		d.lost(cn, err)
	}
}

// dial opens one connection, authenticated and subscribed.
func (d *Device) dial(ctx context.Context) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.ConnectTimeout)
	defer cancel()
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", d.cfg.Hub)
	if err != nil {
		return nil, &ConnectError{Hub: d.cfg.Hub, Step: StepDial, Err: err}
	}
	nc := raw
	if d.tls != nil {
		tc := tls.Client(raw, d.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, &ConnectError{Hub: d.cfg.Hub, Step: StepTLS, Err: err}
		}
		nc = tc
	}
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce) // never fails (crypto/rand)
	tok, err := wire.SignToken(d.cfg.Signer, d.cfg.HubID, d.cfg.ID, d.cfg.Now(), nonce)
	if err != nil {
		_ = nc.Close()
		return nil, &ConnectError{Hub: d.cfg.Hub, Step: StepConnect, Err: err}
	}
	cn := &conn{}
	cn.c = paho.NewClient(paho.ClientConfig{
		Conn:          packets.NewThreadSafeConn(nc),
		PacketTimeout: d.cfg.AckTimeout,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			d.received(pr.Packet)
			return true, nil
		}},
		OnServerDisconnect: func(p *paho.Disconnect) {
			e := &DisconnectError{Code: p.ReasonCode}
			if p.Properties != nil {
				e.Reason = p.Properties.ReasonString
			}
			d.lost(cn, e)
		},
		OnClientError: func(err error) { d.lost(cn, &DisconnectError{Err: err}) },
	})
	ack, err := cn.c.Connect(ctx, &paho.Connect{
		ClientID: d.cfg.ID, Username: d.cfg.ID, UsernameFlag: true, Password: []byte(tok), PasswordFlag: true,
		KeepAlive: uint16(d.cfg.KeepAlive / time.Second), CleanStart: true,
	})
	if err != nil {
		_ = nc.Close()
		ce := &ConnectError{Hub: d.cfg.Hub, Step: StepConnect, Err: err}
		if ack != nil {
			ce.Code = ack.ReasonCode
			if ack.Properties != nil {
				ce.Reason = ack.Properties.ReasonString
			}
		}
		return nil, ce
	}
	subs := []paho.SubscribeOptions{
		{Topic: d.topics.errors, QoS: 1}, // first: refusals of what the device sends next
		{Topic: d.topics.commands, QoS: 1},
		{Topic: d.topics.inbox, QoS: 1},
	}
	sa, err := cn.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: subs})
	if err != nil {
		_ = cn.c.Disconnect(&paho.Disconnect{})
		ce := &ConnectError{Hub: d.cfg.Hub, Step: StepSubscribe, Err: err}
		if sa != nil {
			for i, code := range sa.Reasons {
				if code >= 0x80 && i < len(subs) {
					ce.Code, ce.Topic = code, subs[i].Topic
					break
				}
			}
		}
		return nil, ce
	}
	return cn, nil
}

func (d *Device) connectFailed(err error) {
	d.mu.Lock()
	d.stats.ConnectFailures++
	d.stats.LastConnectError = err.Error()
	d.mu.Unlock()
	d.log.Debug("connection attempt failed", "hub", d.cfg.Hub, "err", err)
}

// setConn makes cn (or nil) the current connection. d.mu is held.
func (d *Device) setConn(cn *conn) {
	d.cur = cn
	close(d.changed)
	d.changed = make(chan struct{})
}

// lost records that cn ended, once: callbacks of a connection that is no
// longer current (or one Close ended) are ignored.
func (d *Device) lost(cn *conn, why error) {
	d.mu.Lock()
	if cn.err == nil {
		cn.err = why
	}
	if d.cur != cn {
		d.mu.Unlock()
		return
	}
	d.setConn(nil)
	onLost, reconnect := d.onLost, d.reconnecting
	d.mu.Unlock()
	d.log.Info("connection lost", "hub", d.cfg.Hub, "err", why)
	if onLost != nil {
		d.events.push(func() { onLost(why) })
	}
	if reconnect {
		select {
		case d.lostSig <- struct{}{}:
		default:
		}
	}
}

// drop ends cn on the device's initiative (a PUBACK that never came).
func (d *Device) drop(cn *conn, why error) {
	d.lost(cn, &DisconnectError{Err: why})
	_ = cn.c.Disconnect(&paho.Disconnect{})
}

// keepConnected re-establishes lost connections until Close.
func (d *Device) keepConnected() {
	for {
		select {
		case <-d.lostSig:
		case <-d.ctx.Done():
			return
		}
		for attempt := 0; ; attempt++ {
			if !sleep(d.ctx, d.cfg.Reconnect.Delay(attempt)) {
				return
			}
			if d.reconnectOnce() {
				break
			}
		}
	}
}

// reconnectOnce makes one background attempt; true when connected.
func (d *Device) reconnectOnce() bool {
	d.connectMu.Lock()
	defer d.connectMu.Unlock()
	if d.Connected() { // Connect was called meanwhile
		return true
	}
	cn, err := d.dial(d.ctx)
	if err != nil {
		if d.ctx.Err() == nil {
			d.connectFailed(err)
		}
		return false
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		_ = cn.c.Disconnect(&paho.Disconnect{})
		return true
	}
	d.setConn(cn)
	d.stats.Reconnects++
	d.mu.Unlock()
	d.log.Info("reconnected", "hub", d.cfg.Hub)
	d.lostEarly(cn)
	return true
}

// Close disconnects (MQTT DISCONNECT, normal), stops reconnecting and waits
// for the handlers and acks in progress to end; calls waiting for a
// connection return ErrClosed. Closing twice is harmless.
func (d *Device) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	cn := d.cur
	d.setConn(nil)
	d.mu.Unlock()
	d.cancel()
	if cn != nil {
		_ = cn.c.Disconnect(&paho.Disconnect{})
	}
	d.wg.Wait()
	return nil
}

// waitConn returns the current connection, waiting for the reconnect loop
// when there is none.
func (d *Device) waitConn(ctx context.Context) (*conn, error) {
	for {
		d.mu.Lock()
		switch {
		case d.closed:
			d.mu.Unlock()
			return nil, ErrClosed
		case d.cur != nil:
			cn := d.cur
			d.mu.Unlock()
			return cn, nil
		case !d.reconnecting:
			d.mu.Unlock()
			return nil, ErrNotConnected
		}
		ch := d.changed
		d.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (d *Device) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

// received dispatches a message from the hub. It runs on the connection's
// reading goroutine, so it never blocks: handlers run on the dispatcher.
func (d *Device) received(p *paho.Publish) {
	switch p.Topic {
	case d.topics.errors:
		var m wire.ErrorMessage
		if err := json.Unmarshal(p.Payload, &m); err != nil {
			d.log.Warn("unreadable message on the errors topic", "err", err)
			return
		}
		d.refusalArrived(m)
		d.mu.Lock()
		h := d.onError
		d.mu.Unlock()
		if h != nil {
			d.events.push(func() { h(m) })
		}
	case d.topics.commands:
		raw := bytes.Clone(p.Payload)
		d.events.push(func() { d.command(raw) })
	case d.topics.inbox:
		raw := bytes.Clone(p.Payload)
		d.events.push(func() { d.inbox(raw) })
	default:
		d.log.Warn("message on an unexpected topic", "topic", p.Topic)
	}
}

// command checks a command, hands it to the handler once and acks it.
func (d *Device) command(raw []byte) {
	refuse := func(why string, err error) {
		d.mu.Lock()
		d.stats.CommandsRefused++
		d.mu.Unlock()
		d.log.Warn("command refused", "why", why, "err", err)
	}
	var cmd api.Command
	if v := d.cfg.VerifyCommand; v != nil {
		c, err := v(raw)
		if err != nil {
			refuse("VerifyCommand", err)
			return
		}
		cmd = c
	} else if err := json.Unmarshal(raw, &cmd); err != nil {
		refuse("not a command record", err)
		return
	}
	if err := reading.ValidateID("command", cmd.ID); err != nil {
		refuse("not a command record", err)
		return
	}
	if cmd.Device != d.cfg.ID {
		refuse("addressed to device "+strconv.Quote(cmd.Device), nil)
		return
	}
	d.mu.Lock()
	rec, seen := d.commands.get(cmd.ID)
	if seen {
		resend := rec.status != "" && !rec.acked && !rec.sending
		d.mu.Unlock()
		d.log.Debug("command delivered again", "command", cmd.ID, "resend ack", resend)
		if resend {
			d.ackLater(cmd.ID, rec.status, rec.result)
		}
		return
	}
	rec = d.commands.add(cmd.ID)
	d.stats.CommandsReceived++
	h := d.onCommand
	d.mu.Unlock()
	d.log.Info("command received", "command", cmd.ID, "name", cmd.Name)
	if h == nil {
		return
	}
	status, result := h(d.ctx, cmd)
	if status == "" || d.ctx.Err() != nil {
		return
	}
	d.mu.Lock()
	rec.status, rec.result = status, result
	d.mu.Unlock()
	d.ackLater(cmd.ID, status, result)
}

// inbox checks a device-to-device message and hands it to the handler.
func (d *Device) inbox(raw []byte) {
	var m wire.InboxMessage
	if v := d.cfg.VerifyInbox; v != nil {
		var err error
		if m, err = v(raw); err != nil {
			d.log.Warn("inbox message refused", "why", "VerifyInbox", "err", err)
			return
		}
	} else if err := json.Unmarshal(raw, &m); err != nil {
		d.log.Warn("unreadable inbox message", "err", err)
		return
	}
	d.mu.Lock()
	h := d.onInbox
	d.mu.Unlock()
	if h != nil {
		h(m)
	}
}

// ackLater publishes an ack off the dispatcher, which must stay free to
// run the handlers of what arrives meanwhile.
func (d *Device) ackLater(id string, status api.CommandStatus, result string) {
	d.wg.Go(func() {
		if err := d.Ack(d.ctx, id, status, result); err != nil && d.ctx.Err() == nil {
			d.log.Warn("ack not acknowledged by the hub", "command", id, "err", err)
		}
	})
}

// commandLog remembers the last commands handled, so that a command
// delivered twice (after a hub restart) is acted on once.
type commandLog struct {
	max   int
	recs  map[string]*commandRecord
	order []string
}

type commandRecord struct {
	status  api.CommandStatus
	result  string
	sending bool // an ack is being published
	acked   bool // the hub acknowledged the ack
}

func newCommandLog(n int) commandLog {
	return commandLog{max: n, recs: map[string]*commandRecord{}}
}

func (l *commandLog) get(id string) (*commandRecord, bool) {
	r, ok := l.recs[id]
	return r, ok
}

func (l *commandLog) add(id string) *commandRecord {
	if len(l.order) >= l.max {
		delete(l.recs, l.order[0])
		l.order = l.order[1:]
	}
	r := &commandRecord{}
	l.recs[id] = r
	l.order = append(l.order, id)
	return r
}

// queue runs functions one at a time in order; push never blocks.
type queue struct {
	mu    sync.Mutex
	items []func()
	ready chan struct{}
}

func (q *queue) push(f func()) {
	q.mu.Lock()
	q.items = append(q.items, f)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *queue) run(ctx context.Context) {
	for {
		q.mu.Lock()
		if len(q.items) == 0 {
			q.mu.Unlock()
			select {
			case <-q.ready:
				continue
			case <-ctx.Done():
				return
			}
		}
		f := q.items[0]
		q.items[0] = nil
		q.items = q.items[1:]
		q.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		f()
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
