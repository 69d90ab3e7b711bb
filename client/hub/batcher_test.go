package hub

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/hub/hubtest"
	"github.com/iotledger/iotledger/client/hub/wire"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
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
	// After an unknown outcome the hub asks the replay state, not the
	// ledger's REPLAY refusal, whether the batch committed.
	require.Positive(t, testutil.ToFloat64(fx.hub.metrics.alreadyOnLedger))
	require.Zero(t, fx.ledger.Refused(), "refused transactions")
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

// commitDirectly puts readings on the fake ledger as one earlier
// transaction, as a crashed hub (or another hub) left them.
func commitDirectly(t *testing.T, l *hubtest.Ledger, recs []Record) {
	t.Helper()
	req := api.BatchRequest{}
	for _, r := range recs {
		req.Readings = append(req.Readings, r.Envelope)
	}
	_, err := l.SubmitBatch(t.Context(), req)
	require.NoError(t, err)
}

// keys names readings of a device as hubtest.Key does.
func keys(dev string, seqs ...uint64) []string {
	out := make([]string, len(seqs))
	for i, s := range seqs {
		out[i] = hubtest.Key(dev, s)
	}
	return out
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func TestRestartedHubRechecksInFlightBatchAndSubmitsNothingTwice(t *testing.T) {
	// telemetry:Seen answers a caller that may telemetry:write the device
	// (the hub, for the devices it submits) or telemetry:read it, so the
	// hub role's default (no telemetry:read) makes no difference.
	for _, denyReads := range []bool{false, true} {
		t.Run(fmt.Sprintf("hub may read telemetry=%v", !denyReads), func(t *testing.T) {
			fx := &fixture{ledger: hubtest.NewLedger(), dir: t.TempDir()}
			fx.ledger.DenyReads = denyReads
			d := fx.enroll(t, "cold-1", api.StatusActive)
			seqs := seqRange(1, 12)
			recs := seedOutbox(t, fx.dir, d, seqs, 8)
			// The crashed hub's in-flight batch had partly committed: seqs 1-5
			// are on the ledger already (as one earlier transaction).
			commitDirectly(t, fx.ledger, recs[:5])
			before := fx.ledger.Submits()

			fx.start(t)
			eventually(t, func() bool { return fx.hub.Outbox().Depth() == 0 }, "outbox not drained")
			requireExactlyOnce(t, fx.ledger, keys(d.id, seqs...))
			require.Equal(t, 5.0, testutil.ToFloat64(fx.hub.metrics.alreadyOnLedger))
			// Only 6-8 and then the pending 9-12 were submitted: no
			// transaction was refused (REPLAY) and none bisected.
			require.Zero(t, fx.ledger.Refused(), "refused transactions")
			require.Equal(t, 2, fx.ledger.Submits()-before, "transactions")
			require.Positive(t, fx.ledger.SeenCalls())
			require.Zero(t, testutil.ToFloat64(fx.hub.metrics.ledgerRejected.WithLabelValues("replay")))
		})
	}
}

func TestRecoveredBatchOfAPrivateDeviceAsksTheOwnersReplayState(t *testing.T) {
	fx := &fixture{ledger: hubtest.NewLedger(), dir: t.TempDir()}
	d := fx.enroll(t, "vitals-1", api.StatusActive)
	fx.ledger.SetPrivate(d.id) // of Org1MSP, this hub's org (the fake's PeerOrg)
	seqs := seqRange(1, 10)
	recs := seedOutbox(t, fx.dir, d, seqs, 10)
	req := api.BatchRequest{}
	for _, r := range recs[:4] {
		req.Readings = append(req.Readings, r.Envelope)
	}
	_, err := fx.ledger.SubmitPrivateBatchFor(t.Context(), "Org1MSP", req)
	require.NoError(t, err)

	fx.start(t)
	eventually(t, func() bool { return fx.hub.Outbox().Depth() == 0 }, "outbox not drained")
	requireExactlyOnce(t, fx.ledger, keys(d.id, seqs...))
	require.Equal(t, 4.0, testutil.ToFloat64(fx.hub.metrics.alreadyOnLedger))
	require.Zero(t, fx.ledger.Refused(), "refused transactions")
	require.Equal(t, 2, fx.ledger.PrivateSubmits(), "private transactions: the seeded one and 5-10")
}

func TestRecoveredBatchTheReplayStateCannotAnswerForIsLeftToTheReplayRefusal(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(l *hubtest.Ledger, dev string)
	}{
		// The replay state of another org's private device is in that
		// org's collection: this hub's peers cannot answer for it.
		{"another org's private device", func(l *hubtest.Ledger, dev string) { l.SetPrivate(dev); l.SetOwner(dev, "Org2MSP") }},
		{"peer down for telemetry:Seen", func(l *hubtest.Ledger, _ string) { l.Set(func(f *hubtest.Ledger) { f.SeenDown = true }) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := &fixture{ledger: hubtest.NewLedger(), dir: t.TempDir()}
			d := fx.enroll(t, "cold-1", api.StatusActive)
			seqs := seqRange(1, 12)
			recs := seedOutbox(t, fx.dir, d, seqs, 8)
			tc.setup(fx.ledger, d.id)
			req := api.BatchRequest{}
			for _, r := range recs[:5] {
				req.Readings = append(req.Readings, r.Envelope)
			}
			if owner := "Org2MSP"; tc.name == "another org's private device" {
				_, err := fx.ledger.SubmitPrivateBatchFor(t.Context(), owner, req)
				require.NoError(t, err)
			} else {
				_, err := fx.ledger.SubmitBatch(t.Context(), req)
				require.NoError(t, err)
			}

			fx.start(t)
			eventually(t, func() bool { return fx.hub.Outbox().Depth() == 0 }, "outbox not drained")
			requireExactlyOnce(t, fx.ledger, keys(d.id, seqs...))
			// The ledger refused the batch as REPLAY, and bisecting found
			// each reading it had.
			require.Positive(t, fx.ledger.Refused())
			require.Equal(t, 5.0, testutil.ToFloat64(fx.hub.metrics.alreadyOnLedger))
		})
	}
}

func TestRecoveredReadingsBelowTheReplayWindowAreDroppedNotSubmitted(t *testing.T) {
	fx := &fixture{ledger: hubtest.NewLedger(), dir: t.TempDir()}
	d := fx.enroll(t, "cold-1", api.StatusActive)
	seqs := seqRange(1, 12)
	recs := seedOutbox(t, fx.dir, d, seqs, 8)
	// Seqs 1-5 of the in-flight batch committed before the crash; then the
	// device went on through another hub, up to seq 1030. The ledger's
	// window (1,024) now starts above 6: 1-6 are below it, whether on the
	// ledger (1-5) or not (6), and 7-12 are not seen.
	commitDirectly(t, fx.ledger, recs[:5])
	env, err := reading.ParseEnvelope(d.reading(t, 1030, 3))
	require.NoError(t, err)
	_, err = fx.ledger.SubmitBatch(t.Context(), api.BatchRequest{Readings: []reading.Envelope{env}})
	require.NoError(t, err)
	ans, err := fx.ledger.Seen(t.Context(), d.id, []uint64{6, 7})
	require.NoError(t, err)
	require.Equal(t, []api.SeqSeen{{Seq: 6, State: api.SeqBelowWindow}, {Seq: 7, State: api.SeqNotSeen}}, ans.Seqs)

	fx.start(t)
	eventually(t, func() bool { return fx.hub.Outbox().Depth() == 0 }, "outbox not drained")
	// 6 is lost: the ledger can never take it. Nothing was submitted in
	// vain, and nothing was counted as on the ledger that may not be.
	requireExactlyOnce(t, fx.ledger, append(keys(d.id, 1, 2, 3, 4, 5, 1030), keys(d.id, seqRange(7, 12)...)...))
	require.Zero(t, fx.ledger.Refused(), "refused transactions")
	require.Equal(t, 6.0, testutil.ToFloat64(fx.hub.metrics.ledgerRejected.WithLabelValues(reasonBelowWindow)))
	require.Zero(t, testutil.ToFloat64(fx.hub.metrics.alreadyOnLedger))
}

func TestRecoveredBatchAsksTheReplayStateAtMost500SequenceNumbersACall(t *testing.T) {
	fx := &fixture{ledger: hubtest.NewLedger(), dir: t.TempDir()}
	d := fx.enroll(t, "cold-1", api.StatusActive)
	seqs := seqRange(1, 600)
	// One batch of 600 readings, as a hub with BatchSize 600 recorded it,
	// seqs 1-550 on the ledger.
	recs := make([]Record, len(seqs))
	for i, seq := range seqs {
		env, err := reading.ParseEnvelope(d.reading(t, seq, 3))
		require.NoError(t, err)
		r, err := env.Decode()
		require.NoError(t, err)
		recs[i] = Record{Device: d.id, Seq: seq, Envelope: env, Leaf: reading.Hash(r.LeafHash())}
	}
	ob, err := OpenOutbox(fx.dir + "/outbox.db")
	require.NoError(t, err)
	var wg sync.WaitGroup
	for _, rec := range recs { // at once: the outbox groups concurrent appends into one transaction
		wg.Go(func() {
			res, err := ob.Append(rec)
			assert.NoError(t, err)
			assert.Equal(t, Appended, res)
		})
	}
	wg.Wait()
	b, err := ob.TakeBatch(len(recs), time.Now())
	require.NoError(t, err)
	require.Len(t, b.Readings, len(recs))
	require.NoError(t, ob.Close())
	commitDirectly(t, fx.ledger, recs[:550])

	fx.start(t, func(c *Config) { c.BatchSize = api.MaxBatchReadings }) // the recovered batch is larger: an older hub recorded it
	eventually(t, func() bool { return fx.hub.Outbox().Depth() == 0 }, "outbox not drained")
	requireExactlyOnce(t, fx.ledger, keys(d.id, seqs...))
	require.Equal(t, 550.0, testutil.ToFloat64(fx.hub.metrics.alreadyOnLedger))
	require.Zero(t, fx.ledger.Refused(), "refused transactions")
	require.Equal(t, 2, fx.ledger.SeenCalls(), "Seen calls: 500 + 100 sequence numbers")
}

func TestReplayRefusedBatchIsSortedOutByTheReplayStateNotByBisecting(t *testing.T) {
	fx := &fixture{ledger: hubtest.NewLedger(), dir: t.TempDir()}
	d := fx.enroll(t, "cold-1", api.StatusActive)
	ob, err := OpenOutbox(fx.dir + "/outbox.db")
	require.NoError(t, err)
	var recs []Record
	for seq := uint64(1); seq <= 10; seq++ {
		env, err := reading.ParseEnvelope(d.reading(t, seq, 3))
		require.NoError(t, err)
		r, err := env.Decode()
		require.NoError(t, err)
		rec := Record{Device: d.id, Seq: seq, Envelope: env, Leaf: reading.Hash(r.LeafHash())}
		_, err = ob.Append(rec)
		require.NoError(t, err)
		recs = append(recs, rec)
	}
	require.NoError(t, ob.Close())
	// Another hub relayed 3 and 4 already; the rest of the device's
	// readings waited here (not a recovered batch: nothing is checked
	// before the first submit).
	commitDirectly(t, fx.ledger, recs[2:4])
	before := fx.ledger.Submits()

	fx.start(t, func(c *Config) { c.BatchSize = 10 })
	eventually(t, func() bool { return fx.hub.Outbox().Depth() == 0 }, "outbox not drained")
	requireExactlyOnce(t, fx.ledger, keys(d.id, seqRange(1, 10)...))
	require.Equal(t, 2.0, testutil.ToFloat64(fx.hub.metrics.alreadyOnLedger))
	// One refused transaction, then the other 8 in one: no bisecting.
	require.Equal(t, 1, fx.ledger.Refused())
	require.Equal(t, 2, fx.ledger.Submits()-before)
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
