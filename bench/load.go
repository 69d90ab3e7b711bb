package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Op is one closed-loop operation of a worker: it returns how many units of
// work it carried (1 for a plain transaction, the batch size for a batch of
// readings) or an error. iter counts the worker's own operations from 0, so
// an operation can derive distinct keys and sequence numbers without shared
// state.
type Op func(ctx context.Context, worker int, iter uint64) (units int, err error)

// Load bounds a closed-loop run. At least one of Duration and MaxOps must be
// set so that every run ends by itself.
type Load struct {
	Workers  int           // concurrent closed-loop workers, >= 1
	Duration time.Duration // measured window after Warmup; 0 = bounded by MaxOps only
	Warmup   time.Duration // operations finishing before this are not counted
	MaxOps   int64         // total operations started (warm-up included); 0 = bounded by Duration only
	// StopAfterErrors ends the run early once this many operations in a row
	// have failed (a misconfigured workload should not grind for minutes).
	// 0 disables it.
	StopAfterErrors int64
}

// Validate says what is wrong with a load's bounds.
func (l Load) Validate() error {
	switch {
	case l.Workers < 1:
		return fmt.Errorf("load: workers must be at least 1, got %d", l.Workers)
	case l.Duration < 0 || l.Warmup < 0 || l.MaxOps < 0 || l.StopAfterErrors < 0:
		return errors.New("load: duration, warm-up, max ops and error limit must not be negative")
	case l.Duration == 0 && l.MaxOps == 0:
		return errors.New("load: set a duration or a maximum number of operations, or the run never ends")
	}
	return nil
}

// LoadResult is what a closed-loop run measured inside its window.
type LoadResult struct {
	Workers   int
	Ops       int64         // successful operations completed in the window
	Units     int64         // units they carried
	Errors    int64         // failed operations completed in the window
	Elapsed   time.Duration // length of the measured window
	Latency   Summary       // of the successful operations in the window
	ErrorText []string      // a few distinct error messages, first seen first
	Stopped   string        // why the run ended early, if it did
}

// OpsPerSec is the rate of successful operations.
func (r LoadResult) OpsPerSec() float64 { return Rate(r.Ops, r.Elapsed) }

// UnitsPerSec is the rate of units carried by successful operations.
func (r LoadResult) UnitsPerSec() float64 { return Rate(r.Units, r.Elapsed) }

const maxErrorTexts = 5

type loadRun struct {
	load      Load
	op        Op
	started   atomic.Int64 // operations claimed (for MaxOps)
	failedRun atomic.Int64 // consecutive failures
	measureAt time.Time    // window start
	endAt     time.Time    // zero when bounded by count only

	mu        sync.Mutex
	samples   []time.Duration
	ops       int64
	units     int64
	errs      int64
	errTexts  []string
	stopped   string
	lastFinal time.Time // when the last counted operation finished
}

// RunLoad drives op from load.Workers goroutines, each starting its next
// operation as soon as the previous one returns, until the window ends,
// MaxOps operations have been started, too many operations in a row fail, or
// ctx is cancelled. Operations still in flight when the window ends are
// awaited (they carry ctx and their own time-outs) but not counted, so the
// next run starts on a quiet system.
func RunLoad(ctx context.Context, load Load, op Op) (LoadResult, error) {
	if err := load.Validate(); err != nil {
		return LoadResult{}, err
	}
	if op == nil {
		return LoadResult{}, errors.New("load: no operation to run")
	}
	begin := time.Now()
	r := &loadRun{load: load, op: op, measureAt: begin.Add(load.Warmup)}
	if load.Duration > 0 {
		r.endAt = r.measureAt.Add(load.Duration)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	var wg sync.WaitGroup
	for w := range load.Workers {
		wg.Go(func() { r.worker(runCtx, cancel, w) })
	}
	wg.Wait()

	end := r.endAt
	if end.IsZero() || ctx.Err() != nil || r.stopped != "" {
		// Bounded by count, or cut short: the window closes with the last
		// counted operation.
		end = r.lastFinal
		if end.IsZero() || end.Before(r.measureAt) {
			end = time.Now()
		}
	}
	if ctx.Err() != nil && r.stopped == "" {
		r.stopped = "cancelled: " + ctx.Err().Error()
	}
	res := LoadResult{
		Workers:   load.Workers,
		Ops:       r.ops,
		Units:     r.units,
		Errors:    r.errs,
		Elapsed:   end.Sub(r.measureAt),
		Latency:   Summarize(r.samples),
		ErrorText: r.errTexts,
		Stopped:   r.stopped,
	}
	return res, nil
}

func (r *loadRun) worker(ctx context.Context, cancel context.CancelFunc, w int) {
	for iter := uint64(0); ; iter++ {
		if ctx.Err() != nil {
			return
		}
		if !r.endAt.IsZero() && !time.Now().Before(r.endAt) {
			return
		}
		if r.load.MaxOps > 0 && r.started.Add(1) > r.load.MaxOps {
			return
		}
		start := time.Now()
		units, err := r.op(ctx, w, iter)
		done := time.Now()
		if err != nil && ctx.Err() != nil {
			return // cancelled mid-operation: neither a success nor a failure of the system
		}
		if !r.record(start, done, units, err) {
			cancel()
			return
		}
	}
}

// record accounts one finished operation; it returns false when the run
// must stop because too many operations in a row failed.
func (r *loadRun) record(start, done time.Time, units int, err error) bool {
	inWindow := !done.Before(r.measureAt) && (r.endAt.IsZero() || !done.After(r.endAt))
	if err == nil {
		r.failedRun.Store(0)
	} else if n := r.failedRun.Add(1); r.load.StopAfterErrors > 0 && n >= r.load.StopAfterErrors {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.noteError(err)
		if r.stopped == "" {
			r.stopped = fmt.Sprintf("%d operations in a row failed", n)
		}
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.noteError(err)
	}
	if !inWindow {
		return true
	}
	if err != nil {
		r.errs++
		return true
	}
	r.ops++
	r.units += int64(units)
	r.samples = append(r.samples, done.Sub(start))
	if done.After(r.lastFinal) {
		r.lastFinal = done
	}
	return true
}

// noteError keeps a few distinct messages; r.mu is held.
func (r *loadRun) noteError(err error) {
	msg := err.Error()
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	if len(r.errTexts) >= maxErrorTexts {
		return
	}
	for _, t := range r.errTexts {
		if t == msg {
			return
		}
	}
	r.errTexts = append(r.errTexts, msg)
}
