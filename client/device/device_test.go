package device_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/device"
	"github.com/iotledger/iotledger/client/device/devicetest"
	"github.com/iotledger/iotledger/client/hub"
	"github.com/iotledger/iotledger/client/hub/hubtest"
	"github.com/iotledger/iotledger/client/hub/wire"
)

const hubID = "device-test-hub"

// fixture is a real hub in-process, on the fake ledger, serving TLS with a
// certificate of its own CA.
type fixture struct {
	ledger       *hubtest.Ledger
	hub          *hub.Hub
	ca           *devicetest.CA
	data         string
	deviceTTL    time.Duration
	staleIfError time.Duration
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{ledger: hubtest.NewLedger(), data: t.TempDir()}
	f.hub, f.ca = devicetest.StartHub(t, f.hubConfig(""))
	return f
}

// newForgetfulFixture starts a hub that keeps device records for a
// millisecond and never answers from an expired one (no stale-if-error):
// every message looks the device up, and a ledger that does not answer
// makes the hub unable to take it.
func newForgetfulFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{ledger: hubtest.NewLedger(), data: t.TempDir(), deviceTTL: time.Millisecond, staleIfError: -1}
	f.hub, f.ca = devicetest.StartHub(t, f.hubConfig(""))
	return f
}

func (f *fixture) hubConfig(addr string) hub.Config {
	return hub.Config{HubID: hubID, MQTTAddr: addr, DataDir: f.data, BatchWait: 10 * time.Millisecond,
		DeviceTTL: f.deviceTTL, StaleIfError: f.staleIfError, Ledger: f.ledger, Events: f.ledger}
}

// restartHub stops the hub and starts a new one on the same address, data
// and certificate, as a hub restarted after a crash would be.
func (f *fixture) restartHub(t *testing.T) {
	t.Helper()
	addr := f.hub.MQTTAddr()
	require.NoError(t, f.hub.Close())
	cfg := f.hubConfig(addr)
	cfg.TLS = f.ca.ServerTLS(t)
	h, err := hub.New(cfg)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return h.Start(t.Context()) == nil }, 5*time.Second, 50*time.Millisecond)
	t.Cleanup(func() { _ = h.Close() })
	f.hub = h
}

// device makes an enrolled, active device pinned to the hub's CA.
func (f *fixture) device(t *testing.T, id string, change func(c *device.Config)) *device.Device {
	t.Helper()
	key, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	f.ledger.Enroll(id, key.Public(), api.StatusActive)
	cfg := device.Config{ID: id, Signer: key, Hub: f.hub.MQTTAddr(), HubID: hubID, RootCAs: f.ca.Pool(),
		Reconnect: &device.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}}
	if change != nil {
		change(&cfg)
	}
	d, err := device.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func connect(t *testing.T, d *device.Device) {
	t.Helper()
	require.NoError(t, d.Connect(t.Context()))
}

func temperature(v float64) []reading.Value {
	return []reading.Value{{Name: "temperature", Unit: "Cel", Number: &v}}
}

func issue(f *fixture, c api.Command) {
	f.ledger.AddCommand(c)
	f.ledger.Events <- api.Event{Type: api.EventCommandIssued, Commands: []api.Command{c}}
}

func pending(id, dev string) api.Command {
	return api.Command{ID: id, Device: dev, Name: "set-setpoint", Params: json.RawMessage(`{"celsius":4}`),
		Status: api.CommandPending, ExpiresAt: time.Now().Add(time.Hour)}
}

func TestAcknowledgedReadingIsDurableAndReachesTheLedger(t *testing.T) {
	f := newFixture(t)
	d := f.device(t, "cold-1", func(c *device.Config) { c.FirstSeq = 500 })
	connect(t, d)
	seq, err := d.Publish(t.Context(), reading.Payload{Values: temperature(4.2)})
	require.NoError(t, err)
	require.Equal(t, uint64(500), seq, "the first reading is numbered FirstSeq")
	seq2, err := d.Publish(t.Context(), reading.Payload{Values: temperature(4.3)})
	require.NoError(t, err)
	require.Equal(t, uint64(501), seq2)
	require.Eventually(t, func() bool {
		c := f.ledger.Committed()
		return c[hubtest.Key("cold-1", 500)] == 1 && c[hubtest.Key("cold-1", 501)] == 1
	}, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, int64(1), d.Stats().Connects)
}

func TestDeviceRefusesAHubWhoseCertificateIsNotSignedByThePinnedCA(t *testing.T) {
	f := newFixture(t)
	other := devicetest.NewCA(t, "another CA")
	d := f.device(t, "cold-2", func(c *device.Config) { c.RootCAs = other.Pool() })
	err := d.Connect(t.Context())
	var ce *device.ConnectError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, device.StepTLS, ce.Step)
	require.False(t, ce.Refused())
	require.ErrorAs(t, err, new(x509.UnknownAuthorityError))
	require.Zero(t, f.hub.Health(t.Context()).Devices, "no token was sent to an unverified hub")
	require.Equal(t, int64(1), d.Stats().ConnectFailures)
}

func TestDeviceRefusesAHubCertificateForAnotherName(t *testing.T) {
	f := newFixture(t)
	d := f.device(t, "cold-3", func(c *device.Config) { c.ServerName = "hub.elsewhere.example" })
	err := d.Connect(t.Context())
	var ce *device.ConnectError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, device.StepTLS, ce.Step)
	require.ErrorAs(t, err, new(x509.HostnameError))
}

func TestConfigNeedsAPinnedCAOrExplicitPlaintext(t *testing.T) {
	key, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	pool := devicetest.NewCA(t, "ca").Pool()
	base := device.Config{ID: "d1", Signer: key, Hub: "127.0.0.1:8883", HubID: "h"}
	for name, tc := range map[string]struct {
		change func(c *device.Config)
		field  string
	}{
		"no CA and no plaintext": {func(c *device.Config) {}, "RootCAs"},
		"CA and plaintext":       {func(c *device.Config) { c.RootCAs, c.InsecurePlaintext = pool, true }, "InsecurePlaintext"},
		"bad id":                 {func(c *device.Config) { c.RootCAs, c.ID = pool, "a b" }, "ID"},
		"no key":                 {func(c *device.Config) { c.RootCAs, c.Signer = pool, nil }, "Signer"},
		"hub without port":       {func(c *device.Config) { c.RootCAs, c.Hub = pool, "127.0.0.1" }, "Hub"},
		"no hub id":              {func(c *device.Config) { c.RootCAs, c.HubID = pool, "" }, "HubID"},
	} {
		c := base
		tc.change(&c)
		_, err := device.New(c)
		var ce *device.ConfigError
		require.ErrorAs(t, err, &ce, name)
		require.Equal(t, tc.field, ce.Field, name)
	}
	for _, ok := range []func(c *device.Config){
		func(c *device.Config) { c.RootCAs = pool },
		func(c *device.Config) { c.InsecurePlaintext = true },
	} {
		c := base
		ok(&c)
		_, err := device.New(c)
		require.NoError(t, err)
	}
}

func TestUnknownDeviceIsRefusedAtConnect(t *testing.T) {
	f := newFixture(t)
	key, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	d, err := device.New(device.Config{ID: "stranger", Signer: key, Hub: f.hub.MQTTAddr(), HubID: hubID, RootCAs: f.ca.Pool()})
	require.NoError(t, err)
	defer d.Close()
	err = d.Connect(t.Context())
	var ce *device.ConnectError
	require.ErrorAs(t, err, &ce)
	require.True(t, ce.Refused())
	require.Equal(t, byte(0x86), ce.Code)
	require.Contains(t, err.Error(), "hub refused the connection")
	require.Contains(t, d.Stats().LastConnectError, "bad username or password")
	_, err = d.Publish(t.Context(), reading.Payload{Values: temperature(1)})
	require.ErrorIs(t, err, device.ErrNotConnected)
}

func TestRefusedReadingsCarryTheHubsReason(t *testing.T) {
	f := newFixture(t)
	var reported atomic.Int64
	d := f.device(t, "cold-4", nil)
	d.OnError(func(m wire.ErrorMessage) {
		if m.Reason == wire.ReasonBadSignature {
			reported.Add(1)
		}
	})
	connect(t, d)

	// Signed by a key the ledger does not know for this device.
	impostor, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	env, err := impostor.SignReading(reading.Payload{Device: "cold-4", Seq: 7, Timestamp: 1, Values: temperature(4)})
	require.NoError(t, err)
	err = d.PublishEnvelope(t.Context(), env)
	var re *device.RefusedError
	require.ErrorAs(t, err, &re)
	require.Equal(t, wire.ReasonBadSignature, re.Reason)
	require.Equal(t, byte(0x87), re.Code)
	require.Equal(t, uint64(7), re.Seq)
	require.False(t, re.Temporary())
	require.Equal(t, wire.ReasonBadSignature, device.ReasonOf(err))
	require.Eventually(t, func() bool { return reported.Load() == 1 }, 5*time.Second, 10*time.Millisecond,
		"the errors-topic message reaches OnError too")

	// The same sequence with other content is a replay; the identical
	// envelope sent again is accepted.
	_, err = d.Publish(t.Context(), reading.Payload{Seq: 8, Values: temperature(4)})
	require.NoError(t, err)
	_, err = d.Publish(t.Context(), reading.Payload{Seq: 8, Values: temperature(5)})
	require.Equal(t, wire.ReasonReplay, device.ReasonOf(err))

	// The connection survives refusals.
	_, err = d.Publish(t.Context(), reading.Payload{Values: temperature(4)})
	require.NoError(t, err)
}

func TestCommandReachesTheHandlerAndItsSignedAckCompletesIt(t *testing.T) {
	f := newFixture(t)
	d := f.device(t, "fridge-1", nil)
	got := make(chan api.Command, 4)
	d.OnCommand(func(_ context.Context, c api.Command) (api.CommandStatus, string) {
		got <- c
		return api.CommandAcked, "setpoint 4.0"
	})
	connect(t, d)
	issue(f, pending("cmd-1", "fridge-1"))
	select {
	case c := <-got:
		require.Equal(t, "set-setpoint", c.Name)
		require.JSONEq(t, `{"celsius":4}`, string(c.Params))
	case <-time.After(5 * time.Second):
		t.Fatal("no command reached the handler")
	}
	require.Eventually(t, func() bool { return f.ledger.Command("cmd-1").Status == api.CommandAcked }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, "setpoint 4.0", f.ledger.Command("cmd-1").Result)
	require.Eventually(t, func() bool { return d.Stats().CommandsAcked == 1 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, int64(1), d.Stats().CommandsReceived)
}

func TestDeviceReconnectsResubscribesAndActsOnARedeliveredCommandOnce(t *testing.T) {
	f := newFixture(t)
	d := f.device(t, "valve-1", nil)
	var calls atomic.Int64
	later := make(chan api.Command, 4)
	d.OnCommand(func(_ context.Context, c api.Command) (api.CommandStatus, string) {
		calls.Add(1)
		later <- c
		return "", "" // acked later, by hand
	})
	lost := make(chan error, 4)
	d.OnConnectionLost(func(err error) { lost <- err })
	connect(t, d)
	issue(f, pending("cmd-9", "valve-1"))
	cmd := <-later
	require.Eventually(t, func() bool { return f.ledger.Command("cmd-9").Status == api.CommandDelivered }, 5*time.Second, 10*time.Millisecond)

	// The hub restarts with the command pending again: it delivers it when
	// the device, reconnected on its own, subscribes again.
	f.ledger.AddCommand(pending("cmd-9", "valve-1"))
	f.restartHub(t)
	select {
	case err := <-lost:
		require.ErrorIs(t, err, device.ErrConnectionLost)
	case <-time.After(5 * time.Second):
		t.Fatal("the device did not notice the hub going away")
	}
	require.Eventually(t, func() bool { return d.Stats().Reconnects >= 1 && d.Connected() }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return f.ledger.Command("cmd-9").Status == api.CommandDelivered }, 5*time.Second, 10*time.Millisecond,
		"the new hub delivered the command: the device subscribed again")
	time.Sleep(100 * time.Millisecond)
	require.Equal(t, int64(1), calls.Load(), "a redelivered command reaches the handler once")

	require.NoError(t, d.Ack(t.Context(), cmd.ID, api.CommandFailed, "valve stuck"))
	require.Eventually(t, func() bool { return f.ledger.Command("cmd-9").Status == api.CommandFailed }, 5*time.Second, 10*time.Millisecond)

	_, err := d.Publish(t.Context(), reading.Payload{Values: temperature(9)})
	require.NoError(t, err, "publishing works on the new connection")
}

func TestReadingInFlightWhenTheHubGoesDownIsSentAgainAfterReconnecting(t *testing.T) {
	f := newFixture(t)
	d := f.device(t, "cold-5", nil)
	connect(t, d)
	addr := f.hub.MQTTAddr()
	require.NoError(t, f.hub.Close())
	require.Eventually(t, func() bool { return !d.Connected() }, 5*time.Second, 10*time.Millisecond)

	done := make(chan error, 1)
	var seq uint64
	go func() {
		var err error
		seq, err = d.Publish(t.Context(), reading.Payload{Values: temperature(3)})
		done <- err
	}()
	time.Sleep(100 * time.Millisecond) // Publish is waiting for a connection
	select {
	case err := <-done:
		t.Fatalf("Publish returned while the hub was down: %v", err)
	default:
	}
	cfg := f.hubConfig(addr)
	cfg.TLS = f.ca.ServerTLS(t)
	h, err := hub.New(cfg)
	require.NoError(t, err)
	require.NoError(t, h.Start(t.Context()))
	t.Cleanup(func() { _ = h.Close() })
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the reading was not sent after the hub came back")
	}
	require.Eventually(t, func() bool { return f.ledger.Committed()[hubtest.Key("cold-5", seq)] == 1 }, 5*time.Second, 10*time.Millisecond)
}

func TestReadingTheHubCouldNotStoreIsAnsweredAtOnceAsTemporary(t *testing.T) {
	f := newForgetfulFixture(t)
	d := f.device(t, "cold-7", func(c *device.Config) { c.Reconnect, c.AckTimeout = nil, time.Minute })
	connect(t, d)
	f.ledger.Set(func(l *hubtest.Ledger) { l.Unreachable = true })
	time.Sleep(20 * time.Millisecond) // the hub's record of the device is stale
	start := time.Now()
	_, err := d.Publish(t.Context(), reading.Payload{Values: temperature(2)})
	var re *device.RefusedError
	require.ErrorAs(t, err, &re)
	require.Equal(t, wire.ReasonUnavailable, re.Reason)
	require.True(t, re.Temporary())
	require.Less(t, time.Since(start), 10*time.Second, "the errors-topic message ends the wait for a PUBACK that will not come")
}

func TestReadingTheHubCouldNotStoreIsSentAgainUntilStored(t *testing.T) {
	f := newForgetfulFixture(t)
	d := f.device(t, "cold-8", nil)
	connect(t, d)
	f.ledger.Set(func(l *hubtest.Ledger) { l.Unreachable = true })
	time.Sleep(20 * time.Millisecond) // the hub's record of the device is stale
	done := make(chan error, 1)
	var seq uint64
	go func() {
		var err error
		seq, err = d.Publish(t.Context(), reading.Payload{Values: temperature(2)})
		done <- err
	}()
	// The hub refuses the reconnections too while the ledger is away.
	require.Eventually(t, func() bool { return d.Stats().ConnectFailures >= 1 }, 10*time.Second, 10*time.Millisecond)
	f.ledger.Set(func(l *hubtest.Ledger) { l.Unreachable = false })
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the reading was not sent again")
	}
	require.Eventually(t, func() bool { return f.ledger.Committed()[hubtest.Key("cold-8", seq)] == 1 }, 5*time.Second, 10*time.Millisecond)
}

func TestSuspendedDeviceIsToldWhyItWasDisconnected(t *testing.T) {
	f := newFixture(t)
	d := f.device(t, "conveyor-1", func(c *device.Config) { c.Reconnect = nil })
	lost := make(chan error, 1)
	d.OnConnectionLost(func(err error) { lost <- err })
	connect(t, d)
	f.ledger.SetStatus("conveyor-1", api.StatusSuspended)
	f.ledger.Events <- api.Event{Type: api.EventDeviceStatus, StatusChanges: []api.StatusChange{{Device: "conveyor-1", From: api.StatusActive, To: api.StatusSuspended}}}
	select {
	case err := <-lost:
		var de *device.DisconnectError
		require.ErrorAs(t, err, &de)
		require.Equal(t, byte(0x87), de.Code)
		require.Contains(t, de.Reason, "suspended")
	case <-time.After(5 * time.Second):
		t.Fatal("the device was not disconnected")
	}
	_, err := d.Publish(t.Context(), reading.Payload{Values: temperature(1)})
	require.ErrorIs(t, err, device.ErrNotConnected, "without Reconnect a lost connection stays lost")
	var ce *device.ConnectError
	require.ErrorAs(t, d.Connect(t.Context()), &ce)
	require.True(t, ce.Refused(), "a suspended device cannot come back")
}

func TestDevicesMessageEachOtherOnlyWhereTheLedgerAllows(t *testing.T) {
	f := newFixture(t)
	a, b := f.device(t, "door-1", nil), f.device(t, "alarm-1", nil)
	inbox := make(chan wire.InboxMessage, 1)
	b.OnInbox(func(m wire.InboxMessage) { inbox <- m })
	connect(t, a)
	connect(t, b)
	f.ledger.Messaging[[2]string{"door-1", "alarm-1"}] = true
	require.NoError(t, a.SendTo(t.Context(), "alarm-1", []byte(`{"door":"open"}`)))
	select {
	case m := <-inbox:
		require.Equal(t, "door-1", m.From)
		require.Equal(t, hubID, m.Hub)
		require.JSONEq(t, `{"door":"open"}`, string(m.Payload))
	case <-time.After(5 * time.Second):
		t.Fatal("the message did not arrive")
	}
	err := b.SendTo(t.Context(), "door-1", []byte("hello"))
	require.Equal(t, wire.ReasonNotAuthorized, device.ReasonOf(err), "err: %v", err)
}

func TestVerifyInboxKeepsARefusedMessageFromTheHandler(t *testing.T) {
	f := newFixture(t)
	a := f.device(t, "door-2", nil)
	checked := make(chan string, 1)
	b := f.device(t, "alarm-2", func(c *device.Config) {
		c.VerifyInbox = func(raw []byte) (wire.InboxMessage, error) {
			checked <- string(raw)
			return wire.InboxMessage{}, errors.New("unsigned message")
		}
	})
	var delivered atomic.Int64
	b.OnInbox(func(wire.InboxMessage) { delivered.Add(1) })
	connect(t, a)
	connect(t, b)
	f.ledger.Messaging[[2]string{"door-2", "alarm-2"}] = true
	require.NoError(t, a.SendTo(t.Context(), "alarm-2", []byte(`{"door":"open"}`)))
	select {
	case raw := <-checked:
		require.Contains(t, signedPayload(t, []byte(raw)), `"from":"door-2"`, "the verifier sees the hub-signed message's bytes")
	case <-time.After(5 * time.Second):
		t.Fatal("the message did not arrive")
	}
	time.Sleep(50 * time.Millisecond)
	require.Zero(t, delivered.Load())
}

func TestVerifyCommandKeepsARefusedCommandFromTheHandler(t *testing.T) {
	f := newFixture(t)
	var raw atomic.Value
	d := f.device(t, "pump-1", func(c *device.Config) {
		c.VerifyCommand = func(b []byte) (api.Command, error) {
			raw.Store(string(b))
			return api.Command{}, errors.New("unsigned command")
		}
	})
	var calls atomic.Int64
	d.OnCommand(func(context.Context, api.Command) (api.CommandStatus, string) {
		calls.Add(1)
		return api.CommandAcked, "ok"
	})
	connect(t, d)
	issue(f, pending("cmd-x", "pump-1"))
	require.Eventually(t, func() bool { return d.Stats().CommandsRefused == 1 }, 5*time.Second, 10*time.Millisecond)
	require.Zero(t, calls.Load())
	require.Contains(t, signedPayload(t, []byte(raw.Load().(string))), `"id":"cmd-x"`, "the verifier sees the hub-signed message's bytes")
	require.Equal(t, api.CommandDelivered, f.ledger.Command("cmd-x").Status, "a refused command is not acked")
}

func TestTheHandlerGetsTheCommandVerifyCommandReturns(t *testing.T) {
	f := newFixture(t)
	d := f.device(t, "pump-2", func(c *device.Config) {
		c.VerifyCommand = func(b []byte) (api.Command, error) {
			var m wire.SignedMessage
			if err := json.Unmarshal(b, &m); err != nil {
				return api.Command{}, err
			}
			var c api.Command
			err := json.Unmarshal(m.Payload, &c)
			c.Name = "verified:" + c.Name
			return c, err
		}
	})
	got := make(chan api.Command, 1)
	d.OnCommand(func(_ context.Context, c api.Command) (api.CommandStatus, string) {
		got <- c
		return api.CommandAcked, "ok"
	})
	connect(t, d)
	issue(f, pending("cmd-y", "pump-2"))
	select {
	case c := <-got:
		require.Equal(t, "verified:set-setpoint", c.Name)
	case <-time.After(5 * time.Second):
		t.Fatal("no command reached the handler")
	}
	require.Eventually(t, func() bool { return f.ledger.Command("cmd-y").Status == api.CommandAcked }, 5*time.Second, 10*time.Millisecond)
}

func TestCloseEndsAPublishWaitingForTheHub(t *testing.T) {
	f := newFixture(t)
	d := f.device(t, "cold-6", nil)
	connect(t, d)
	require.NoError(t, f.hub.Close())
	require.Eventually(t, func() bool { return !d.Connected() }, 5*time.Second, 10*time.Millisecond)
	done := make(chan error, 1)
	go func() {
		_, err := d.Publish(context.Background(), reading.Payload{Values: temperature(1)})
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, d.Close())
	select {
	case err := <-done:
		require.ErrorIs(t, err, device.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Publish did not return after Close")
	}
	require.ErrorIs(t, d.Connect(t.Context()), device.ErrClosed)
}

func TestBackoffDoublesUpToItsMaximumWithJitter(t *testing.T) {
	b := device.Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	for attempt, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		want *= time.Millisecond
		for range 20 {
			got := b.Delay(attempt + 0)
			require.GreaterOrEqual(t, got, want/2, "attempt %d", attempt)
			require.LessOrEqual(t, got, want, "attempt %d", attempt)
		}
	}
	require.LessOrEqual(t, b.Delay(1000), time.Second)
}

// signedPayload is the payload of a hub-signed message (the test hubs sign
// what they deliver).
func signedPayload(t *testing.T, raw []byte) string {
	t.Helper()
	var m wire.SignedMessage
	require.NoError(t, json.Unmarshal(raw, &m))
	return string(m.Payload)
}
