package bench

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoadBoundedByCountRunsExactlyThatManyOperations(t *testing.T) {
	var calls atomic.Int64
	res, err := RunLoad(context.Background(), Load{Workers: 8, MaxOps: 1000}, func(context.Context, int, uint64) (int, error) {
		calls.Add(1)
		return 3, nil
	})
	require.NoError(t, err)
	require.EqualValues(t, 1000, calls.Load())
	require.EqualValues(t, 1000, res.Ops)
	require.EqualValues(t, 3000, res.Units)
	require.Zero(t, res.Errors)
	require.Equal(t, 1000, res.Latency.Count)
	require.Equal(t, 8, res.Workers)
	require.Empty(t, res.Stopped)
}

func TestLoadBoundedByTimeStopsByItself(t *testing.T) {
	var calls atomic.Int64
	res, err := RunLoad(context.Background(), Load{Workers: 4, Duration: 300 * time.Millisecond}, func(ctx context.Context, _ int, _ uint64) (int, error) {
		calls.Add(1)
		select {
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
		}
		return 1, nil
	})
	require.NoError(t, err)
	require.Positive(t, res.Ops)
	require.LessOrEqual(t, res.Ops, calls.Load(), "only finished operations inside the window count")
	require.Positive(t, res.Elapsed)
}

func TestLoadGivesEveryWorkerItsOwnIterationSequence(t *testing.T) {
	var mu sync.Mutex
	seen := map[int][]uint64{}
	_, err := RunLoad(context.Background(), Load{Workers: 3, MaxOps: 30}, func(_ context.Context, w int, iter uint64) (int, error) {
		mu.Lock()
		seen[w] = append(seen[w], iter)
		mu.Unlock()
		return 1, nil
	})
	require.NoError(t, err)
	total := 0
	for w, iters := range seen {
		require.Less(t, w, 3)
		for i, it := range iters {
			require.EqualValues(t, i, it, "worker %d iterations must count up from 0 without gaps", w)
		}
		total += len(iters)
	}
	require.Equal(t, 30, total)
}

func TestLoadCountsFailuresApartAndKeepsDistinctMessages(t *testing.T) {
	var n atomic.Int64
	res, err := RunLoad(context.Background(), Load{Workers: 2, MaxOps: 100}, func(context.Context, int, uint64) (int, error) {
		if n.Add(1)%2 == 0 {
			return 0, errors.New("MVCC_READ_CONFLICT")
		}
		return 1, nil
	})
	require.NoError(t, err)
	require.EqualValues(t, 100, res.Ops+res.Errors)
	require.EqualValues(t, 50, res.Errors)
	require.Equal(t, []string{"MVCC_READ_CONFLICT"}, res.ErrorText)
	require.Equal(t, int(res.Ops), res.Latency.Count, "latency covers successful operations only")
}

func TestLoadStopsEarlyWhenEveryOperationFails(t *testing.T) {
	var calls atomic.Int64
	res, err := RunLoad(context.Background(), Load{Workers: 4, Duration: time.Hour, StopAfterErrors: 20}, func(context.Context, int, uint64) (int, error) {
		calls.Add(1)
		return 0, errors.New("chaincode refcc not found")
	})
	require.NoError(t, err)
	require.Less(t, calls.Load(), int64(1000), "the run must stop long before its hour-long window")
	require.Contains(t, res.Stopped, "in a row failed")
	require.Contains(t, res.ErrorText, "chaincode refcc not found")
	require.Zero(t, res.Ops)
}

func TestLoadEndsWhenItsContextIsCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int64
	res, err := RunLoad(ctx, Load{Workers: 2, Duration: time.Hour}, func(ctx context.Context, _ int, _ uint64) (int, error) {
		if calls.Add(1) == 10 {
			cancel()
		}
		<-time.After(time.Microsecond)
		return 1, ctx.Err()
	})
	require.NoError(t, err)
	require.Contains(t, res.Stopped, "cancelled")
	require.Less(t, calls.Load(), int64(1000))
}

func TestLoadDoesNotCountWarmUp(t *testing.T) {
	start := time.Now()
	res, err := RunLoad(context.Background(), Load{Workers: 1, Warmup: 30 * time.Millisecond, MaxOps: 1000}, func(context.Context, int, uint64) (int, error) {
		time.Sleep(100 * time.Microsecond)
		return 1, nil
	})
	require.NoError(t, err)
	if time.Since(start) > 30*time.Millisecond {
		require.Less(t, res.Ops, int64(1000), "operations finished during warm-up are left out")
	}
}

func TestLoadRefusesUnboundedOrEmptyRuns(t *testing.T) {
	ok := func(context.Context, int, uint64) (int, error) { return 1, nil }
	tests := []struct {
		name string
		load Load
		op   Op
		want string
	}{
		{"no bound", Load{Workers: 1}, ok, "never ends"},
		{"no workers", Load{Workers: 0, MaxOps: 1}, ok, "at least 1"},
		{"negative duration", Load{Workers: 1, Duration: -time.Second}, ok, "negative"},
		{"no operation", Load{Workers: 1, MaxOps: 1}, nil, "no operation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := RunLoad(context.Background(), tc.load, tc.op)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
