package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/index"
)

// testThroughput: the batches of a window are counted by their
// transaction's time, per submitting identity, with their readings; an
// invalid batch and one outside the window count for nothing, and another
// org's private batch counts as a batch of unknown size.
func testThroughput(t *testing.T, be backend) {
	ctx := context.Background()
	s, _ := openFresh(t, be)

	empty, err := s.Throughput(ctx, t0, t0.Add(time.Minute))
	require.NoError(t, err)
	require.True(t, empty.Latest.IsZero(), "an empty index has applied no block")
	require.Empty(t, empty.Submitters)

	at := func(tx index.Transaction, d time.Duration, creator string) index.Transaction {
		tx.Time, tx.Creator = t0.Add(d), creator
		return tx
	}
	hub1, hub2 := "CN=hub1,OU=client,O=Org1", "CN=hub2,OU=client,O=Org1"
	early := at(batchTx("tx-early", devReadings("dev1", 1, 4)...), -time.Second, hub1)
	first := at(batchTx("tx-1", devReadings("dev1", 5, 3)...), 10*time.Second, hub1)
	conflict := at(batchTx("tx-conflict", devReadings("dev2", 1, 9)...), 15*time.Second, hub1)
	conflict.ValidationCode = "MVCC_READ_CONFLICT"
	second := at(batchTx("tx-2", devReadings("dev2", 10, 2)...), 20*time.Second, hub2)
	third := at(batchTx("tx-3", devReadings("dev1", 8, 1)...), 30*time.Second, hub1)
	private := at(batchTx("tx-private"), 40*time.Second, "CN=hub,OU=client,O=Org2")
	private.CreatorMSP, private.Function = "Org2MSP", "telemetry:SubmitPrivateBatch"
	private.Batch.MSPID, private.Batch.Private, private.Batch.Size = "Org2MSP", true, 0
	late := at(batchTx("tx-late", devReadings("dev1", 9, 5)...), time.Minute, hub1)
	enroll := eventTx("tx-enroll", "device:Enroll", &api.Event{Type: api.EventDeviceEnrolled}, "dev3")
	enroll.Time = t0.Add(5 * time.Second)
	apply(t, s, block(0, early, first, conflict), block(1, second, enroll, third), block(2, private), block(3, late))

	got, err := s.Throughput(ctx, t0, t0.Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, t0, got.From)
	require.Equal(t, t0.Add(time.Minute), got.To)
	require.Equal(t, t0.Add(3*time.Second), got.Latest, "the newest block's time")
	require.Equal(t, []index.SubmitterThroughput{
		{MSPID: "Org1MSP", Submitter: hub1, Batches: 2, Readings: 4},
		{MSPID: "Org1MSP", Submitter: hub2, Batches: 1, Readings: 2},
		{MSPID: "Org2MSP", Submitter: "CN=hub,OU=client,O=Org2", Batches: 1, PrivateBatches: 1},
	}, got.Submitters)

	_, err = s.Throughput(ctx, t0, t0)
	require.ErrorContains(t, err, "is empty")
}
