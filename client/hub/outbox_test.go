package hub

import (
	"testing"
	"time"

	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/stretchr/testify/require"
)

func TestPrunedAcceptancesAreForgottenAndRecentOnesKept(t *testing.T) {
	ob, err := OpenOutbox(t.TempDir() + "/outbox.db")
	require.NoError(t, err)
	defer func() { require.NoError(t, ob.Close()) }()
	now := time.Now()
	rec := func(seq uint64, leaf byte, at time.Time) Record {
		return Record{Device: "cold-1", Seq: seq, Leaf: reading.Hash{leaf}, ReceivedMS: at.UnixMilli(),
			Envelope: reading.Envelope{Payload: []byte("p"), Signature: []byte("s")}}
	}
	for seq := uint64(1); seq <= 5; seq++ {
		_, err := ob.Append(rec(seq, 1, now.Add(-48*time.Hour)))
		require.NoError(t, err)
	}
	_, err = ob.Append(rec(6, 1, now))
	require.NoError(t, err)

	n, err := ob.PruneSeen(now.Add(-24 * time.Hour))
	require.NoError(t, err)
	require.Equal(t, 5, n)
	old, err := ob.Contains("cold-1", 3)
	require.NoError(t, err)
	require.False(t, old)
	recent, err := ob.Contains("cold-1", 6)
	require.NoError(t, err)
	require.True(t, recent)

	res, err := ob.Append(rec(6, 2, now))
	require.NoError(t, err)
	require.Equal(t, Replay, res, "recent acceptances still refuse other content")
	res, err = ob.Append(rec(6, 1, now))
	require.NoError(t, err)
	require.Equal(t, Duplicate, res)
	// Pruning never touches the queue itself.
	require.Equal(t, int64(6), ob.Depth())
}

func TestSecondOpenOfALockedOutboxSaysWhy(t *testing.T) {
	path := t.TempDir() + "/outbox.db"
	ob, err := OpenOutbox(path)
	require.NoError(t, err)
	defer func() { require.NoError(t, ob.Close()) }()
	_, err = OpenOutbox(path)
	require.ErrorContains(t, err, "is another hub running with this data dir?")
}

func appendReadings(t *testing.T, ob *Outbox, device string, n int) {
	t.Helper()
	for seq := uint64(1); seq <= uint64(n); seq++ {
		res, err := ob.Append(Record{Device: device, Seq: seq, Leaf: reading.Hash{byte(seq)},
			Envelope: reading.Envelope{Payload: []byte("p"), Signature: []byte("s")}})
		require.NoError(t, err)
		require.Equal(t, Appended, res)
	}
}

func TestTakeBatchesRecordsSeveralBatchesOldestFirstAndTheySurviveAReopen(t *testing.T) {
	path := t.TempDir() + "/outbox.db"
	ob, err := OpenOutbox(path)
	require.NoError(t, err)
	appendReadings(t, ob, "cold-1", 23)

	bs, err := ob.TakeBatches(10, 2, time.Now())
	require.NoError(t, err)
	require.Len(t, bs, 2)
	var seqs []uint64
	for _, b := range bs {
		require.Len(t, b.Readings, 10)
		for _, r := range b.Readings {
			seqs = append(seqs, r.Seq)
		}
	}
	for i, s := range seqs {
		require.Equal(t, uint64(i+1), s, "readings leave the outbox in acceptance order")
	}
	require.Equal(t, int64(3), ob.Pending())
	require.Equal(t, int64(23), ob.Depth())

	// Asking for more than is pending gives one short batch, then none.
	rest, err := ob.TakeBatches(10, 5, time.Now())
	require.NoError(t, err)
	require.Len(t, rest, 1)
	require.Len(t, rest[0].Readings, 3)
	none, err := ob.TakeBatches(10, 5, time.Now())
	require.NoError(t, err)
	require.Empty(t, none)
	require.NoError(t, ob.Close())

	ob, err = OpenOutbox(path)
	require.NoError(t, err)
	defer func() { require.NoError(t, ob.Close()) }()
	recorded, err := ob.Batches()
	require.NoError(t, err)
	require.Len(t, recorded, 3)
	require.Equal(t, bs[0].Readings, recorded[0].Readings)
	require.Equal(t, int64(0), ob.Pending())
	require.Equal(t, int64(23), ob.Depth())
}

func TestTakeBatchesRefusesNonPositiveSizes(t *testing.T) {
	ob, err := OpenOutbox(t.TempDir() + "/outbox.db")
	require.NoError(t, err)
	defer func() { require.NoError(t, ob.Close()) }()
	appendReadings(t, ob, "cold-1", 3)
	for _, tc := range []struct{ max, n int }{{0, 1}, {1, 0}, {-1, 1}} {
		_, err := ob.TakeBatches(tc.max, tc.n, time.Now())
		require.ErrorContains(t, err, "must be positive")
	}
	require.Equal(t, int64(3), ob.Pending(), "a refused take moves nothing")
}

func TestResolveClearsABatchWholeOrKeepsItsUnresolvedReadings(t *testing.T) {
	path := t.TempDir() + "/outbox.db"
	ob, err := OpenOutbox(path)
	require.NoError(t, err)
	appendReadings(t, ob, "cold-1", 8)
	bs, err := ob.TakeBatches(4, 2, time.Now())
	require.NoError(t, err)
	require.Len(t, bs, 2)
	ids := func(recs []Record) []uint64 {
		var out []uint64
		for _, r := range recs {
			out = append(out, r.ID)
		}
		return out
	}
	require.NoError(t, ob.Resolve(bs[0].ID, ids(bs[0].Readings)))
	require.NoError(t, ob.Resolve(bs[1].ID, ids(bs[1].Readings[:1])))
	require.NoError(t, ob.Resolve(bs[1].ID, ids(bs[1].Readings[:1])), "resolving twice changes nothing")
	require.Equal(t, int64(3), ob.Depth())
	require.NoError(t, ob.Close())

	ob, err = OpenOutbox(path)
	require.NoError(t, err)
	defer func() { require.NoError(t, ob.Close()) }()
	recorded, err := ob.Batches()
	require.NoError(t, err)
	require.Len(t, recorded, 1)
	require.Equal(t, bs[1].ID, recorded[0].ID)
	require.Equal(t, bs[1].Readings[1:], recorded[0].Readings)
	require.Equal(t, int64(3), ob.Depth())
}

func TestBatchesToFormFillsIdleSubmittersWithFullBatches(t *testing.T) {
	for _, tc := range []struct {
		name       string
		pending    int64
		size, room int
		want       int
	}{
		{"short batch after the wait", 30, 100, 8, 1},
		{"one full batch", 150, 100, 8, 1},
		{"every full batch pending", 520, 100, 8, 5},
		{"no more than the queue takes", 5000, 100, 3, 3},
		{"one even when the queue is full", 5000, 100, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, batchesToForm(tc.pending, tc.size, tc.room))
		})
	}
}
