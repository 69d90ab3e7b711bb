package hub

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/hub/hubtest"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// laneLedger is the fake ledger with a record of the submissions in flight
// (SubmitBatch and SubmitPrivateBatchFor): which readings each carried and
// every time two in flight at once shared a device.
type laneLedger struct {
	*hubtest.Ledger
	// pause, when set, runs while a submission is in flight, before the
	// fake ledger sees it.
	pause func(ctx context.Context)

	mu          sync.Mutex
	next        int
	inFlight    map[int][]string // submission → its devices
	maxInFlight int
	overlaps    int        // pairs of submissions in flight at once sharing a device
	firstShared []string   // the first few of them, described
	submitted   [][]string // per submission, in order: its readings (hubtest.Key)
}

func newLaneLedger(l *hubtest.Ledger) *laneLedger {
	return &laneLedger{Ledger: l, inFlight: map[int][]string{}}
}

func (l *laneLedger) SubmitBatch(ctx context.Context, req api.BatchRequest) (*api.BatchReceipt, error) {
	defer l.track(req)()
	l.wait(ctx)
	return l.Ledger.SubmitBatch(ctx, req)
}

func (l *laneLedger) SubmitPrivateBatchFor(ctx context.Context, owner string, req api.BatchRequest) (*api.BatchReceipt, error) {
	defer l.track(req)()
	l.wait(ctx)
	return l.Ledger.SubmitPrivateBatchFor(ctx, owner, req)
}

func (l *laneLedger) wait(ctx context.Context) {
	if l.pause != nil {
		l.pause(ctx)
	}
}

// track records a submission as in flight until the returned func runs.
func (l *laneLedger) track(req api.BatchRequest) func() {
	var devs, keys []string
	for _, env := range req.Readings {
		r, err := env.Decode()
		if err != nil {
			continue
		}
		keys = append(keys, hubtest.Key(r.Device, r.Seq))
		if !slices.Contains(devs, r.Device) {
			devs = append(devs, r.Device)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.next++
	call := l.next
	for other, odevs := range l.inFlight {
		for _, d := range devs {
			if slices.Contains(odevs, d) {
				l.overlaps++
				if len(l.firstShared) < 5 {
					l.firstShared = append(l.firstShared, fmt.Sprintf("submissions %d and %d both hold %s", other, call, d))
				}
			}
		}
	}
	l.inFlight[call] = devs
	l.maxInFlight = max(l.maxInFlight, len(l.inFlight))
	l.submitted = append(l.submitted, keys)
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		delete(l.inFlight, call)
	}
}

func (l *laneLedger) report() (maxInFlight int, submitted [][]string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.maxInFlight, slices.Clone(l.submitted)
}

// requireNoSharedDevice checks that no two submissions in flight at once
// shared a device.
func (l *laneLedger) requireNoSharedDevice(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	require.Zero(t, l.overlaps, "submissions in flight at once shared a device %d times, e.g. %v", l.overlaps, l.firstShared)
}

// jitter keeps a submission in flight for up to 2ms, so that submissions
// overlap in time.
func jitter(ctx context.Context) {
	sleepCtx(ctx, time.Duration(rand.IntN(2000))*time.Microsecond)
}

// requireDeviceOrder checks that each device's readings were committed in
// seq order: a later reading in the same transaction after the earlier, or
// in a later transaction (the fake ledger numbers them as they arrive).
func requireDeviceOrder(t *testing.T, l *hubtest.Ledger, seqs map[string]uint64) {
	t.Helper()
	for dev, last := range seqs {
		prevTx, prevIndex := -1, -1
		for seq := uint64(1); seq <= last; seq++ {
			sr, err := l.Reading(t.Context(), dev, seq)
			require.NoError(t, err, "%s/%d", dev, seq)
			tx, err := strconv.Atoi(strings.TrimPrefix(sr.BatchID, "tx"))
			require.NoError(t, err)
			require.True(t, tx > prevTx || tx == prevTx && sr.Index > prevIndex,
				"%s/%d committed in %s at %d, before seq %d (tx%d at %d)", dev, seq, sr.BatchID, sr.Index, seq-1, prevTx, prevIndex)
			prevTx, prevIndex = tx, sr.Index
		}
	}
}

// signedRecords signs readings from..to of each device, interleaved in
// acceptance order (seq from of every device, then from+1, ...), as outbox
// records.
func signedRecords(t *testing.T, devs []*device, from, to uint64) []Record {
	t.Helper()
	var recs []Record
	for seq := from; seq <= to; seq++ {
		for _, d := range devs {
			env, err := reading.ParseEnvelope(d.reading(t, seq, 5))
			require.NoError(t, err)
			r, err := env.Decode()
			require.NoError(t, err)
			recs = append(recs, Record{Device: d.id, Seq: seq, Envelope: env, Leaf: reading.Hash(r.LeafHash())})
		}
	}
	return recs
}

func appendRecords(t *testing.T, ob *Outbox, recs []Record) {
	t.Helper()
	for _, r := range recs {
		res, err := ob.Append(r)
		require.NoError(t, err)
		require.Equal(t, Appended, res)
	}
}

func TestBatchesInFlightNeverShareADevice(t *testing.T) {
	for _, tc := range []struct {
		name    string
		private bool // half the devices are private (SubmitPrivateBatchFor)
		failing bool // the ledger fails some submissions, before or after committing
	}{
		{name: "public devices"},
		{name: "public and private devices", private: true},
		{name: "ledger failing now and then", failing: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := &fixture{ledger: hubtest.NewLedger(), dir: t.TempDir()}
			// The ledger answers nothing until every reading is accepted (a
			// backlog builds up, as under load), then takes up to 2ms each.
			gate := make(chan struct{})
			ll := newLaneLedger(fx.ledger)
			ll.pause = func(ctx context.Context) {
				select {
				case <-gate:
				case <-ctx.Done():
				}
				jitter(ctx)
			}
			if tc.failing {
				fx.ledger.Set(func(f *hubtest.Ledger) {
					f.FailSubmit = func(call int) string {
						switch {
						case call%7 == 0:
							return "before"
						case call%11 == 0:
							return "after"
						}
						return ""
					}
				})
			}
			fx.start(t, func(c *Config) {
				c.Ledger = ll
				c.BatchSize = 10
				c.Submitters = 8
				c.BatchWait = 5 * time.Millisecond
			})
			const fastReadings, slowReadings = 120, 4
			var fast, slow []*device
			for i := range 3 {
				fast = append(fast, fx.enroll(t, fmt.Sprintf("fast-%d", i), api.StatusActive))
			}
			for i := range 30 {
				d := fx.enroll(t, fmt.Sprintf("slow-%02d", i), api.StatusActive)
				if tc.private && i%2 == 0 {
					fx.ledger.SetPrivate(d.id)
				}
				slow = append(slow, d)
			}
			// Each fast device sends in its own goroutine; the slow ones
			// share one, a reading of each in turn.
			streams := [][]Record{}
			for _, d := range fast {
				streams = append(streams, signedRecords(t, []*device{d}, 1, fastReadings))
			}
			streams = append(streams, signedRecords(t, slow, 1, slowReadings))
			want := map[string]uint64{}
			var keys []string
			for _, s := range streams {
				for _, r := range s {
					want[r.Device] = max(want[r.Device], r.Seq)
					keys = append(keys, hubtest.Key(r.Device, r.Seq))
				}
			}
			var wg sync.WaitGroup
			refusals := make(chan string, len(keys))
			for _, s := range streams {
				wg.Go(func() {
					for _, r := range s {
						if ref := fx.hub.ingestReading(r.Device, r.Envelope.Encode()); ref != nil {
							refusals <- fmt.Sprintf("%s/%d: %s %s", r.Device, r.Seq, ref.reason, ref.msg)
						}
					}
				})
			}
			wg.Wait()
			close(gate)
			close(refusals)
			for r := range refusals {
				t.Errorf("reading refused: %s", r)
			}
			eventually(t, func() bool { return fx.hub.Outbox().Depth() == 0 }, "outbox not drained (depth %d)", fx.hub.Outbox().Depth())

			ll.requireNoSharedDevice(t)
			maxInFlight, _ := ll.report()
			require.Greater(t, maxInFlight, 1, "the submissions never overlapped: the test proves nothing")
			requireExactlyOnce(t, fx.ledger, keys)
			requireDeviceOrder(t, fx.ledger, want)
			if tc.private {
				require.Positive(t, fx.ledger.PrivateSubmits())
			}
			require.Zero(t, testutil.ToFloat64(fx.hub.metrics.ledgerRejected.WithLabelValues("invalid_argument")))
		})
	}
}

func TestFastDeviceHoldsUpOthersByNoMoreThanItsOwnBatch(t *testing.T) {
	fx := &fixture{ledger: hubtest.NewLedger(), dir: t.TempDir()}
	fast := fx.enroll(t, "fast-1", api.StatusActive)
	var slow []*device
	for i := range 5 {
		slow = append(slow, fx.enroll(t, fmt.Sprintf("slow-%d", i), api.StatusActive))
	}
	// The fast device's backlog was accepted first, then two readings of
	// each slow device.
	ob, err := OpenOutbox(fx.dir + "/outbox.db")
	require.NoError(t, err)
	appendRecords(t, ob, signedRecords(t, []*device{fast}, 1, 100))
	slowRecs := signedRecords(t, slow, 1, 2)
	appendRecords(t, ob, slowRecs)
	require.NoError(t, ob.Close())

	// The ledger holds every submission until the gate opens.
	gate := make(chan struct{})
	ll := newLaneLedger(fx.ledger)
	ll.pause = func(ctx context.Context) {
		select {
		case <-gate:
		case <-ctx.Done():
		}
	}
	fx.start(t, func(c *Config) { c.Ledger = ll; c.BatchSize = 10; c.Submitters = 4 })

	submittedOf := func(submitted [][]string, prefix string) (calls int, readings map[string]bool) {
		readings = map[string]bool{}
		for _, keys := range submitted {
			mine := false
			for _, k := range keys {
				if strings.HasPrefix(k, prefix) {
					mine, readings[k] = true, true
				}
			}
			if mine {
				calls++
			}
		}
		return calls, readings
	}
	// Every slow reading is submitted while the fast device's first batch
	// is still in flight.
	eventually(t, func() bool {
		_, submitted := ll.report()
		_, slowDone := submittedOf(submitted, "slow-")
		return len(slowDone) == len(slowRecs)
	}, "the slow devices' readings wait behind the fast device's backlog")
	_, submitted := ll.report()
	fastCalls, _ := submittedOf(submitted, fast.id+"/")
	require.Equal(t, 1, fastCalls, "the fast device has one batch in flight")
	require.Equal(t, 90.0, gauge(t, fx.hub, "iotledger_hub_readings_held_back"), "the rest of its backlog waits for that batch")

	close(gate)
	eventually(t, func() bool { return fx.hub.Outbox().Depth() == 0 }, "outbox not drained (depth %d)", fx.hub.Outbox().Depth())
	ll.requireNoSharedDevice(t)
	_, submitted = ll.report()
	fastCalls, _ = submittedOf(submitted, fast.id+"/")
	require.Equal(t, 10, fastCalls, "the fast device's backlog goes one full batch at a time")
	want := map[string]uint64{fast.id: 100}
	var keys []string
	for seq := uint64(1); seq <= 100; seq++ {
		keys = append(keys, hubtest.Key(fast.id, seq))
	}
	for _, r := range slowRecs {
		want[r.Device] = 2
		keys = append(keys, hubtest.Key(r.Device, r.Seq))
	}
	requireExactlyOnce(t, fx.ledger, keys)
	requireDeviceOrder(t, fx.ledger, want)
}

func TestRecoveredBatchesSharingADeviceAreNotSubmittedConcurrently(t *testing.T) {
	fx := &fixture{ledger: hubtest.NewLedger(), dir: t.TempDir()}
	a := fx.enroll(t, "cold-a", api.StatusActive)
	b := fx.enroll(t, "cold-b", api.StatusActive)
	c := fx.enroll(t, "cold-c", api.StatusActive)
	// A hub before device lanes crashed with five batches recorded, each
	// holding readings of both cold-a and cold-b; more were pending.
	ob, err := OpenOutbox(fx.dir + "/outbox.db")
	require.NoError(t, err)
	recs := signedRecords(t, []*device{a, b}, 1, 30)
	appendRecords(t, ob, recs)
	appendRecords(t, ob, signedRecords(t, []*device{c}, 1, 5))
	bs, err := ob.TakeBatches(10, 5, time.Now())
	require.NoError(t, err)
	require.Len(t, bs, 5)
	require.NoError(t, ob.Close())
	// The first of them had partly committed before the crash.
	req := api.BatchRequest{}
	for _, r := range bs[0].Readings[:4] {
		req.Readings = append(req.Readings, r.Envelope)
	}
	_, err = fx.ledger.SubmitBatch(t.Context(), req)
	require.NoError(t, err)

	ll := newLaneLedger(fx.ledger)
	ll.pause = jitter
	fx.start(t, func(c *Config) { c.Ledger = ll; c.BatchSize = 10; c.Submitters = 8 })
	eventually(t, func() bool { return fx.hub.Outbox().Depth() == 0 }, "outbox not drained (depth %d)", fx.hub.Outbox().Depth())

	ll.requireNoSharedDevice(t)
	var keys []string
	for _, r := range recs {
		keys = append(keys, hubtest.Key(r.Device, r.Seq))
	}
	for seq := uint64(1); seq <= 5; seq++ {
		keys = append(keys, hubtest.Key(c.id, seq))
	}
	requireExactlyOnce(t, fx.ledger, keys)
	requireDeviceOrder(t, fx.ledger, map[string]uint64{a.id: 30, b.id: 30, c.id: 5})
	require.Equal(t, 4.0, testutil.ToFloat64(fx.hub.metrics.alreadyOnLedger))
}

// gauge reads one of the hub's gauges.
func gauge(t *testing.T, h *Hub, name string) float64 {
	t.Helper()
	families, err := h.metrics.registry.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == name {
			require.Len(t, f.GetMetric(), 1)
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestReadingsFreedByACommittedBatchGoAtOnce: a device's readings that
// waited for its batch in flight are submitted as soon as that batch is
// resolved, not BatchWait later (they have waited a whole commit already).
func TestReadingsFreedByACommittedBatchGoAtOnce(t *testing.T) {
	fx := &fixture{ledger: hubtest.NewLedger(), dir: t.TempDir()}
	d := fx.enroll(t, "backlog-1", api.StatusActive)
	ob, err := OpenOutbox(fx.dir + "/outbox.db")
	require.NoError(t, err)
	appendRecords(t, ob, signedRecords(t, []*device{d}, 1, 15))
	require.NoError(t, ob.Close())

	gate := make(chan struct{})
	ll := newLaneLedger(fx.ledger)
	ll.pause = func(ctx context.Context) {
		select {
		case <-gate:
		case <-ctx.Done():
		}
	}
	// A BatchWait no test outlasts: only full batches and freed readings go.
	fx.start(t, func(c *Config) { c.Ledger = ll; c.BatchSize = 10; c.BatchWait = time.Hour })
	eventually(t, func() bool { _, s := ll.report(); return len(s) == 1 }, "the full batch is not submitted")
	require.Equal(t, 5.0, gauge(t, fx.hub, "iotledger_hub_readings_held_back"), "five readings wait for the device's batch in flight")

	close(gate)
	eventually(t, func() bool { return fx.hub.Outbox().Depth() == 0 }, "the five freed readings still wait (depth %d)", fx.hub.Outbox().Depth())
	_, submitted := ll.report()
	require.Len(t, submitted, 2)
	require.Len(t, submitted[1], 5, "the freed readings go together as the next batch")
	var keys []string
	for seq := uint64(1); seq <= 15; seq++ {
		keys = append(keys, hubtest.Key(d.id, seq))
	}
	requireExactlyOnce(t, fx.ledger, keys)
}
