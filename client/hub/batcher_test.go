package hub

import (
	"testing"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/hub/hubtest"
	"github.com/iotledger/iotledger/client/hub/wire"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// requireExactlyOnce checks that every (device, seq) in want is on the
// ledger exactly once and nothing else is.
func requireExactlyOnce(t *testing.T, l *hubtest.Ledger, want []string) {
	t.Helper()
	got := l.Committed()
	require.Len(t, got, len(want))
	for _, k := range want {
		require.Equal(t, 1, got[k], "reading %s committed %d times", k, got[k])
	}
}

func TestBatcherCommitsEachReadingOnceWhenTheLedgerFailsMidway(t *testing.T) {
	fx := newFixture(t, func(c *Config) { c.BatchSize = 7; c.Submitters = 3 })
	// Every third call fails before committing, every fourth commits and
	// then reports an error (the hub cannot know it committed).
	fx.ledger.Set(func(f *hubtest.Ledger) {
		f.FailSubmit = func(call int) string {
			switch {
			case call%3 == 0:
				return "before"
			case call%4 == 0:
				return "after"
			}
			return ""
		}
	})
	d1 := fx.enroll(t, "cold-1", api.StatusActive)
	d2 := fx.enroll(t, "cold-2", api.StatusActive)
	m1, m2 := fx.connect(t, d1), fx.connect(t, d2)
	var want []string
	for seq := uint64(1); seq <= 40; seq++ {
		_, err := m1.publish(t, wire.Topic(d1.id, wire.KindTelemetry), d1.reading(t, seq, 1))
		require.NoError(t, err)
		_, err = m2.publish(t, wire.Topic(d2.id, wire.KindTelemetry), d2.reading(t, seq, 2))
		require.NoError(t, err)
		want = append(want, hubtest.Key(d1.id, seq), hubtest.Key(d2.id, seq))
	}
	eventually(t, func() bool { return fx.hub.Outbox().Depth() == 0 }, "outbox not drained (depth %d)", fx.hub.Outbox().Depth())
	requireExactlyOnce(t, fx.ledger, want)
}

// seedOutbox writes readings into an outbox as a crashed hub would have
// left them: the first batch recorded (maybe in flight), the rest pending.
func seedOutbox(t *testing.T, dir string, d *device, seqs []uint64, batched int) []Record {
	t.Helper()
	ob, err := OpenOutbox(dir + "/outbox.db")
	require.NoError(t, err)
	defer func() { require.NoError(t, ob.Close()) }()
	var recs []Record
	for _, seq := range seqs {
		env, err := reading.ParseEnvelope(d.reading(t, seq, 3))
		require.NoError(t, err)
		r, err := env.Decode()
		require.NoError(t, err)
		rec := Record{Device: d.id, Seq: seq, Envelope: env, Leaf: reading.Hash(r.LeafHash())}
		res, err := ob.Append(rec)
		require.NoError(t, err)
		require.Equal(t, Appended, res)
		recs = append(recs, rec)
	}
	b, err := ob.TakeBatch(batched, time.Now())
	require.NoError(t, err)
	require.Len(t, b.Readings, batched)
	return recs
}

func TestRestartedHubRechecksInFlightBatchAndSubmitsNothingTwice(t *testing.T) {
	// TODO(index): this ran twice, with and without telemetry:read, while
	// the hub looked readings up with telemetry:Get; it now covers the
	// ledger's REPLAY refusal alone (see dropCommitted).
	fx := &fixture{ledger: hubtest.NewLedger(), dir: t.TempDir()}
	d := fx.enroll(t, "cold-1", api.StatusActive)
	seqs := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	recs := seedOutbox(t, fx.dir, d, seqs, 8)
	// The crashed hub's in-flight batch had partly committed: seqs 1-5
	// are on the ledger already (as one earlier transaction).
	req := api.BatchRequest{}
	for _, r := range recs[:5] {
		req.Readings = append(req.Readings, r.Envelope)
	}
	_, err := fx.ledger.SubmitBatch(t.Context(), req)
	require.NoError(t, err)

	fx.start(t)
	eventually(t, func() bool { return fx.hub.Outbox().Depth() == 0 }, "outbox not drained")
	var want []string
	for _, s := range seqs {
		want = append(want, hubtest.Key(d.id, s))
	}
	requireExactlyOnce(t, fx.ledger, want)
	require.Equal(t, 5.0, testutil.ToFloat64(fx.hub.metrics.alreadyOnLedger))
}

func TestLedgerRefusedReadingIsIsolatedAndTheRestCommitted(t *testing.T) {
	fx := &fixture{ledger: hubtest.NewLedger(), dir: t.TempDir()}
	good := fx.enroll(t, "cold-1", api.StatusActive)
	bad := fx.enroll(t, "cold-2", api.StatusActive)
	seedOutbox(t, fx.dir, good, []uint64{1, 2, 3, 4, 5, 6, 7}, 7)
	seedOutbox(t, fx.dir, bad, []uint64{1}, 1)
	// cold-2 was suspended after the hub accepted its reading.
	fx.ledger.SetStatus(bad.id, api.StatusSuspended)
	fx.start(t, func(c *Config) { c.BatchSize = 100 })
	eventually(t, func() bool { return fx.hub.Outbox().Depth() == 0 }, "outbox not drained")
	requireExactlyOnce(t, fx.ledger, []string{"cold-1/1", "cold-1/2", "cold-1/3", "cold-1/4", "cold-1/5", "cold-1/6", "cold-1/7"})
	require.Equal(t, 1.0, testutil.ToFloat64(fx.hub.metrics.ledgerRejected.WithLabelValues("device_inactive")))
}

func TestBisectIsolatesOneBadReadingInAFullBatch(t *testing.T) {
	fx := &fixture{ledger: hubtest.NewLedger(), dir: t.TempDir()}
	good := fx.enroll(t, "cold-1", api.StatusActive)
	bad := fx.enroll(t, "cold-2", api.StatusActive)
	ob, err := OpenOutbox(fx.dir + "/outbox.db")
	require.NoError(t, err)
	var want []string
	for seq := uint64(1); seq <= 20; seq++ {
		d := good
		if seq == 13 {
			d = bad
		}
		env, err := reading.ParseEnvelope(d.reading(t, seq, 1))
		require.NoError(t, err)
		r, err := env.Decode()
		require.NoError(t, err)
		_, err = ob.Append(Record{Device: d.id, Seq: seq, Envelope: env, Leaf: reading.Hash(r.LeafHash())})
		require.NoError(t, err)
		if d == good {
			want = append(want, hubtest.Key(d.id, seq))
		}
	}
	require.NoError(t, ob.Close())
	fx.ledger.SetStatus(bad.id, api.StatusRevoked)
	fx.start(t, func(c *Config) { c.BatchSize = 20; c.BatchWait = time.Second })
	eventually(t, func() bool { return fx.hub.Outbox().Depth() == 0 }, "outbox not drained")
	requireExactlyOnce(t, fx.ledger, want)
	require.Equal(t, 1.0, testutil.ToFloat64(fx.hub.metrics.ledgerRejected.WithLabelValues("device_inactive")))
}
