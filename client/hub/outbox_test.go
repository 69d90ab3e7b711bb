package hub

import (
	"fmt"
	"strings"
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

// laneOutbox appends readings in the order the letters give (each letter
// is a device: "aab" appends a/1, a/2, b/1) and takes the readings before
// a "|" into one lane batch first, so their devices are held.
func laneOutbox(t *testing.T, layout string) (*Outbox, string) {
	t.Helper()
	ob, err := OpenOutbox(t.TempDir() + "/outbox.db")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, ob.Close()) })
	seqs := map[byte]uint64{}
	appendLetters := func(s string) {
		for i := range len(s) {
			if s[i] == ' ' {
				continue
			}
			seqs[s[i]]++
			res, err := ob.Append(Record{Device: string(s[i]), Seq: seqs[s[i]], Leaf: reading.Hash{s[i], byte(seqs[s[i]])},
				Envelope: reading.Envelope{Payload: []byte("p"), Signature: []byte("s")}})
			require.NoError(t, err)
			require.Equal(t, Appended, res)
		}
	}
	before, after, held := strings.Cut(layout, "|")
	if !held {
		appendLetters(layout)
		return ob, ""
	}
	appendLetters(before)
	bs, err := ob.TakeLaneBatches(100, 1, true, time.Now())
	require.NoError(t, err)
	require.Len(t, bs, 1)
	appendLetters(after)
	return ob, describe(bs[0].Readings)
}

// describe writes readings as "a1 a2 b1".
func describe(recs []Record) string {
	var parts []string
	for _, r := range recs {
		parts = append(parts, fmt.Sprintf("%s%d", r.Device, r.Seq))
	}
	return strings.Join(parts, " ")
}

func TestTakeLaneBatchesKeepsEachDeviceInOneBatch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		layout  string // see laneOutbox
		max, n  int
		short   bool
		want    []string // the batches taken
		pending string   // what stays pending, oldest first
	}{
		{name: "a device's readings go into one batch, the rest waits for it",
			layout: "aaaaa", max: 3, n: 3, short: true,
			want: []string{"a1 a2 a3"}, pending: "a4 a5"},
		{name: "a device may be in a batch many times, listed oldest first",
			layout: "abab", max: 4, n: 1,
			want: []string{"a1 b1 a2 b2"}},
		{name: "devices a batch in flight holds stay pending in order",
			layout: "a|abab c", max: 10, n: 2, short: true,
			want: []string{"b1 b2 c1"}, pending: "a2 a3"},
		{name: "many devices fill batches that share none",
			layout: "abcdef", max: 2, n: 3,
			want: []string{"a1 b1", "c1 d1", "e1 f1"}},
		{name: "a fast device's backlog takes one batch, the others the rest",
			layout: "aaaaaaaa bcd bcd", max: 3, n: 3, short: true,
			want: []string{"a1 a2 a3", "b1 d1 b2", "c1 c2"}, pending: "a4 a5 a6 a7 a8 d2"},
		{name: "a device's readings go into the first batch they fit in whole",
			layout: "aabbbc", max: 4, n: 2, short: true,
			want: []string{"a1 a2 c1", "b1 b2 b3"}},
		{name: "a short batch is not recorded unless short is allowed",
			layout: "aabbbc", max: 4, n: 2,
			pending: "a1 a2 b1 b2 b3 c1"},
		{name: "a later short batch waits; the full one goes",
			layout: "aaaab", max: 4, n: 2,
			want: []string{"a1 a2 a3 a4"}, pending: "b1"},
		{name: "once every batch is open a device fills the one with most room",
			layout: "aabb", max: 3, n: 1,
			want: []string{"a1 a2 b1"}, pending: "b2"},
		{name: "the device with the oldest reading goes first",
			layout: "bbaac", max: 2, n: 1,
			want: []string{"b1 b2"}, pending: "a1 a2 c1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ob, _ := laneOutbox(t, tc.layout)
			bs, err := ob.TakeLaneBatches(tc.max, tc.n, tc.short, time.Now())
			require.NoError(t, err)
			var got []string
			for _, b := range bs {
				got = append(got, describe(b.Readings))
			}
			require.Equal(t, tc.want, got)
			pending, err := ob.PendingRecords()
			require.NoError(t, err)
			require.Equal(t, tc.pending, describe(pending))
			require.Equal(t, int64(len(pending)), ob.Pending())
			// What stays pending is held back exactly when its device is in
			// a batch just taken (or held before).
			var held int64
			for _, r := range pending {
				if ob.Held(r.Device) {
					held++
				}
			}
			require.Equal(t, held, ob.HeldBack())
			require.Equal(t, int64(len(pending))-held, ob.Available())
		})
	}
}

func TestReleasedDeviceGetsItsNextBatchInOrder(t *testing.T) {
	ob, _ := laneOutbox(t, "aaaaaaaaaaaaaaaaaaaaaaaaa") // 25
	var seqs []uint64
	for i := range 3 {
		bs, err := ob.TakeLaneBatches(10, 3, true, time.Now())
		require.NoError(t, err)
		require.Len(t, bs, 1, "take %d", i)
		for _, r := range bs[0].Readings {
			seqs = append(seqs, r.Seq)
		}
		none, err := ob.TakeLaneBatches(10, 3, true, time.Now())
		require.NoError(t, err)
		require.Empty(t, none, "the device's batch is not released yet")
		require.Equal(t, int64(0), ob.Available())
		require.Equal(t, ob.Pending(), ob.HeldBack())
		ob.Release(bs[0].ID)
		ob.Release(bs[0].ID) // a second release changes nothing
		require.Equal(t, ob.Pending(), ob.Available())
	}
	require.Len(t, seqs, 25)
	for i, s := range seqs {
		require.Equal(t, uint64(i+1), s)
	}
	require.Equal(t, int64(25), ob.Depth(), "releasing is not resolving")
}

func TestRecordedBatchesHoldTheirDevicesAgainAfterAReopen(t *testing.T) {
	path := t.TempDir() + "/outbox.db"
	ob, err := OpenOutbox(path)
	require.NoError(t, err)
	appendReadings(t, ob, "cold-1", 25)
	appendReadings(t, ob, "cold-2", 3)
	// Batches as a hub before device lanes formed them: two share cold-1.
	bs, err := ob.TakeBatches(10, 2, time.Now())
	require.NoError(t, err)
	require.Len(t, bs, 2)
	require.NoError(t, ob.Close())

	ob, err = OpenOutbox(path)
	require.NoError(t, err)
	defer func() { require.NoError(t, ob.Close()) }()
	require.True(t, ob.Held("cold-1"))
	require.False(t, ob.Held("cold-2"))
	require.Equal(t, int64(8), ob.Pending())
	require.Equal(t, int64(3), ob.Available())
	require.Equal(t, int64(5), ob.HeldBack())
	got, err := ob.TakeLaneBatches(10, 2, true, time.Now())
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, "cold-21 cold-22 cold-23", describe(got[0].Readings))

	recorded, err := ob.Batches()
	require.NoError(t, err)
	require.Len(t, recorded, 3)
	ob.Release(recorded[0].ID)
	require.True(t, ob.Held("cold-1"), "the second recovered batch still holds it")
	ob.Release(recorded[1].ID)
	require.False(t, ob.Held("cold-1"))
	require.Equal(t, int64(5), ob.Available())
	rest, err := ob.TakeLaneBatches(10, 2, true, time.Now())
	require.NoError(t, err)
	require.Len(t, rest, 1)
	require.Equal(t, "cold-121 cold-122 cold-123 cold-124 cold-125", describe(rest[0].Readings))
}
