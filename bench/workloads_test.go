package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// recordingLedger keeps what the workloads sent and checks every reading's
// signature against the key its device was enrolled with, as the chaincode
// would.
type recordingLedger struct {
	mu       sync.Mutex
	keys     map[string]*reading.PublicKey
	lastSeq  map[string]uint64
	readings int
	batches  []int
	denied   bool
}

func newRecordingLedger() *recordingLedger {
	return &recordingLedger{keys: map[string]*reading.PublicKey{}, lastSeq: map[string]uint64{}}
}

func (l *recordingLedger) EnrollDevice(_ context.Context, req api.EnrollRequest) (*api.Device, error) {
	key, err := reading.ParsePublicKey(req.PublicKey)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, dup := l.keys[req.ID]; dup {
		return nil, api.Errorf(api.CodeAlreadyExists, "device "+req.ID)
	}
	if !req.Activate {
		return nil, errors.New("bench devices must be enrolled active")
	}
	l.keys[req.ID] = key
	return &api.Device{ID: req.ID, Status: "active"}, nil
}

func (l *recordingLedger) accept(env reading.Envelope) error {
	r, err := env.Decode()
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	key, ok := l.keys[r.Device]
	if !ok {
		return fmt.Errorf("device %s not enrolled", r.Device)
	}
	if err := r.Verify(key); err != nil {
		return err
	}
	if r.Seq <= l.lastSeq[r.Device] {
		return api.Errorf(api.CodeReplay, fmt.Sprintf("%s seq %d", r.Device, r.Seq))
	}
	l.lastSeq[r.Device] = r.Seq
	l.readings++
	return nil
}

func (l *recordingLedger) SubmitReading(_ context.Context, env reading.Envelope) (*api.BatchReceipt, error) {
	if err := l.accept(env); err != nil {
		return nil, err
	}
	return &api.BatchReceipt{Size: 1}, nil
}

func (l *recordingLedger) SubmitBatch(_ context.Context, req api.BatchRequest) (*api.BatchReceipt, error) {
	for _, env := range req.Readings {
		if err := l.accept(env); err != nil {
			return nil, err
		}
	}
	l.mu.Lock()
	l.batches = append(l.batches, len(req.Readings))
	l.mu.Unlock()
	return &api.BatchReceipt{Size: len(req.Readings)}, nil
}

func (l *recordingLedger) CheckAccess(_ context.Context, req api.AccessRequest) (*api.Decision, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.keys[req.Resource]; !ok {
		return nil, api.Errorf(api.CodeNotFound, req.Resource)
	}
	return &api.Decision{Allowed: !l.denied, Reason: "owner default"}, nil
}

func TestEnsureDevicesEnrollsOnlyWhatIsMissing(t *testing.T) {
	ctx := context.Background()
	l := newRecordingLedger()
	pool := NewPool("t")
	require.NoError(t, EnsureDevices(ctx, pool, l, 10, 4))
	require.Equal(t, 10, pool.Len())
	require.NoError(t, EnsureDevices(ctx, pool, l, 6, 4))
	require.Equal(t, 10, pool.Len(), "a pool large enough is left alone")
	require.Len(t, l.keys, 10)
}

func TestTelemetryWorkersSignInOrderWithoutSharingDevices(t *testing.T) {
	ctx := context.Background()
	l := newRecordingLedger()
	pool := NewPool("t")
	require.NoError(t, EnsureDevices(ctx, pool, l, 8, 8))

	op, err := TelemetryOp(pool, l, 8)
	require.NoError(t, err)
	res, err := RunLoad(ctx, Load{Workers: 8, MaxOps: 400}, op)
	require.NoError(t, err)
	require.Zero(t, res.Errors, res.ErrorText)
	require.EqualValues(t, 400, res.Ops)
	require.Equal(t, 400, l.readings)

	// A second run at the same concurrency continues every device's sequence.
	op, err = TelemetryOp(pool, l, 8)
	require.NoError(t, err)
	res, err = RunLoad(ctx, Load{Workers: 8, MaxOps: 80}, op)
	require.NoError(t, err)
	require.Zero(t, res.Errors, res.ErrorText)
}

func TestBatchWorkloadCountsReadingsAndSpreadsThemOverTheWorkersDevices(t *testing.T) {
	ctx := context.Background()
	l := newRecordingLedger()
	pool := NewPool("t")
	require.NoError(t, EnsureDevices(ctx, pool, l, 12, 4))

	op, err := BatchOp(pool, l, 3, 4, 10)
	require.NoError(t, err)
	res, err := RunLoad(ctx, Load{Workers: 3, MaxOps: 30}, op)
	require.NoError(t, err)
	require.Zero(t, res.Errors, res.ErrorText)
	require.EqualValues(t, 30, res.Ops)
	require.EqualValues(t, 300, res.Units)
	require.Len(t, l.batches, 30)
	for _, n := range l.batches {
		require.Equal(t, 10, n)
	}
	require.Len(t, l.lastSeq, 12, "every device of every worker was used")
}

func TestWorkloadsRefuseToStartWithoutEnoughDevices(t *testing.T) {
	l := newRecordingLedger()
	pool := NewPool("t")
	require.NoError(t, EnsureDevices(context.Background(), pool, l, 3, 1))

	_, err := TelemetryOp(pool, l, 4)
	require.ErrorContains(t, err, "only 3 enrolled")
	_, err = BatchOp(pool, l, 2, 2, 10)
	require.ErrorContains(t, err, "only 3 enrolled")
	_, err = BatchOp(pool, l, 1, 0, 10)
	require.ErrorContains(t, err, "at least 1")
	_, err = CheckAccessOp(NewPool("empty"), l, "telemetry:read")
	require.ErrorContains(t, err, "no enrolled devices")
}

func TestCheckAccessWorkloadTreatsADenialAsAFailure(t *testing.T) {
	ctx := context.Background()
	l := newRecordingLedger()
	pool := NewPool("t")
	require.NoError(t, EnsureDevices(ctx, pool, l, 5, 2))

	op, err := CheckAccessOp(pool, l, "telemetry:read")
	require.NoError(t, err)
	res, err := RunLoad(ctx, Load{Workers: 2, MaxOps: 50}, op)
	require.NoError(t, err)
	require.EqualValues(t, 50, res.Ops)

	l.denied = true
	res, err = RunLoad(ctx, Load{Workers: 2, MaxOps: 10}, op)
	require.NoError(t, err)
	require.EqualValues(t, 10, res.Errors)
	require.Contains(t, res.ErrorText[0], "denied")
}

func TestPresignedReadingsAreUsedFirstAndInSequence(t *testing.T) {
	ctx := context.Background()
	l := newRecordingLedger()
	pool := NewPool("t")
	require.NoError(t, EnsureDevices(ctx, pool, l, 4, 2))
	devs, err := pool.Slice(0, 4)
	require.NoError(t, err)
	require.NoError(t, Presign(devs, 5))
	for _, d := range devs {
		require.Len(t, d.ready, 5)
	}
	require.NoError(t, Presign(devs, 3), "a queue already long enough is left alone")
	require.Len(t, devs[0].ready, 5)

	// 2 workers × 2 devices × 5 presigned, then 4 more batches signed live:
	// the ledger sees every device's sequence strictly increasing.
	op, err := BatchOp(pool, l, 2, 2, 5)
	require.NoError(t, err)
	res, err := RunLoad(ctx, Load{Workers: 2, MaxOps: 8}, op)
	require.NoError(t, err)
	require.Zero(t, res.Errors, res.ErrorText)
	require.EqualValues(t, 40, res.Units)
}
