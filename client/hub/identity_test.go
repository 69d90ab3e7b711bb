package hub

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/hub/hubtest"
	"github.com/iotledger/iotledger/client/hub/wire"
	"github.com/iotledger/iotledger/receipt"
)

// testConfig is the fixture's hub configuration (fixture.start).
func (fx *fixture) testConfig(opts ...func(*Config)) Config {
	cfg := Config{HubID: testHubID, MQTTAddr: "127.0.0.1:0", DataDir: fx.dir, BatchSize: 10, BatchWait: 20 * time.Millisecond,
		FlushTimeout: 2 * time.Second, Ledger: fx.ledger, Events: fx.ledger}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// startRefused starts a hub on the fixture's data dir and ledger and
// returns Start's error, which the test requires.
func (fx *fixture) startRefused(t *testing.T, opts ...func(*Config)) error {
	t.Helper()
	h, err := New(fx.testConfig(opts...))
	require.NoError(t, err)
	err = h.Start(t.Context())
	require.Error(t, err, "the hub started")
	require.NoError(t, h.Close())
	return err
}

// pinOutbox records in the fixture's outbox the ledger it belongs to, as a
// hub that drained into that ledger did.
func pinOutbox(t *testing.T, dir string, a receipt.Anchor) {
	t.Helper()
	ob, err := OpenOutbox(dir + "/outbox.db")
	require.NoError(t, err)
	defer func() { require.NoError(t, ob.Close()) }()
	rec, err := ob.PinLedger(a, time.Now())
	require.NoError(t, err)
	require.Equal(t, a, rec.Anchor)
}

// outboxState is what an outbox holds, read with the hub stopped.
type outboxState struct {
	depth, pending, batched, parked, acks int64
	ledger                                *LedgerRecord
}

func readOutbox(t *testing.T, dir string) outboxState {
	t.Helper()
	ob, err := OpenOutbox(dir + "/outbox.db")
	require.NoError(t, err)
	defer func() { require.NoError(t, ob.Close()) }()
	bs, err := ob.Batches()
	require.NoError(t, err)
	var batched int64
	for _, b := range bs {
		batched += int64(len(b.Readings))
	}
	rec, err := ob.Ledger()
	require.NoError(t, err)
	return outboxState{depth: ob.Depth(), pending: ob.Pending(), batched: batched, parked: ob.Parked(), acks: ob.PendingAcks(), ledger: rec}
}

func TestHubRefusesToDrainItsOutboxIntoAnotherLedger(t *testing.T) {
	networkA, networkB := hubtest.AnchorNamed("network-a"), hubtest.AnchorNamed("network-b")
	tests := []struct {
		name     string
		readings int // in the outbox: 5 in a recorded batch, the rest pending
		ack      bool
		want     string // in the error
	}{
		{name: "readings and an ack waiting", readings: 12, ack: true, want: "it holds 12 readings and 1 command acks"},
		// Even an empty outbox's duplicate index and event checkpoint are
		// of the other ledger's devices and blocks.
		{name: "nothing waiting", want: "it holds no readings"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fx := &fixture{ledger: hubtest.NewLedger(), dir: t.TempDir()}
			d := fx.enroll(t, "cold-1", api.StatusActive)
			seqs := seqRange(1, uint64(tc.readings))
			if tc.readings > 0 {
				seedOutbox(t, fx.dir, d, seqs, 5)
			}
			if tc.ack {
				ob, err := OpenOutbox(fx.dir + "/outbox.db")
				require.NoError(t, err)
				require.NoError(t, ob.AppendAck(AckRecord{Device: d.id, Command: "cmd-1", Envelope: reading.Envelope{Payload: []byte("{}"), Signature: []byte("s")}}))
				require.NoError(t, ob.Close())
			}
			pinOutbox(t, fx.dir, networkA)
			before := readOutbox(t, fx.dir)
			fx.ledger.Anchor = networkB

			err := fx.startRefused(t)
			var mismatch *LedgerMismatchError
			require.ErrorAs(t, err, &mismatch)
			require.Equal(t, networkA, mismatch.Recorded.Anchor)
			require.Equal(t, networkB, mismatch.Ledger)
			for _, want := range []string{networkA.Genesis, networkB.Genesis, fx.dir, "another --data", tc.want} {
				require.Contains(t, err.Error(), want)
			}
			require.Zero(t, fx.ledger.Submits(), "submitted to the other ledger")
			require.Zero(t, fx.ledger.SeenCalls(), "asked the other ledger about the outbox's readings")
			require.Equal(t, before, readOutbox(t, fx.dir), "the outbox changed")

			// Pointed at its own ledger again, the hub drains the outbox.
			fx.ledger.Anchor = networkA
			fx.start(t)
			eventually(t, func() bool { return fx.hub.Outbox().Depth() == 0 }, "outbox not drained")
			requireExactlyOnce(t, fx.ledger, keys(d.id, seqs...))
		})
	}
}

func TestHubRecordsTheLedgerOfANewOutboxAndStartsAgainOnIt(t *testing.T) {
	fx := newFixture(t)
	rec, err := fx.hub.Outbox().Ledger()
	require.NoError(t, err)
	require.NotNil(t, rec)
	require.Equal(t, fx.ledger.Anchor, rec.Anchor)
	require.NoError(t, fx.hub.Close())
	fx.start(t) // the same ledger: no refusal
	again, err := fx.hub.Outbox().Ledger()
	require.NoError(t, err)
	require.Equal(t, rec, again, "the record is kept, not remade")
}

func TestHubWithoutTheLedgersIdentityAcceptsReadingsAndSubmitsNone(t *testing.T) {
	fx := &fixture{ledger: hubtest.NewLedger(), dir: t.TempDir()}
	d := fx.enroll(t, "cold-1", api.StatusActive)
	fx.ledger.Set(func(f *hubtest.Ledger) { f.AnchorDown = true })
	fx.start(t, func(c *Config) { c.HTTPAddr = "127.0.0.1:0" })

	m := fx.connect(t, d)
	for seq := uint64(1); seq <= 5; seq++ {
		_, err := m.publish(t, wire.Topic(d.id, wire.KindTelemetry), d.reading(t, seq, 4))
		require.NoError(t, err, "reading %d not acknowledged", seq)
	}
	require.Equal(t, int64(5), fx.hub.Outbox().Depth())
	require.Never(t, func() bool { return fx.ledger.Submits() > 0 || fx.ledger.SeenCalls() > 0 }, time.Second, 10*time.Millisecond,
		"submitted before the ledger's identity was known")
	code, h := healthz(t, fx)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, IdentityUnverified, h.LedgerIdentity)
	require.Contains(t, h.LedgerIdentityReason, "nothing is submitted")
	require.Zero(t, fx.hub.metrics.registryGauge(t, "iotledger_hub_ledger_identity_verified"))
	rec, err := fx.hub.Outbox().Ledger()
	require.NoError(t, err)
	require.Nil(t, rec, "recorded a ledger it never heard from")

	fx.ledger.Set(func(f *hubtest.Ledger) { f.AnchorDown = false })
	eventually(t, func() bool { return fx.hub.Outbox().Depth() == 0 }, "outbox not drained once the identity was known")
	requireExactlyOnce(t, fx.ledger, keys(d.id, 1, 2, 3, 4, 5))
	code, h = healthz(t, fx)
	require.Equal(t, http.StatusOK, code, "%+v", h)
	require.Equal(t, IdentityVerified, h.LedgerIdentity)
	require.Equal(t, fx.ledger.Anchor, *h.LedgerAnchor)
	rec, err = fx.hub.Outbox().Ledger()
	require.NoError(t, err)
	require.Equal(t, fx.ledger.Anchor, rec.Anchor)
}

func TestHubThatLearnsLateItIsOnAnotherLedgerSubmitsNothing(t *testing.T) {
	fx := &fixture{ledger: hubtest.NewLedger(), dir: t.TempDir()}
	d := fx.enroll(t, "cold-1", api.StatusActive)
	seedOutbox(t, fx.dir, d, seqRange(1, 8), 4)
	pinOutbox(t, fx.dir, hubtest.AnchorNamed("network-a"))
	fx.ledger.Set(func(f *hubtest.Ledger) { f.Anchor = hubtest.AnchorNamed("network-b"); f.AnchorDown = true })
	fx.start(t, func(c *Config) { c.HTTPAddr = "127.0.0.1:0" })

	fx.ledger.Set(func(f *hubtest.Ledger) { f.AnchorDown = false })
	eventually(t, func() bool {
		_, h := healthz(t, fx)
		return h.LedgerIdentity == IdentityMismatch
	}, "the other ledger not noticed")
	require.Never(t, func() bool { return fx.ledger.Submits() > 0 || fx.ledger.SeenCalls() > 0 }, 500*time.Millisecond, 10*time.Millisecond,
		"submitted to the other ledger")
	code, h := healthz(t, fx)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, h.LedgerIdentityReason, hubtest.AnchorNamed("network-a").Genesis)
	require.Equal(t, int64(8), fx.hub.Outbox().Depth())
}

// registryGauge reads a gauge of the hub's registry by name.
func (m *metrics) registryGauge(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := m.registry.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			require.Len(t, mf.GetMetric(), 1)
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// logBuffer collects a hub's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), s)
}

func (b *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

func TestReadingsOfDevicesTheLedgerDoesNotKnowAreParkedNotDropped(t *testing.T) {
	fx := &fixture{ledger: hubtest.NewLedger(), dir: t.TempDir()}
	a := fx.enroll(t, "cold-a", api.StatusActive)
	b := fx.enroll(t, "cold-b", api.StatusActive)
	// A hub restarted on a ledger that does not know its devices (the
	// identity check aside: an outbox from before it, or records gone):
	// a batch in flight and readings pending, of both devices.
	var all []string
	ob, err := OpenOutbox(fx.dir + "/outbox.db")
	require.NoError(t, err)
	for _, d := range []*device{a, b} {
		for seq := uint64(1); seq <= 15; seq++ {
			env, err := reading.ParseEnvelope(d.reading(t, seq, 3))
			require.NoError(t, err)
			r, err := env.Decode()
			require.NoError(t, err)
			res, err := ob.Append(Record{Device: d.id, Seq: seq, Envelope: env, Leaf: reading.Hash(r.LeafHash())})
			require.NoError(t, err)
			require.Equal(t, Appended, res)
			all = append(all, hubtest.Key(d.id, seq))
		}
	}
	_, err = ob.TakeBatch(12, time.Now())
	require.NoError(t, err)
	require.NoError(t, ob.Close())
	fx.ledger.Forget(a.id)
	fx.ledger.Forget(b.id)

	logs := &logBuffer{}
	opts := func(c *Config) {
		c.HTTPAddr = "127.0.0.1:0"
		c.ParkedRecheck = 20 * time.Millisecond
		c.Logger = logs.logger()
	}
	fx.start(t, opts)
	eventually(t, func() bool { return fx.hub.Outbox().Parked() == 30 }, "readings not parked: %d", fx.hub.Outbox().Parked())
	require.Zero(t, fx.hub.Outbox().Depth())
	require.Empty(t, fx.ledger.Committed())
	require.Equal(t, 30.0, testutil.ToFloat64(fx.hub.metrics.parked.WithLabelValues(ParkReasonNotFound)))
	require.Equal(t, 30.0, fx.hub.metrics.registryGauge(t, "iotledger_hub_readings_parked"))
	require.Zero(t, testutil.ToFloat64(fx.hub.metrics.ledgerRejected.WithLabelValues("not_found")), "counted as refused")
	require.Equal(t, 2, logs.count("its readings are parked"), "logged once per device")
	code, h := healthz(t, fx)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, int64(30), h.Parked)
	require.Contains(t, h.ParkedReason, "iotledger hub parked list --data "+fx.dir)

	// The ledger knows device a again: its readings are submitted, once.
	fx.ledger.Enroll(a.id, a.signer.Public(), api.StatusActive)
	eventually(t, func() bool { return fx.hub.Outbox().Parked() == 15 && fx.hub.Outbox().Depth() == 0 }, "a's readings not unparked")
	requireExactlyOnce(t, fx.ledger, all[:15])
	require.Equal(t, 15.0, testutil.ToFloat64(fx.hub.metrics.unparked))

	// Device b, known again but suspended, stays parked: unparked, its
	// readings would be refused as DEVICE_INACTIVE and dropped.
	fx.ledger.Enroll(b.id, b.signer.Public(), api.StatusSuspended)
	require.Never(t, func() bool { return fx.hub.Outbox().Parked() != 15 }, 300*time.Millisecond, 10*time.Millisecond, "unparked while suspended")
	require.NoError(t, fx.hub.Close())

	// The operator's way, with the hub stopped: retry puts them back;
	// the hub (not looking on its own now) submits them once.
	ob, err = OpenOutbox(fx.dir + "/outbox.db")
	require.NoError(t, err)
	n, err := ob.Unpark(b.id)
	require.NoError(t, err)
	require.Equal(t, 15, n)
	require.NoError(t, ob.Close())
	fx.ledger.SetStatus(b.id, api.StatusActive)
	fx.start(t, func(c *Config) { c.ParkedRecheck = time.Hour })
	eventually(t, func() bool { return fx.hub.Outbox().Depth() == 0 }, "b's readings not submitted")
	requireExactlyOnce(t, fx.ledger, all)
	require.Zero(t, fx.hub.Outbox().Parked())
}

func TestOtherRefusalsStillDropTheReading(t *testing.T) {
	// Only NOT_FOUND parks: a reading refused for what it is (here, a
	// device that is not active) is dropped and counted as before.
	fx := newFixture(t)
	d := fx.enroll(t, "cold-1", api.StatusActive)
	m := fx.connect(t, d)
	fx.ledger.SetStatus(d.id, api.StatusSuspended)
	_, err := m.publish(t, wire.Topic(d.id, wire.KindTelemetry), d.reading(t, 1, 4))
	require.NoError(t, err)
	eventually(t, func() bool { return fx.hub.Outbox().Depth() == 0 }, "not resolved")
	require.Zero(t, fx.hub.Outbox().Parked())
	require.Equal(t, 1.0, testutil.ToFloat64(fx.hub.metrics.ledgerRejected.WithLabelValues("device_inactive")))
}
