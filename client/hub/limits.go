package hub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/hub/wire"
)

// Limits bound what one socket, one remote address and one device can make
// the hub hold or do. A zero field takes its default; a negative one turns
// that bound off. docs/operations.md ("Resource bounds") says why each
// default is what it is, docs/protocol.md what a device sees when it hits one.
type Limits struct {
	// ConnectTimeout is how long a socket may take, from accept, to deliver
	// its CONNECT packet (a TLS handshake included). Default 10s.
	ConnectTimeout time.Duration
	// MaxKeepalive is the longest keep-alive the hub grants: a CONNECT asking
	// for 0 (none) or more gets this, told to MQTT 5 clients in the CONNACK.
	// The broker closes a connection silent for 1.5 keep-alives. Default 5m.
	MaxKeepalive time.Duration
	// MaxConnections bounds the open MQTT sockets, counted from accept to
	// close whether or not they have sent CONNECT. Default 10000.
	MaxConnections int
	// MaxConnectionsPerAddr bounds the open sockets of one remote IPv4
	// address or IPv6 /64. Default 1000.
	MaxConnectionsPerAddr int
	// MaxNoncesPerDevice bounds the connect-token nonces remembered for one
	// device (Config.MaxNonces bounds them over all devices). Default 128.
	MaxNoncesPerDevice int
	// ConnectRate and ConnectBurst bound each device's authenticated
	// connects: ConnectBurst at once, then ConnectRate per second.
	// Defaults 0.1/s (one per 10 s) and 10.
	ConnectRate  float64
	ConnectBurst int
	// PublishRate and PublishBurst bound each device's publishes (readings,
	// acks and inbox messages together). Defaults 100/s and 200.
	PublishRate  float64
	PublishBurst int
	// UnknownDeviceRate and UnknownDeviceBurst bound, per remote address,
	// the connects naming a device id the hub has to ask the ledger about
	// and the ledger does not know. Defaults 0.1/s and 10.
	UnknownDeviceRate  float64
	UnknownDeviceBurst int
}

// DefaultLimits returns the limits a zero Limits stands for.
func DefaultLimits() Limits {
	var l Limits
	_ = l.setDefaults() // cannot fail on zero values
	return l
}

func (l *Limits) setDefaults() error {
	dur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	num := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	perSecond := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	dur(&l.ConnectTimeout, 10*time.Second)
	dur(&l.MaxKeepalive, 5*time.Minute)
	num(&l.MaxConnections, 10000)
	num(&l.MaxConnectionsPerAddr, 1000)
	num(&l.MaxNoncesPerDevice, 128)
	perSecond(&l.ConnectRate, 0.1)
	perSecond(&l.PublishRate, 100)
	perSecond(&l.UnknownDeviceRate, 0.1)
	for _, b := range []struct {
		name string
		v    *int
		def  int
	}{{"ConnectBurst", &l.ConnectBurst, 10}, {"PublishBurst", &l.PublishBurst, 200}, {"UnknownDeviceBurst", &l.UnknownDeviceBurst, 10}} {
		if *b.v < 0 {
			return &ConfigError{"Limits." + b.name, "must not be negative (turn the rate off instead)"}
		}
		num(b.v, b.def)
	}
	if l.MaxKeepalive > 0 && (l.MaxKeepalive < time.Second || l.MaxKeepalive > 65535*time.Second) {
		return &ConfigError{"Limits.MaxKeepalive", "MQTT keep-alives are 1-65535 seconds"}
	}
	return nil
}

// limits enforces Limits. Sockets are counted and given their CONNECT
// deadline by a wrapper of the TCP listener (mochi's hooks first see a
// client once its CONNECT is read); the rest is a broker hook, registered
// before the hub's own so that what it refuses never reaches brokerHook,
// and admitToken, the last step of authenticate.
type limits struct {
	mqtt.HookBase
	h   *Hub
	cfg Limits

	mu         sync.Mutex
	open       int            // sockets from accept to close
	perAddr    map[string]int // of those, by addressKey
	preConnect atomic.Int64   // of those, not yet past CONNECT

	raw []net.Listener // the MQTT sockets' listeners, closed first at shutdown (closeListeners)

	connects  *limiterSet // authenticated connects, by device
	publishes *limiterSet // publishes, by device
	unknown   *limiterSet // connects naming ids the ledger does not know, by address

	nonceMu    sync.Mutex
	nonces     map[string]map[string]time.Time // device → token nonce → last moment the token is valid
	nonceCount int

	warn warnThrottle
	m    limitMetrics
}

type limitMetrics struct {
	refused          *prometheus.CounterVec
	connectTimeouts  prometheus.Counter
	connectsLimited  *prometheus.CounterVec
	publishesLimited *prometheus.CounterVec
	unknownRefused   *prometheus.CounterVec
}

func newLimits(h *Hub) *limits {
	l := &limits{
		h:         h,
		cfg:       h.cfg.Limits,
		perAddr:   map[string]int{},
		connects:  newLimiterSet(h.cfg.Limits.ConnectRate, h.cfg.Limits.ConnectBurst),
		publishes: newLimiterSet(h.cfg.Limits.PublishRate, h.cfg.Limits.PublishBurst),
		unknown:   newLimiterSet(h.cfg.Limits.UnknownDeviceRate, h.cfg.Limits.UnknownDeviceBurst),
		nonces:    map[string]map[string]time.Time{},
		m: limitMetrics{
			refused: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "iotledger_hub_sockets_refused_total",
				Help: "MQTT sockets closed at accept because a connection cap was reached, by reason (global_cap, address_cap).",
			}, []string{"reason"}),
			connectTimeouts: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "iotledger_hub_connect_timeouts_total",
				Help: "MQTT sockets closed because they had not delivered CONNECT within the connect timeout.",
			}),
			connectsLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "iotledger_hub_connects_rate_limited_total",
				Help: "Device connects refused by a per-device bound, by reason (device_rate, device_nonces, hub_nonces).",
			}, []string{"reason"}),
			publishesLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "iotledger_hub_publishes_rate_limited_total",
				Help: "Device publishes refused by the per-device publish rate, by topic kind.",
			}, []string{"kind"}),
			unknownRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "iotledger_hub_unknown_device_lookups_refused_total",
				Help: "Connects refused without a ledger lookup because their address named too many unknown device ids, by reason (address_budget).",
			}, []string{"reason"}),
		},
	}
	h.metrics.registry.MustRegister(
		l.m.refused, l.m.connectTimeouts, l.m.connectsLimited, l.m.publishesLimited, l.m.unknownRefused,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "iotledger_hub_sockets_open",
			Help: "Open MQTT sockets, from accept to close, whether or not they have sent CONNECT.",
		}, func() float64 {
			l.mu.Lock()
			defer l.mu.Unlock()
			return float64(l.open)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "iotledger_hub_sockets_pre_connect",
			Help: "Open MQTT sockets that have not delivered their CONNECT packet yet.",
		}, func() float64 { return float64(l.preConnect.Load()) }),
	)
	return l
}

func (l *limits) ID() string { return "iotledger-limits" }

func (l *limits) Provides(hook byte) bool {
	return hook == mqtt.OnConnect || hook == mqtt.OnPublish
}

// listen opens the broker's MQTT listener: TCP whose accepted sockets are
// counted and given the CONNECT deadline before anything is read from them
// (so a TLS handshake that never ends is bounded too), then TLS if set.
func (l *limits) listen(ctx context.Context, listen func(ctx context.Context, network, address string) (net.Listener, error), id, addr string, tlsCfg *tls.Config) (listeners.Listener, error) {
	raw, err := listen(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.raw = append(l.raw, raw)
	l.mu.Unlock()
	var ln net.Listener = &limitedListener{Listener: raw, l: l}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	return listeners.NewNet(id, ln), nil
}

// closeListeners stops accepting MQTT sockets (the broker's listeners end
// at their next Accept error).
func (l *limits) closeListeners() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ln := range l.raw {
		_ = ln.Close()
	}
}

// limitedListener applies the connection caps at accept.
type limitedListener struct {
	net.Listener
	l *limits
}

// Accept returns the next socket within the caps, closing those over them.
// It returns only when the listener is closed: mochi stops serving a
// listener at its first Accept error, and errors such as EMFILE pass.
func (ln *limitedListener) Accept() (net.Conn, error) {
	var backoff time.Duration
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			ln.l.h.log.Warn("accepting an MQTT connection failed; accepting again", "err", err, "in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if lc := ln.l.admitSocket(c); lc != nil {
			return lc, nil
		}
	}
}

// admitSocket counts an accepted socket and gives it the CONNECT deadline,
// or closes it (with a reset, leaving nothing in TIME_WAIT) when a cap is
// reached.
func (l *limits) admitSocket(c net.Conn) *limitedConn {
	addr := addressKey(c.RemoteAddr())
	l.mu.Lock()
	reason := ""
	switch {
	case l.cfg.MaxConnections > 0 && l.open >= l.cfg.MaxConnections:
		reason = "global_cap"
	case l.cfg.MaxConnectionsPerAddr > 0 && l.perAddr[addr] >= l.cfg.MaxConnectionsPerAddr:
		reason = "address_cap"
	default:
		l.open++
		l.perAddr[addr]++
	}
	open := l.open
	l.mu.Unlock()
	if reason != "" {
		l.m.refused.WithLabelValues(reason).Inc() // before the peer can see the reset
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
		l.h.log.Log(context.Background(), l.warn.level(reason), "connection refused at accept", "remote", c.RemoteAddr().String(), "reason", reason, "open", open)
		return nil
	}
	l.preConnect.Add(1)
	if l.cfg.ConnectTimeout > 0 {
		_ = c.SetDeadline(time.Now().Add(l.cfg.ConnectTimeout))
	}
	return &limitedConn{Conn: c, l: l, addr: addr}
}

func (l *limits) release(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.perAddr[addr]--; l.perAddr[addr] <= 0 {
		delete(l.perAddr, addr)
	}
}

// Socket states of a limitedConn.
const (
	socketPreConnect int32 = iota
	socketConnected
	socketClosed
)

// limitedConn is an accepted socket, counted until it is closed.
type limitedConn struct {
	net.Conn
	l        *limits
	addr     string
	state    atomic.Int32
	timedOut atomic.Bool
}

func (c *limitedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && c.state.Load() == socketPreConnect && errors.Is(err, os.ErrDeadlineExceeded) && c.timedOut.CompareAndSwap(false, true) {
		c.l.m.connectTimeouts.Inc()
		c.l.h.log.Log(context.Background(), c.l.warn.level("connect_timeout"), "socket closed: no CONNECT within the connect timeout",
			"remote", c.RemoteAddr().String(), "timeout", c.l.cfg.ConnectTimeout)
	}
	return n, err
}

// connectRead marks the socket as past its CONNECT. Its deadline now covers
// the admission that follows; then the broker sets the keep-alive deadline.
func (c *limitedConn) connectRead(admission time.Duration) {
	if c.state.CompareAndSwap(socketPreConnect, socketConnected) {
		c.l.preConnect.Add(-1)
	}
	_ = c.SetDeadline(time.Now().Add(admission))
}

func (c *limitedConn) Close() error {
	if old := c.state.Swap(socketClosed); old != socketClosed {
		if old == socketPreConnect {
			c.l.preConnect.Add(-1)
		}
		c.l.release(c.addr)
	}
	return c.Conn.Close()
}

// limitedConnOf finds the counted socket under a client's connection (a
// *tls.Conn wraps it).
func limitedConnOf(c net.Conn) *limitedConn {
	for c != nil {
		switch v := c.(type) {
		case *limitedConn:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// addressKey is what the per-address bounds count by: the IPv4 address, or
// the IPv6 /64 (one subscriber's allocation, which one attacker has whole).
func addressKey(a net.Addr) string {
	var ap netip.AddrPort
	if t, ok := a.(*net.TCPAddr); ok {
		ap = t.AddrPort()
	} else if p, err := netip.ParseAddrPort(a.String()); err == nil {
		ap = p
	} else {
		return a.String()
	}
	ip := ap.Addr().Unmap().WithZone("")
	if ip.Is4() {
		return ip.String()
	}
	p, err := ip.Prefix(64)
	if err != nil {
		return ip.String()
	}
	return p.String()
}

func remoteKey(cl *mqtt.Client) string {
	if c := limitedConnOf(cl.Net.Conn); c != nil {
		return c.addr
	}
	if ap, err := netip.ParseAddrPort(cl.Net.Remote); err == nil {
		return addressKey(net.TCPAddrFromAddrPort(ap))
	}
	return cl.Net.Remote
}

// OnConnect runs once a socket's CONNECT is read, before authentication:
// it ends the CONNECT deadline, bounds the keep-alive, refuses a device
// that connects faster than its rate, and makes the address pay for ids the
// ledger does not know.
func (l *limits) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	if c := limitedConnOf(cl.Net.Conn); c != nil {
		c.connectRead(l.h.cfg.LedgerTimeout + max(l.cfg.ConnectTimeout, 0))
	}
	l.grantKeepalive(cl)
	device := string(pk.Connect.Username)
	now := l.h.cfg.Now()
	// Only connects that authenticated spend the device's rate (admitToken),
	// so that nobody without its key can spend it; once spent, further
	// connects are refused here, before any signature or ledger work.
	if l.connects.exhausted(device, now) {
		l.m.connectsLimited.WithLabelValues("device_rate").Inc()
		l.h.log.Log(context.Background(), l.warn.level("device_rate"), "device refused: connects faster than its rate",
			"device", device, "remote", cl.Net.Remote, "rate", l.cfg.ConnectRate, "burst", l.cfg.ConnectBurst)
		return l.refuse(cl)
	}
	return l.admitLookup(cl, device, pk.Connect.ClientIdentifier)
}

// grantKeepalive cuts a keep-alive of 0 (none) or over MaxKeepalive to
// MaxKeepalive, so that every connection has an idle deadline.
func (l *limits) grantKeepalive(cl *mqtt.Client) {
	if l.cfg.MaxKeepalive <= 0 {
		return
	}
	most := uint16(l.cfg.MaxKeepalive / time.Second)
	if ka := cl.State.Keepalive; ka == 0 || ka > most {
		cl.State.Keepalive = most
		cl.State.ServerKeepalive = true // MQTT 5: the CONNACK's Server Keep Alive says so
	}
}

// admitLookup looks the device up before authenticate does (which then
// answers from the directory's cache) when the answer is not cached, and
// charges the connect to its address if the ledger does not know the id.
// An address that has spent its budget is refused without a lookup, so
// random ids cannot make the hub query the ledger more than the budget.
func (l *limits) admitLookup(cl *mqtt.Client, device, clientID string) error {
	if l.cfg.UnknownDeviceRate < 0 {
		return nil
	}
	if reading.ValidateID("username", device) != nil || clientID != device {
		return nil // authenticate refuses it without asking the ledger
	}
	if l.h.dir.cached(device) {
		return nil
	}
	addr := remoteKey(cl)
	if !l.unknown.begin(addr, l.h.cfg.Now()) {
		l.m.unknownRefused.WithLabelValues("address_budget").Inc()
		l.h.log.Log(context.Background(), l.warn.level("address_budget"), "device refused without a ledger lookup: its address named too many unknown ids",
			"device", device, "remote", cl.Net.Remote, "rate", l.cfg.UnknownDeviceRate, "burst", l.cfg.UnknownDeviceBurst)
		return l.refuse(cl)
	}
	ctx, cancel := context.WithTimeout(l.h.ctx, l.h.cfg.LedgerTimeout)
	defer cancel()
	_, err := l.h.dir.lookup(ctx, device)
	// Spent if the ledger does not know the id (authenticate then refuses it
	// as unknown_device); a known device, or a ledger that did not answer,
	// is not the address's doing.
	c := api.CodeOf(err)
	l.unknown.settle(addr, l.h.cfg.Now(), c == api.CodeNotFound || c == api.CodeAccessDenied)
	return nil
}

// refuse answers a CONNECT with "connection rate exceeded" (MQTT 5) or
// "server unavailable" (3.1.1 has nothing closer) and ends the connection.
func (l *limits) refuse(cl *mqtt.Client) error {
	code := packets.ErrConnectionRateExceeded
	if cl.Properties.ProtocolVersion < 5 {
		code = packets.ErrServerUnavailable // sent as 3.1.1's return code 3
	}
	_ = l.h.broker.SendConnack(cl, code, false, nil)
	return code
}

// admitToken is the last step of authenticate, for a device whose token
// verified: the token's nonce must not have been used by this device while
// the token is valid, the device must have room for one more nonce, and it
// must be within its connect rate. Each device's nonces are bounded on
// their own, so a device reconnecting fast exhausts its own space only.
func (l *limits) admitToken(device string, tok wire.Token, now time.Time) *authFailure {
	l.nonceMu.Lock()
	defer l.nonceMu.Unlock()
	if exp, ok := l.nonces[device][tok.Nonce]; ok && !now.After(exp) {
		return &authFailure{"nonce_reused", "token nonce already used"}
	}
	if most := l.cfg.MaxNoncesPerDevice; most > 0 && len(l.nonces[device]) >= most {
		l.dropExpiredNonces(device, now)
		if n := len(l.nonces[device]); n >= most {
			l.m.connectsLimited.WithLabelValues("device_nonces").Inc()
			return &authFailure{"busy", fmt.Sprintf("the device has %d tokens still valid (limit %d): it connects too often", n, most)}
		}
	}
	if l.nonceCount >= l.h.cfg.MaxNonces {
		for d := range l.nonces {
			l.dropExpiredNonces(d, now)
		}
		if l.nonceCount >= l.h.cfg.MaxNonces {
			l.m.connectsLimited.WithLabelValues("hub_nonces").Inc()
			return &authFailure{"busy", "nonce cache full"}
		}
	}
	if !l.connects.allow(device, now) {
		l.m.connectsLimited.WithLabelValues("device_rate").Inc()
		return &authFailure{"rate_limited", fmt.Sprintf("the device connects more often than %g/s (burst %d)", l.cfg.ConnectRate, l.cfg.ConnectBurst)}
	}
	seen := l.nonces[device]
	if seen == nil {
		seen = map[string]time.Time{}
		l.nonces[device] = seen
	}
	if _, ok := seen[tok.Nonce]; !ok {
		l.nonceCount++
	}
	// The clock check accepts the token until its time plus the skew; after
	// that it is stale, so the nonce need not be remembered longer.
	seen[tok.Nonce] = tok.Time().Add(l.h.cfg.ClockSkew)
	return nil
}

func (l *limits) dropExpiredNonces(device string, now time.Time) {
	seen := l.nonces[device]
	for n, exp := range seen {
		if now.After(exp) {
			delete(seen, n)
			l.nonceCount--
		}
	}
	if len(seen) == 0 {
		delete(l.nonces, device)
	}
}

// OnPublish refuses a device's publish over its rate: MQTT 5 QoS 1 gets
// PUBACK 0x97 (quota exceeded); MQTT 3.1.1, which has no negative PUBACK,
// and QoS 0 get none, as for "unavailable": the reading is not stored, and
// the device keeps it and sends it again later. Both get an error message.
func (l *limits) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	device := string(cl.Properties.Username)
	if l.publishes.allow(device, l.h.cfg.Now()) {
		return pk, nil
	}
	kind := "other"
	if _, k, err := wire.ParseTopic(pk.TopicName); err == nil {
		kind = string(k)
	}
	l.m.publishesLimited.WithLabelValues(kind).Inc()
	l.h.metrics.rejected.WithLabelValues(wire.ReasonRateLimited).Inc()
	msg := fmt.Sprintf("the device publishes more than %g messages/s (burst %d); not stored, send it again later", l.cfg.PublishRate, l.cfg.PublishBurst)
	l.h.log.Log(context.Background(), l.warn.level("publish_rate"), "message refused: over the device's publish rate", "device", device, "topic", pk.TopicName)
	l.h.sendError(device, wire.ErrorMessage{Reason: wire.ReasonRateLimited, Message: msg, Topic: pk.TopicName})
	if cl.Properties.ProtocolVersion == 5 && pk.FixedHeader.Qos > 0 {
		return pk, packets.Code{Code: packets.ErrQuotaExceeded.Code, Reason: wire.ReasonRateLimited + ": " + msg}
	}
	return pk, packets.ErrRejectPacket
}

// limiterSet holds one token bucket per key (device or address). A bucket
// that is full again is the same as a new one, so such buckets are dropped
// when the set has doubled since the last sweep: the set holds only keys
// active within about burst/rate.
type limiterSet struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	m       map[string]*bucket
	sweepAt int
}

type bucket struct {
	lim     *rate.Limiter
	pending int // tokens set aside by begin, not settled yet
}

const minSweep = 1024

func newLimiterSet(perSecond float64, burst int) *limiterSet {
	limit := rate.Limit(perSecond)
	if perSecond < 0 {
		limit = rate.Inf
	}
	return &limiterSet{limit: limit, burst: burst, m: map[string]*bucket{}, sweepAt: minSweep}
}

func (s *limiterSet) get(key string, now time.Time) *bucket {
	b, ok := s.m[key]
	if !ok {
		if len(s.m) >= s.sweepAt {
			for k, b := range s.m {
				if b.pending == 0 && b.lim.TokensAt(now) >= float64(s.burst) {
					delete(s.m, k)
				}
			}
			s.sweepAt = max(2*len(s.m), minSweep)
		}
		b = &bucket{lim: rate.NewLimiter(s.limit, s.burst)}
		s.m[key] = b
	}
	return b
}

func (b *bucket) free(now time.Time) float64 { return b.lim.TokensAt(now) - float64(b.pending) }

// allow spends one token of key, if it has one.
func (s *limiterSet) allow(key string, now time.Time) bool {
	if s.limit == rate.Inf {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.get(key, now)
	return b.free(now) >= 1 && b.lim.AllowN(now, 1)
}

// exhausted reports whether key has no token now; an unknown key has all.
func (s *limiterSet) exhausted(key string, now time.Time) bool {
	if s.limit == rate.Inf {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[key]
	return ok && b.free(now) < 1
}

// begin sets one of key's tokens aside for something whose cost is known
// only later, if key has one; settle then spends it or gives it back. What
// is set aside counts as spent meanwhile, so concurrent attempts cannot
// together spend more than key has.
func (s *limiterSet) begin(key string, now time.Time) bool {
	if s.limit == rate.Inf {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.get(key, now)
	if b.free(now) < 1 {
		return false
	}
	b.pending++
	return true
}

func (s *limiterSet) settle(key string, now time.Time, spend bool) {
	if s.limit == rate.Inf {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.m[key] // not swept while pending
	b.pending--
	if spend {
		b.lim.AllowN(now, 1)
	}
}

func (s *limiterSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// warnThrottle keeps a flood from flooding the log: a refusal of one kind
// is logged as a warning at most once a minute, at debug level otherwise.
// The metrics count every one.
type warnThrottle struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (w *warnThrottle) level(kind string) slog.Level {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if t, ok := w.last[kind]; ok && now.Sub(t) < time.Minute {
		return slog.LevelDebug
	}
	if w.last == nil {
		w.last = map[string]time.Time{}
	}
	w.last[kind] = now
	return slog.LevelWarn
}
