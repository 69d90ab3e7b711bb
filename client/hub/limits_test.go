package hub

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/hub/hubtest"
	"github.com/iotledger/iotledger/client/hub/wire"
)

func TestSocketsThatNeverCompleteConnectAreClosedAtTheDeadline(t *testing.T) {
	fx := newFixture(t, func(c *Config) { c.Limits.ConnectTimeout = 300 * time.Millisecond })
	drainSocketsAtCleanup(t, fx)
	d := fx.enroll(t, "dev-1", api.StatusActive)
	m := fx.connect(t, d) // completed CONNECT: the deadline is not its

	var socks []net.Conn
	for range 19 {
		socks = append(socks, rawSocket(t, fx.hub.MQTTAddr(), "127.0.0.1"))
	}
	// One sends the first bytes of a CONNECT and stalls.
	slow := rawSocket(t, fx.hub.MQTTAddr(), "127.0.0.1")
	_, err := slow.Write([]byte{0x10, 0x7f, 0x00})
	require.NoError(t, err)
	socks = append(socks, slow)

	for _, c := range socks {
		requireClosedByHub(t, c)
	}
	eventually(t, func() bool {
		return metric(t, fx.hub, "iotledger_hub_connect_timeouts_total") == 20 &&
			metric(t, fx.hub, "iotledger_hub_sockets_pre_connect") == 0 &&
			metric(t, fx.hub, "iotledger_hub_sockets_open") == 1
	}, "timed-out sockets not counted")
	_, err = m.publish(t, wire.Topic(d.id, wire.KindTelemetry), d.reading(t, 1, 4))
	require.NoError(t, err, "the connected device is still served")
}

func TestAddressCapRefusesTheNextSocketFromThatAddressOnly(t *testing.T) {
	fx := newFixture(t, func(c *Config) {
		c.Limits.MaxConnectionsPerAddr = 3
		c.Limits.ConnectTimeout = time.Minute
	})
	drainSocketsAtCleanup(t, fx)
	held := []net.Conn{}
	for range 3 {
		held = append(held, rawSocket(t, fx.hub.MQTTAddr(), "127.0.0.1"))
	}
	eventually(t, func() bool { return metric(t, fx.hub, "iotledger_hub_sockets_pre_connect") == 3 }, "sockets not counted")

	requireRefusedAtAccept(t, fx.hub.MQTTAddr(), "127.0.0.1")
	require.Equal(t, 1.0, metric(t, fx.hub, "iotledger_hub_sockets_refused_total", "reason", "address_cap"))
	other := rawSocket(t, fx.hub.MQTTAddr(), "127.0.0.2")
	eventually(t, func() bool { return metric(t, fx.hub, "iotledger_hub_sockets_open") == 4 }, "another address was refused")

	// A device at the capped address gets in once a socket there closes.
	d := fx.enroll(t, "dev-1", api.StatusActive)
	require.NoError(t, held[0].Close())
	eventually(t, func() bool { return metric(t, fx.hub, "iotledger_hub_sockets_open") == 3 }, "closed socket still counted")
	fx.connect(t, d)
	_ = other
}

func TestGlobalCapRefusesSocketsFromEveryAddress(t *testing.T) {
	fx := newFixture(t, func(c *Config) {
		c.Limits.MaxConnections = 4
		c.Limits.ConnectTimeout = time.Minute
	})
	drainSocketsAtCleanup(t, fx)
	held := []net.Conn{
		rawSocket(t, fx.hub.MQTTAddr(), "127.0.0.1"), rawSocket(t, fx.hub.MQTTAddr(), "127.0.0.1"),
		rawSocket(t, fx.hub.MQTTAddr(), "127.0.0.2"), rawSocket(t, fx.hub.MQTTAddr(), "127.0.0.2"),
	}
	eventually(t, func() bool { return metric(t, fx.hub, "iotledger_hub_sockets_open") == 4 }, "sockets not counted")

	requireRefusedAtAccept(t, fx.hub.MQTTAddr(), "127.0.0.3")
	requireRefusedAtAccept(t, fx.hub.MQTTAddr(), "127.0.0.1")
	require.Equal(t, 2.0, metric(t, fx.hub, "iotledger_hub_sockets_refused_total", "reason", "global_cap"))

	// A device gets in once a socket closes.
	d := fx.enroll(t, "dev-1", api.StatusActive)
	require.NoError(t, held[0].Close())
	eventually(t, func() bool { return metric(t, fx.hub, "iotledger_hub_sockets_open") == 3 }, "closed socket still counted")
	fx.connect(t, d)
}

func TestDeviceReconnectingFastCannotLockOutAnotherDevice(t *testing.T) {
	fx := newFixture(t, func(c *Config) {
		c.MaxNonces = 6
		c.Limits.MaxNoncesPerDevice = 3
		c.Limits.ConnectRate = -1 // the nonce bound alone
	})
	a := fx.enroll(t, "noisy-1", api.StatusActive)
	b := fx.enroll(t, "quiet-1", api.StatusActive)

	accepted := 0
	for range 10 { // fresh nonces, as fast as it can
		m, _, err := dialV5(t, fx.hub.MQTTAddr(), a.id, a.id, a.token(t, testHubID, time.Now()))
		if err != nil {
			break
		}
		accepted++
		require.NoError(t, m.c.Disconnect(&paho.Disconnect{}))
	}
	require.Equal(t, 3, accepted, "the device got as many connects as its own nonce space")
	require.Equal(t, 1.0, authFailures(fx.hub, "busy"))
	require.Equal(t, 1.0, metric(t, fx.hub, "iotledger_hub_connects_rate_limited_total", "reason", "device_nonces"))

	fx.connect(t, b)
}

func TestTokenNonceIsRefusedForItsDeviceWhileTheTokenIsValid(t *testing.T) {
	clock := &fakeClock{t: time.UnixMilli(time.Now().UnixMilli())} // a token's time has milliseconds
	fx := newFixture(t, func(c *Config) { c.Now = clock.Now })
	d := fx.enroll(t, "dev-1", api.StatusActive)
	t0 := clock.Now()
	tok := d.token(t, testHubID, t0)
	m, _, err := dialV5(t, fx.hub.MQTTAddr(), d.id, d.id, tok)
	require.NoError(t, err)
	require.NoError(t, m.c.Disconnect(&paho.Disconnect{}))

	clock.Set(t0.Add(5 * time.Minute)) // the last moment the token is valid
	_, _, err = dialV5(t, fx.hub.MQTTAddr(), d.id, d.id, tok)
	require.Error(t, err)
	require.Equal(t, 1.0, authFailures(fx.hub, "nonce_reused"))

	clock.Set(t0.Add(5*time.Minute + time.Millisecond)) // no longer valid: stale, whatever its nonce
	_, _, err = dialV5(t, fx.hub.MQTTAddr(), d.id, d.id, tok)
	require.Error(t, err)
	require.Equal(t, 1.0, authFailures(fx.hub, "stale_token"))
	require.Equal(t, 1.0, authFailures(fx.hub, "nonce_reused"))
}

func TestDeviceConnectRateIsLimitedAndOnlyItsOwnConnectsSpendIt(t *testing.T) {
	fx := newFixture(t, func(c *Config) {
		c.Limits.ConnectRate = 0.001
		c.Limits.ConnectBurst = 2
	})
	drainSocketsAtCleanup(t, fx)
	a := fx.enroll(t, "dev-a", api.StatusActive)
	b := fx.enroll(t, "dev-b", api.StatusActive)
	impostor, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	forged := &device{id: a.id, signer: impostor}
	for range 5 { // whoever names the device without its key spends nothing
		_, _, err := dialV5(t, fx.hub.MQTTAddr(), a.id, a.id, forged.token(t, testHubID, time.Now()))
		require.Error(t, err)
	}

	for range 2 {
		m, _, err := dialV5(t, fx.hub.MQTTAddr(), a.id, a.id, a.token(t, testHubID, time.Now()))
		require.NoError(t, err)
		require.NoError(t, m.c.Disconnect(&paho.Disconnect{}))
	}
	_, ca, err := dialV5(t, fx.hub.MQTTAddr(), a.id, a.id, a.token(t, testHubID, time.Now()))
	require.Error(t, err)
	require.Equal(t, packets.ErrConnectionRateExceeded.Code, ca.ReasonCode)
	ack := rawConnect(t, rawSocket(t, fx.hub.MQTTAddr(), "127.0.0.1"), 4, a.id, a.token(t, testHubID, time.Now()), 30)
	require.Equal(t, packets.Err3ServerUnavailable.Code, ack.ReasonCode, "MQTT 3.1.1: server unavailable")
	require.Equal(t, 2.0, metric(t, fx.hub, "iotledger_hub_connects_rate_limited_total", "reason", "device_rate"))

	fx.connect(t, b)
}

func TestRandomUnknownDeviceIDsCostABoundedNumberOfLedgerLookupsPerAddress(t *testing.T) {
	counting := &countingLedger{}
	fx := newFixture(t, func(c *Config) {
		counting.Ledger = c.Ledger.(*hubtest.Ledger)
		c.Ledger = counting
		c.Limits.UnknownDeviceRate = 0.001
		c.Limits.UnknownDeviceBurst = 3
	})
	drainSocketsAtCleanup(t, fx)
	known := fx.enroll(t, "known-1", api.StatusActive)
	m := fx.connect(t, known)
	require.NoError(t, m.c.Disconnect(&paho.Disconnect{}))

	before := counting.deviceCalls.Load()
	codes := map[byte]int{}
	for range 20 {
		ghost := randomDevice(t)
		ack := rawConnect(t, rawSocket(t, fx.hub.MQTTAddr(), "127.0.0.1"), 5, ghost.id, ghost.token(t, testHubID, time.Now()), 30)
		codes[ack.ReasonCode]++
	}
	require.Equal(t, int64(3), counting.deviceCalls.Load()-before, "ledger lookups for 20 random ids from one address")
	require.Equal(t, map[byte]int{packets.ErrBadUsernameOrPassword.Code: 3, packets.ErrConnectionRateExceeded.Code: 17}, codes)
	require.Equal(t, 3.0, authFailures(fx.hub, "unknown_device"))
	require.Equal(t, 17.0, metric(t, fx.hub, "iotledger_hub_unknown_device_lookups_refused_total", "reason", "address_budget"))

	// Another address has a budget of its own.
	ghost := randomDevice(t)
	ack := rawConnect(t, rawSocket(t, fx.hub.MQTTAddr(), "127.0.0.2"), 5, ghost.id, ghost.token(t, testHubID, time.Now()), 30)
	require.Equal(t, packets.ErrBadUsernameOrPassword.Code, ack.ReasonCode)
	require.Equal(t, int64(4), counting.deviceCalls.Load()-before)

	// A device the hub knows still gets in from the spent address.
	fx.connect(t, known)
}

func TestDevicePublishingOverItsRateGetsQuotaExceededWhileOthersAreServed(t *testing.T) {
	fx := newFixture(t, func(c *Config) {
		c.Limits.PublishRate = 0.001
		c.Limits.PublishBurst = 3
	})
	a := fx.enroll(t, "fast-1", api.StatusActive)
	b := fx.enroll(t, "calm-1", api.StatusActive)
	c := fx.enroll(t, "fast-v3", api.StatusActive)
	ma, mb := fx.connect(t, a), fx.connect(t, b)
	require.Equal(t, []byte{1}, ma.subscribe(t, wire.Topic(a.id, wire.KindErrors)))

	for seq := uint64(1); seq <= 3; seq++ {
		_, err := ma.publish(t, wire.Topic(a.id, wire.KindTelemetry), a.reading(t, seq, 4))
		require.NoError(t, err)
	}
	resp, err := ma.publish(t, wire.Topic(a.id, wire.KindTelemetry), a.reading(t, 4, 4))
	require.Error(t, err)
	require.Equal(t, packets.ErrQuotaExceeded.Code, resp.ReasonCode)
	var e wire.ErrorMessage
	require.NoError(t, json.Unmarshal(ma.next(t, wire.Topic(a.id, wire.KindErrors)).Payload, &e))
	require.Equal(t, wire.ReasonRateLimited, e.Reason)
	require.Equal(t, wire.Topic(a.id, wire.KindTelemetry), e.Topic)

	for seq := uint64(1); seq <= 3; seq++ {
		_, err := mb.publish(t, wire.Topic(b.id, wire.KindTelemetry), b.reading(t, seq, 5))
		require.NoError(t, err, "another device's publishes")
	}

	// MQTT 3.1.1: no PUBACK (the reading is not stored; the device keeps
	// it) and the error message.
	mc := fx.connectV3(t, c)
	for seq := uint64(1); seq <= 3; seq++ {
		mc.publish(t, wire.Topic(c.id, wire.KindTelemetry), c.reading(t, seq, 6))
	}
	tok := mc.c.Publish(wire.Topic(c.id, wire.KindTelemetry), 1, false, c.reading(t, 4, 6))
	require.Equal(t, wire.ReasonRateLimited, mc.nextError(t).Reason)
	require.False(t, tok.WaitTimeout(500*time.Millisecond), "a PUBACK for a reading the hub did not store")

	eventually(t, func() bool {
		got := fx.ledger.Committed()
		return len(got) == 9 && got[hubtest.Key(a.id, 3)] == 1 && got[hubtest.Key(b.id, 3)] == 1 && got[hubtest.Key(c.id, 3)] == 1
	}, "the readings within the rates were not committed")
	got := fx.ledger.Committed()
	require.Zero(t, got[hubtest.Key(a.id, 4)])
	require.Zero(t, got[hubtest.Key(c.id, 4)])
	require.Equal(t, 2.0, metric(t, fx.hub, "iotledger_hub_publishes_rate_limited_total", "kind", "telemetry"))
}

func TestSilentConnectionsAreClosedAfterTheGrantedKeepalive(t *testing.T) {
	fx := newFixture(t, func(c *Config) { c.Limits.MaxKeepalive = time.Second })
	drainSocketsAtCleanup(t, fx)
	d := fx.enroll(t, "sleepy-1", api.StatusActive)

	// MQTT 5, asking for no keep-alive: told the hub's, closed when silent.
	c5 := rawSocket(t, fx.hub.MQTTAddr(), "127.0.0.1")
	ack := rawConnect(t, c5, 5, d.id, d.token(t, testHubID, time.Now()), 0)
	require.Equal(t, packets.CodeSuccess.Code, ack.ReasonCode)
	require.True(t, ack.Properties.ServerKeepAliveFlag)
	require.Equal(t, uint16(1), ack.Properties.ServerKeepAlive)
	requireClosedByHub(t, c5)

	// MQTT 3.1.1 cannot be told; it is closed all the same.
	c3 := rawSocket(t, fx.hub.MQTTAddr(), "127.0.0.1")
	ack = rawConnect(t, c3, 4, d.id, d.token(t, testHubID, time.Now()), 0)
	require.Equal(t, packets.CodeSuccess.Code, ack.ReasonCode)
	requireClosedByHub(t, c3)
}

func TestIdleRateLimitersAreForgotten(t *testing.T) {
	s := newLimiterSet(1000, 1)
	now := time.Now()
	for i := range 5000 {
		require.True(t, s.allow(fmt.Sprint("old-", i), now))
	}
	later := now.Add(time.Second) // every old bucket is full again
	for i := range 5000 {
		require.True(t, s.allow(fmt.Sprint("new-", i), later))
	}
	require.LessOrEqual(t, s.len(), 5000, "buckets of keys idle for longer than burst/rate are kept")
}

func TestAddressKeyIsTheIPv4AddressOrTheIPv6Slash64(t *testing.T) {
	key := func(s string) string { return addressKey(net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s))) }
	require.Equal(t, "192.0.2.7", key("192.0.2.7:1883"))
	require.Equal(t, "192.0.2.7", key("[::ffff:192.0.2.7]:1883"))
	require.Equal(t, key("[2001:db8::1]:1"), key("[2001:db8::ffff:1]:2"))
	require.NotEqual(t, key("[2001:db8::1]:1"), key("[2001:db8:0:1::1]:1"))
}

// docs/protocol.md and docs/operations.md state the limits' defaults as
// DefaultLimits has them, and docs/security.md's rows for the limits name
// tests that exist.
func TestLimitsDocsStateTheDefaultsAndNameTestsThatExist(t *testing.T) {
	d := DefaultLimits()
	read := func(name string) string {
		b, err := os.ReadFile("../../docs/" + name)
		require.NoError(t, err)
		return string(b)
	}
	protocol, operations := read("protocol.md"), read("operations.md")
	for _, want := range []string{
		fmt.Sprintf("within **%s**", seconds(d.ConnectTimeout)), fmt.Sprintf("at most **%s**", seconds(d.MaxKeepalive)),
		fmt.Sprintf("**%s** open connections per IPv4 address", thousands(d.MaxConnectionsPerAddr)), fmt.Sprintf("**%s** per hub", thousands(d.MaxConnections)),
		fmt.Sprintf("**%d** times at once, then once per **%s**", d.ConnectBurst, seconds(time.Duration(float64(time.Second)/d.ConnectRate))),
		fmt.Sprintf("at most **%d** at a time per device", d.MaxNoncesPerDevice),
		fmt.Sprintf("**%d** times, then once per %s", d.UnknownDeviceBurst, seconds(time.Duration(float64(time.Second)/d.UnknownDeviceRate))),
		fmt.Sprintf("**%g/s** per device, **%d** at once", d.PublishRate, d.PublishBurst),
		"`" + wire.ReasonRateLimited + "` | `0x97` quota exceeded", "`0x9F` connection rate exceeded", "`0x03` server unavailable",
	} {
		require.Contains(t, protocol, want)
	}
	for _, want := range []string{
		fmt.Sprintf("| %s |", seconds(d.ConnectTimeout)), fmt.Sprintf("| %s |", seconds(d.MaxKeepalive)),
		fmt.Sprintf("| %s |", thousands(d.MaxConnections)), fmt.Sprintf("| %s |", thousands(d.MaxConnectionsPerAddr)),
		fmt.Sprintf("| %d |", d.MaxNoncesPerDevice), fmt.Sprintf("| %g/s, %d |", d.ConnectRate, d.ConnectBurst),
		fmt.Sprintf("| %g/s, %d |", d.PublishRate, d.PublishBurst), fmt.Sprintf("| %g/s, %d per address |", d.UnknownDeviceRate, d.UnknownDeviceBurst),
	} {
		require.Contains(t, operations, want)
	}

	security := read("security.md")
	start := strings.Index(security, "Anyone who can reach a hub's MQTT port")
	require.GreaterOrEqual(t, start, 0)
	end := strings.Index(security[start:], "What the bounds leave")
	require.Greater(t, end, 0)
	named := regexp.MustCompile("`(Test[A-Za-z0-9]+)`").FindAllStringSubmatch(security[start:start+end], -1)
	require.NotEmpty(t, named)
	defined := map[string]bool{}
	for _, dir := range []string{".", "../../test/hub"} {
		files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
		require.NoError(t, err)
		for _, f := range files {
			src, err := os.ReadFile(f)
			require.NoError(t, err)
			for _, m := range regexp.MustCompile(`(?m)^func (Test[A-Za-z0-9]+)\(`).FindAllStringSubmatch(string(src), -1) {
				defined[m[1]] = true
			}
		}
	}
	for _, m := range named {
		require.True(t, defined[m[1]], "docs/security.md names %s, which no test in client/hub or test/hub defines", m[1])
	}
}

// seconds spells a duration as the docs do: "10 s", "300 s".
func seconds(d time.Duration) string { return fmt.Sprintf("%d s", int(d/time.Second)) }

// thousands spells a count as the docs do: "1,000", "10,000".
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// countingLedger counts the device lookups the hub makes on the ledger.
type countingLedger struct {
	*hubtest.Ledger
	deviceCalls atomic.Int64
}

func (c *countingLedger) Device(ctx context.Context, id string) (*api.Device, error) {
	c.deviceCalls.Add(1)
	return c.Ledger.Device(ctx, id)
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// randomDevice is a device id the ledger has never heard of, with a key.
func randomDevice(t *testing.T) *device {
	t.Helper()
	b := make([]byte, 8)
	_, err := rand.Read(b)
	require.NoError(t, err)
	s, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	return &device{id: "ghost-" + hex.EncodeToString(b), signer: s}
}

// drainSocketsAtCleanup makes the test's sockets, closed by their own
// cleanups, be closed on the hub's side too before the hub closes (mochi's
// Close races with connections still being set up).
func drainSocketsAtCleanup(t *testing.T, fx *fixture) {
	t.Helper()
	t.Cleanup(func() {
		eventually(t, func() bool { return metric(t, fx.hub, "iotledger_hub_sockets_open") == 0 }, "sockets left open")
	})
}

// rawSocket opens a TCP connection to addr from the loopback address local
// (all of 127.0.0.0/8 is this host) and sends nothing.
func rawSocket(t *testing.T, addr, local string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: waitFor}
	c, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// requireRefusedAtAccept opens a socket from local and requires the hub to
// close it at once: the connect itself may already see the reset.
func requireRefusedAtAccept(t *testing.T, addr, local string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: waitFor}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		require.ErrorIs(t, err, syscall.ECONNRESET)
		return
	}
	defer func() { _ = c.Close() }()
	requireClosedByHub(t, c)
}

// requireClosedByHub waits for the hub to close c, reading what it sends.
func requireClosedByHub(t *testing.T, c net.Conn) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(waitFor)))
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the hub left the socket open")
			return
		}
	}
}

// rawConnect sends a CONNECT (protocol version 4 = 3.1.1, or 5) and returns
// the hub's CONNACK.
func rawConnect(t *testing.T, c net.Conn, version byte, id, password string, keepalive uint16) packets.Packet {
	t.Helper()
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: version,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: keepalive, ClientIdentifier: id,
			UsernameFlag: true, Username: []byte(id), PasswordFlag: true, Password: []byte(password)}}
	var buf bytes.Buffer
	require.NoError(t, pk.ConnectEncode(&buf))
	_, err := c.Write(buf.Bytes())
	require.NoError(t, err)

	require.NoError(t, c.SetReadDeadline(time.Now().Add(waitFor)))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	var b [1]byte
	_, err = io.ReadFull(c, b[:])
	require.NoError(t, err, "no CONNACK")
	ack := packets.Packet{ProtocolVersion: version}
	require.NoError(t, ack.FixedHeader.Decode(b[0]))
	require.Equal(t, packets.Connack, ack.FixedHeader.Type)
	for shift := 0; ; shift += 7 {
		_, err = io.ReadFull(c, b[:])
		require.NoError(t, err)
		ack.FixedHeader.Remaining |= int(b[0]&0x7f) << shift
		if b[0]&0x80 == 0 {
			break
		}
	}
	body := make([]byte, ack.FixedHeader.Remaining)
	_, err = io.ReadFull(c, body)
	require.NoError(t, err)
	require.NoError(t, ack.ConnackDecode(body))
	return ack
}

// metric reads a series of the hub's registry by name and label pairs; a
// series never set reads 0.
func metric(t *testing.T, h *Hub, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := h.metrics.registry.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || (lp.GetName() == labels[i] && lp.GetValue() == labels[i+1])
				}
				if !found {
					continue series
				}
			}
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return 0
}
