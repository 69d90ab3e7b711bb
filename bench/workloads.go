package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// Ledger is what the iotledger workloads call; *client.Client provides it.
type Ledger interface {
	EnrollDevice(ctx context.Context, req api.EnrollRequest) (*api.Device, error)
	SubmitReading(ctx context.Context, env reading.Envelope) (*api.BatchReceipt, error)
	SubmitBatch(ctx context.Context, req api.BatchRequest) (*api.BatchReceipt, error)
	CheckAccess(ctx context.Context, req api.AccessRequest) (*api.Decision, error)
}

// EnrollOp enrolls a new active device per operation and adds it to the
// pool, where the telemetry workloads find it.
func EnrollOp(pool *Pool, l Ledger) Op {
	return func(ctx context.Context, _ int, _ uint64) (int, error) {
		d, req, err := pool.NewDevice()
		if err != nil {
			return 0, err
		}
		if _, err := l.EnrollDevice(ctx, req); err != nil {
			return 0, fmt.Errorf("enroll %s: %w", req.ID, err)
		}
		pool.Add(d)
		return 1, nil
	}
}

// EnsureDevices enrolls devices until the pool holds at least n.
func EnsureDevices(ctx context.Context, pool *Pool, l Ledger, n, workers int) error {
	missing := n - pool.Len()
	if missing <= 0 {
		return nil
	}
	res, err := RunLoad(ctx, Load{Workers: min(workers, missing), MaxOps: int64(missing), StopAfterErrors: 20}, EnrollOp(pool, l))
	if err != nil {
		return err
	}
	if pool.Len() < n {
		return fmt.Errorf("enrolled %d of the %d devices needed (%d failed): %s", pool.Len(), n, res.Errors, strings.Join(res.ErrorText, "; "))
	}
	return nil
}

// assign hands each of workers its own perWorker devices.
func assign(pool *Pool, workers, perWorker int) ([][]*Device, error) {
	out := make([][]*Device, workers)
	for w := range workers {
		ds, err := pool.Slice(w, perWorker)
		if err != nil {
			return nil, err
		}
		out[w] = ds
	}
	return out, nil
}

// TelemetryOp submits one signed reading per transaction
// (telemetry:Submit), each worker from its own device with increasing
// sequence numbers.
func TelemetryOp(pool *Pool, l Ledger, workers int) (Op, error) {
	devs, err := assign(pool, workers, 1)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, w int, _ uint64) (int, error) {
		env, err := devs[w][0].Next(time.Now())
		if err != nil {
			return 0, err
		}
		if _, err := l.SubmitReading(ctx, env); err != nil {
			return 0, err
		}
		return 1, nil
	}, nil
}

// BatchOp submits batchSize signed readings per transaction
// (telemetry:SubmitBatch), spread round-robin over the worker's own
// perWorker devices; it counts readings as units.
func BatchOp(pool *Pool, l Ledger, workers, perWorker, batchSize int) (Op, error) {
	if batchSize < 1 || perWorker < 1 {
		return nil, errors.New("batch workload: batch size and devices per worker must be at least 1")
	}
	devs, err := assign(pool, workers, perWorker)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, w int, _ uint64) (int, error) {
		now := time.Now()
		req := api.BatchRequest{Readings: make([]reading.Envelope, batchSize)}
		for i := range batchSize {
			env, err := devs[w][i%perWorker].Next(now)
			if err != nil {
				return 0, err
			}
			req.Readings[i] = env
		}
		receipt, err := l.SubmitBatch(ctx, req)
		if err != nil {
			return 0, err
		}
		if receipt.Size != batchSize {
			return 0, fmt.Errorf("batch receipt says %d readings, sent %d", receipt.Size, batchSize)
		}
		return batchSize, nil
	}, nil
}

// CheckAccessOp asks policy:CheckAccess whether the caller may read
// telemetry of the enrolled devices, round-robin; a denial is an error, as
// the bench's caller owns every device it asks about.
func CheckAccessOp(pool *Pool, l Ledger, action string) (Op, error) {
	n := pool.Len()
	if n == 0 {
		return nil, errors.New("check-access workload: no enrolled devices to ask about")
	}
	ids := make([]string, 0, n)
	ds, err := pool.Slice(0, n)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	return func(ctx context.Context, w int, iter uint64) (int, error) {
		id := ids[(uint64(w)*131+iter)%uint64(len(ids))]
		dec, err := l.CheckAccess(ctx, api.AccessRequest{Action: action, Resource: id})
		if err != nil {
			return 0, err
		}
		if !dec.Allowed {
			return 0, fmt.Errorf("check-access: %s on %s denied: %s", action, id, dec.Reason)
		}
		return 1, nil
	}, nil
}
