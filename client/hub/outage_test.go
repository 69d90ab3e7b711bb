package hub

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/hub/hubtest"
	"github.com/iotledger/iotledger/client/hub/wire"
)

// outageLedger is the fake ledger behind a switch: while down, the calls
// the hub makes for devices and batches fail as they do when the peers do
// not answer (an unclassified error).
// With hang set, device lookups wait until their context ends instead, as
// calls to a peer that is paused (its socket open, nothing answering) do.
type outageLedger struct {
	*hubtest.Ledger
	down atomic.Bool
	hang atomic.Bool
}

func (o *outageLedger) Device(ctx context.Context, id string) (*api.Device, error) {
	if o.hang.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if o.down.Load() {
		return nil, hubtest.ErrUnavailable
	}
	return o.Ledger.Device(ctx, id)
}

func (o *outageLedger) CheckAccess(ctx context.Context, req api.AccessRequest) (*api.Decision, error) {
	if o.down.Load() {
		return nil, hubtest.ErrUnavailable
	}
	return o.Ledger.CheckAccess(ctx, req)
}

func (o *outageLedger) SubmitBatch(ctx context.Context, req api.BatchRequest) (*api.BatchReceipt, error) {
	if o.down.Load() {
		return nil, hubtest.ErrUnavailable
	}
	return o.Ledger.SubmitBatch(ctx, req)
}

func (o *outageLedger) Seen(ctx context.Context, device string, seqs []uint64) (*api.SeenAnswer, error) {
	if o.down.Load() {
		return nil, hubtest.ErrUnavailable
	}
	return o.Ledger.Seen(ctx, device, seqs)
}

// outageFixture is a hub on an outageLedger with a clock the test moves.
type outageFixture struct {
	*fixture
	ol    *outageLedger
	clock *fakeClock
}

func newOutageFixture(t *testing.T, opts ...func(*Config)) *outageFixture {
	t.Helper()
	fx := &fixture{ledger: hubtest.NewLedger(), dir: t.TempDir()}
	of := &outageFixture{fixture: fx, ol: &outageLedger{Ledger: fx.ledger},
		clock: &fakeClock{t: time.UnixMilli(time.Now().UnixMilli())}} // a token's time has milliseconds
	fx.start(t, append([]func(*Config){func(c *Config) { c.Ledger, c.Now = of.ol, of.clock.Now }}, opts...)...)
	return of
}

// dial connects d with a token of the hub's clock.
func (of *outageFixture) dial(t *testing.T, d *device) (*v5, *paho.Connack, error) {
	t.Helper()
	return dialV5(t, of.hub.MQTTAddr(), d.id, d.id, d.token(t, testHubID, of.clock.Now()))
}

func (of *outageFixture) advance(d time.Duration) { of.clock.Set(of.clock.Now().Add(d)) }

func staleLookups(h *Hub, lookup string) float64 {
	return testutil.ToFloat64(h.dir.staleServed.WithLabelValues(lookup))
}

func TestKnownDeviceIsAcceptedThroughATenMinuteLedgerOutage(t *testing.T) {
	of := newOutageFixture(t)
	d := of.enroll(t, "cold-1", api.StatusActive)
	stranger := of.enroll(t, "cold-2", api.StatusActive) // enrolled, never seen by this hub
	m, _, err := of.dial(t, d)
	require.NoError(t, err)
	topic := wire.Topic(d.id, wire.KindTelemetry)
	_, err = m.publish(t, topic, d.reading(t, 1, 1))
	require.NoError(t, err)
	eventually(t, func() bool { return of.ledger.Committed()[hubtest.Key(d.id, 1)] == 1 }, "reading 1 not committed")

	// The peers stop answering for eleven minutes, many times the
	// device cache's lifetime: every reading is accepted all along.
	of.ol.down.Store(true)
	want := keys(d.id, 1)
	seq := uint64(2)
	for minute := 1; minute <= 11; minute++ {
		of.advance(time.Minute)
		pr, err := m.publish(t, topic, d.reading(t, seq, 2))
		require.NoError(t, err, "reading %d, %d min into the outage", seq, minute)
		require.Less(t, pr.ReasonCode, byte(0x80))
		want = append(want, hubtest.Key(d.id, seq))
		seq++
	}
	// The known device reconnects and goes on; an unknown one is refused
	// as the hub's trouble, as before.
	require.NoError(t, m.c.Disconnect(&paho.Disconnect{}))
	m, ca, err := of.dial(t, d)
	require.NoError(t, err, "a known device reconnecting during the outage is let in")
	require.Equal(t, byte(0), ca.ReasonCode)
	_, err = m.publish(t, topic, d.reading(t, seq, 3))
	require.NoError(t, err)
	want = append(want, hubtest.Key(d.id, seq))
	_, ca, err = of.dial(t, stranger)
	require.Error(t, err)
	require.Equal(t, packets.ErrServerUnavailable.Code, ca.ReasonCode)
	require.Equal(t, 1.0, authFailures(of.hub, "ledger_unavailable"))
	require.Positive(t, staleLookups(of.hub, "device"))
	require.Len(t, of.ledger.Committed(), 1, "nothing reaches the ledger while it is down")

	// The ledger is back: everything accepted is committed, once.
	of.ol.down.Store(false)
	eventually(t, func() bool { return of.hub.Outbox().Depth() == 0 }, "outbox not drained (depth %d)", of.hub.Outbox().Depth())
	requireExactlyOnce(t, of.ledger, want)

	// A revocation right after the outage acts at once: the device is
	// disconnected, and the ledger's answer, not the stale entry, decides
	// its reconnection.
	of.ledger.SetStatus(d.id, api.StatusRevoked)
	of.ledger.Events <- api.Event{Type: api.EventDeviceStatus, Devices: []string{d.id}, Revocations: []string{d.id},
		StatusChanges: []api.StatusChange{{Device: d.id, From: api.StatusActive, To: api.StatusRevoked}}}
	select {
	case <-m.disconnected:
	case <-time.After(waitFor):
		t.Fatal("revoked device still connected after the outage")
	}
	_, _, err = of.dial(t, d)
	require.Error(t, err)
	require.Equal(t, 1.0, authFailures(of.hub, "device_inactive"))
}

func TestStaleDeviceRecordsServeNoLongerThanTheirBound(t *testing.T) {
	of := newOutageFixture(t, func(c *Config) { c.StaleIfError = 15 * time.Minute })
	d := of.enroll(t, "cold-1", api.StatusActive)
	m, _, err := of.dial(t, d)
	require.NoError(t, err)
	require.NoError(t, m.c.Disconnect(&paho.Disconnect{}))
	of.ol.down.Store(true)

	of.advance(14 * time.Minute)
	m, _, err = of.dial(t, d)
	require.NoError(t, err, "within the bound")
	require.NoError(t, m.c.Disconnect(&paho.Disconnect{}))

	of.advance(2 * time.Minute)
	_, ca, err := of.dial(t, d)
	require.Error(t, err, "past the bound the hub no longer vouches for the device")
	require.Equal(t, packets.ErrServerUnavailable.Code, ca.ReasonCode)
	require.Equal(t, 1.0, authFailures(of.hub, "ledger_unavailable"))
}

func TestOutageNeverLetsInWhatTheLedgerRefused(t *testing.T) {
	of := newOutageFixture(t)
	suspended := of.enroll(t, "susp-1", api.StatusSuspended)
	denied := of.enroll(t, "foreign-1", api.StatusActive)
	of.ledger.Set(func(f *hubtest.Ledger) { f.DenyWrite[denied.id] = true })
	key, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	unknown := &device{id: "ghost-1", signer: key}
	refused := []*device{suspended, denied, unknown}
	for _, d := range refused { // looked up and refused by the ledger's answer
		_, _, err := of.dial(t, d)
		require.Error(t, err, d.id)
	}
	require.Equal(t, 1.0, authFailures(of.hub, "device_inactive"))
	require.Equal(t, 1.0, authFailures(of.hub, "hub_not_authorized"))
	require.Equal(t, 1.0, authFailures(of.hub, "unknown_device"))

	of.ol.down.Store(true)
	of.advance(2 * time.Minute)
	for _, d := range refused {
		_, ca, err := of.dial(t, d)
		require.Error(t, err, d.id)
		require.Equal(t, packets.ErrServerUnavailable.Code, ca.ReasonCode, "%s: the hub cannot tell, so it does not let it in", d.id)
	}
	require.Equal(t, 3.0, authFailures(of.hub, "ledger_unavailable"))
	require.Zero(t, staleLookups(of.hub, "device"))
}

func TestDeviceMessageAllowOutlastsAnOutageAndADenyStaysRefused(t *testing.T) {
	of := newOutageFixture(t)
	a := of.enroll(t, "dev-a", api.StatusActive)
	b := of.enroll(t, "dev-b", api.StatusActive)
	c := of.enroll(t, "dev-c", api.StatusActive)
	of.ledger.Set(func(f *hubtest.Ledger) { f.Messaging[[2]string{a.id, b.id}] = true })
	ma, _, err := of.dial(t, a)
	require.NoError(t, err)
	mb, _, err := of.dial(t, b)
	require.NoError(t, err)
	mc, _, err := of.dial(t, c)
	require.NoError(t, err)
	require.Equal(t, []byte{1}, mb.subscribe(t, wire.Topic(b.id, wire.KindInbox)))
	inbox := wire.Topic(b.id, wire.KindInbox)
	_, err = ma.publish(t, inbox, []byte(`{"n":1}`))
	require.NoError(t, err)
	mb.next(t, inbox)
	_, err = mc.publish(t, inbox, []byte(`{"n":1}`))
	require.Error(t, err, "c may not message b")

	of.ol.down.Store(true)
	of.advance(5 * time.Minute) // far past the decision cache's lifetime
	_, err = ma.publish(t, inbox, []byte(`{"n":2}`))
	require.NoError(t, err, "an allow is served stale while the ledger does not answer")
	mb.next(t, inbox)
	require.Positive(t, staleLookups(of.hub, "device_message"))
	_, err = mc.publish(t, inbox, []byte(`{"n":2}`))
	require.Error(t, err, "a deny is never extended into an allow")
}

func TestKnownDeviceIsAnsweredWithinItsTimeoutsWhenThePeerHangs(t *testing.T) {
	// A ledger call may wait a minute; the device's PUBACK and CONNACK
	// cannot (waitFor, 10 s, here; a device's own timeouts are 30 s and
	// 10 s by default).
	of := newOutageFixture(t, func(c *Config) { c.LedgerTimeout = time.Minute })
	d := of.enroll(t, "cold-1", api.StatusActive)
	m, _, err := of.dial(t, d)
	require.NoError(t, err)
	of.ol.hang.Store(true)
	of.advance(2 * time.Minute)
	for seq := uint64(1); seq <= 2; seq++ { // the first asks the ledger, the second not
		_, err = m.publish(t, wire.Topic(d.id, wire.KindTelemetry), d.reading(t, seq, 1))
		require.NoError(t, err, "reading %d", seq)
	}
	require.NoError(t, m.c.Disconnect(&paho.Disconnect{}))
	of.advance(staleProbeInterval) // the reconnection asks the ledger again
	_, _, err = of.dial(t, d)
	require.NoError(t, err, "a known device reconnecting to a hub whose peer hangs")
	of.ol.hang.Store(false)
	eventually(t, func() bool { return of.hub.Outbox().Depth() == 0 }, "outbox not drained")
	requireExactlyOnce(t, of.ledger, keys(d.id, 1, 2))
}
