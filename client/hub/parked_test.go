package hub

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParkedReadingsSurviveAReopenAndGoBackInTheirOrderOrAreDropped(t *testing.T) {
	path := t.TempDir() + "/outbox.db"
	ob, err := OpenOutbox(path)
	require.NoError(t, err)
	appendReadings(t, ob, "cold-a", 4)
	appendReadings(t, ob, "cold-b", 3)
	b, err := ob.TakeBatch(7, time.Now())
	require.NoError(t, err)
	var ids []uint64
	for _, r := range b.Readings {
		ids = append(ids, r.ID)
	}
	// A reading of a later batch, pending, of device a.
	res, err := ob.Append(Record{Device: "cold-a", Seq: 9, Leaf: [32]byte{9}})
	require.NoError(t, err)
	require.Equal(t, Appended, res)

	n, err := ob.Park(b.ID, ids, ParkReasonNotFound, "device not enrolled", time.Now())
	require.NoError(t, err)
	require.Equal(t, 7, n)
	n, err = ob.Park(b.ID, ids, ParkReasonNotFound, "again", time.Now())
	require.NoError(t, err)
	require.Zero(t, n, "parked twice")
	require.Equal(t, int64(7), ob.Parked())
	require.Equal(t, int64(1), ob.Depth(), "parked readings are not waiting to be submitted")
	bs, err := ob.Batches()
	require.NoError(t, err)
	require.Empty(t, bs, "the emptied batch is gone")
	ob.Release(b.ID)
	require.NoError(t, ob.Close())

	ob, err = OpenOutbox(path)
	require.NoError(t, err)
	defer func() { require.NoError(t, ob.Close()) }()
	require.Equal(t, int64(7), ob.Parked())
	recs, err := ob.ParkedRecords()
	require.NoError(t, err)
	require.Len(t, recs, 7)
	require.Equal(t, ParkReasonNotFound, recs[0].Reason)
	require.Equal(t, "device not enrolled", recs[0].Error)
	devs, err := ob.ParkedDevices()
	require.NoError(t, err)
	require.Equal(t, []string{"cold-a", "cold-b"}, devs)

	// Unparked, device a's readings are ahead of its later pending one.
	n, err = ob.Unpark("cold-a")
	require.NoError(t, err)
	require.Equal(t, 4, n)
	require.Equal(t, int64(3), ob.Parked())
	require.Equal(t, int64(5), ob.Pending())
	got, err := ob.TakeLaneBatches(10, 1, true, time.Now())
	require.NoError(t, err)
	require.Len(t, got, 1)
	var seqs []uint64
	for _, r := range got[0].Readings {
		require.Equal(t, "cold-a", r.Device)
		seqs = append(seqs, r.Seq)
	}
	require.Equal(t, []uint64{1, 2, 3, 4, 9}, seqs)

	n, err = ob.DropParked()
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Zero(t, ob.Parked())
	dup, err := ob.Append(Record{Device: "cold-b", Seq: 1, Leaf: [32]byte{1}})
	require.NoError(t, err)
	require.Equal(t, Duplicate, dup, "a dropped reading sent again is acknowledged, not stored")
}
