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
