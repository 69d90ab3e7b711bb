package bench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/index"
)

func newTestObserver() *observer {
	return &observer{arrived: map[uint64]time.Time{}, stopped: make(chan struct{})}
}

// batchTx is a valid telemetry batch of readings of dev.
func batchTx(dev string, seqs ...uint64) index.Transaction {
	t := index.Transaction{ValidationCode: "VALID", Function: api.ContractTelemetry + ":SubmitBatch",
		Event: &api.Event{Type: api.EventTelemetryBatch, Batch: &api.BatchSummary{Size: len(seqs)}}}
	for _, s := range seqs {
		t.Readings = append(t.Readings, index.Reading{Device: dev, Seq: s})
	}
	return t
}

func TestObserverTimesReadingsOfValidBatchesByTheirBlocksArrival(t *testing.T) {
	o := newTestObserver()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	o.recordReadings(true)
	o.arrive(0, t0)
	o.apply(&index.Block{Number: 0, Transactions: []index.Transaction{batchTx("d1", 1, 2)}})
	// A transaction the peers invalidated commits nothing, whatever its
	// arguments say.
	conflict := batchTx("d1", 3)
	conflict.ValidationCode = "MVCC_READ_CONFLICT"
	o.arrive(1, t0.Add(time.Second))
	o.apply(&index.Block{Number: 1, Transactions: []index.Transaction{conflict, batchTx("d2", 1)}})

	at, ok := o.readingCommitted("d1", 2)
	require.True(t, ok)
	require.Equal(t, t0, at, "the arrival time, not when the block was verified")
	at, ok = o.readingCommitted("d2", 1)
	require.True(t, ok)
	require.Equal(t, t0.Add(time.Second), at)
	_, ok = o.readingCommitted("d1", 3)
	require.False(t, ok, "a reading of an invalid transaction was not committed")

	batches, readings := o.committedBetween(t0, t0.Add(time.Second))
	require.Equal(t, [2]int64{1, 2}, [2]int64{batches, readings}, "block 1 arrived at the end of the window")

	o.recordReadings(false)
	_, ok = o.readingCommitted("d1", 2)
	require.False(t, ok)
}

func TestObserverCountsValidationCodesOfABlockRange(t *testing.T) {
	o := newTestObserver()
	codes := [][]string{
		{"VALID", "MVCC_READ_CONFLICT"},             // block 0, before the range
		{"VALID", "VALID", "PHANTOM_READ_CONFLICT"}, // block 1
		{"MVCC_READ_CONFLICT", "ENDORSEMENT_POLICY_FAILURE", "VALID"},
	}
	for n, cs := range codes {
		b := &index.Block{Number: uint64(n)}
		for _, c := range cs {
			b.Transactions = append(b.Transactions, index.Transaction{ValidationCode: c})
		}
		o.apply(b)
	}
	v := o.validation(1, 3)
	require.Equal(t, &Validation{FromBlock: 1, ToBlock: 3, Transactions: 6, Conflicts: 2,
		Invalid: map[string]int64{"MVCC_READ_CONFLICT": 1, "PHANTOM_READ_CONFLICT": 1, "ENDORSEMENT_POLICY_FAILURE": 1}}, v)
	require.Equal(t, &Validation{FromBlock: 3, ToBlock: 3}, o.validation(3, 3))
}

func TestObserverHandsValidTransactionsEventsToWatchers(t *testing.T) {
	o := newTestObserver()
	var got []string
	unwatch := o.watch(func(ev *api.Event, _ time.Time) { got = append(got, ev.Revocations...) })
	o.apply(&index.Block{Number: 0, Transactions: []index.Transaction{
		{ValidationCode: "VALID", Event: &api.Event{Type: api.EventDeviceStatus, Revocations: []string{"d1"}}},
	}})
	unwatch()
	o.apply(&index.Block{Number: 1, Transactions: []index.Transaction{
		{ValidationCode: "VALID", Event: &api.Event{Type: api.EventDeviceStatus, Revocations: []string{"d2"}}},
	}})
	require.Equal(t, []string{"d1"}, got)
}
