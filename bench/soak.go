package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/index"
	"github.com/iotledger/iotledger/index/store"
)

// SoakConfig says how a soak loads the network.
type SoakConfig struct {
	Duration time.Duration // of sustained load
	Interval time.Duration // reporting interval; 0: a tenth of Duration, at least 10 s
	Workers  int           // concurrent telemetry:SubmitBatch, each on its own devices
	// BatchSize readings per batch, the first HeavyPerBatch of them from
	// the worker's heavy device, the rest round-robin over its
	// LightPerWorker other devices.
	BatchSize      int
	HeavyPerBatch  int
	LightPerWorker int
	Queries        int    // index queries timed per interval
	IndexURL       string // the index's database: "" for SQLite in IndexDir, or a PostgreSQL URL
	IndexDir       string // where the SQLite index goes; "" for a temporary directory (removed after)
	Progress       io.Writer
	Logger         *slog.Logger
}

// DefaultSoakConfig is a soak of d: 8 concurrent batches of 500 readings,
// 300 of each from the worker's heavy device, so that the 8 heavy devices
// pass 100 k readings within about ten minutes on a small machine.
func DefaultSoakConfig(d time.Duration) SoakConfig {
	return SoakConfig{Duration: d, Workers: 8, BatchSize: 500, HeavyPerBatch: 300, LightPerWorker: 20, Queries: 100}
}

// Validate says what is wrong with a soak configuration.
func (c SoakConfig) Validate() error {
	switch {
	case c.Duration <= 0:
		return errors.New("bench: the soak's duration must be positive")
	case c.Workers < 1 || c.Workers > 2000:
		return fmt.Errorf("bench: soak workers %d out of range 1..2000", c.Workers)
	case c.BatchSize < 1 || c.BatchSize > 500:
		return fmt.Errorf("bench: soak batch size %d out of range 1..500 (telemetry:SubmitBatch's limit)", c.BatchSize)
	case c.HeavyPerBatch < 1 || c.HeavyPerBatch > c.BatchSize:
		return fmt.Errorf("bench: heavy readings per batch %d out of range 1..batch size", c.HeavyPerBatch)
	case c.LightPerWorker < 0 || (c.LightPerWorker == 0 && c.HeavyPerBatch < c.BatchSize):
		return errors.New("bench: a batch not filled by the heavy device needs light devices")
	case c.Queries < 1:
		return errors.New("bench: at least one query per interval")
	}
	return nil
}

// soakCounters are what the batches committed, updated by the workers.
type soakCounters struct {
	readings atomic.Int64
	batches  atomic.Int64
	device   atomic.Int64 // readings of the queried device (worker 0's heavy one)
}

// soakOp submits one batch of the worker's devices (devs[w][0] heavy) laid
// out by slots, and counts what committed.
func soakOp(devs [][]*Device, l Ledger, slots []int, heavy int, ctr *soakCounters) Op {
	return func(ctx context.Context, w int, _ uint64) (int, error) {
		now := time.Now()
		req := api.BatchRequest{Readings: make([]reading.Envelope, len(slots))}
		for i, d := range slots {
			env, err := devs[w][d].Next(now)
			if err != nil {
				return 0, err
			}
			req.Readings[i] = env
		}
		receipt, err := l.SubmitBatch(ctx, req)
		if err != nil {
			return 0, err
		}
		if receipt.Size != len(slots) {
			return 0, fmt.Errorf("batch receipt says %d readings, sent %d", receipt.Size, len(slots))
		}
		ctr.readings.Add(int64(len(slots)))
		ctr.batches.Add(1)
		if w == 0 {
			ctr.device.Add(int64(heavy))
		}
		return len(slots), nil
	}
}

// soakIndex is the org's index the soak follows the channel with.
type soakIndex struct {
	st       index.Store
	where    string
	sqlite   string // path of the SQLite file, "" for PostgreSQL
	stop     context.CancelFunc
	done     chan error
	readings atomic.Int64 // of valid batches applied since counting began
	counting atomic.Bool
	mu       sync.Mutex
	blocks   []blockSeen // validation codes, from counting on
}

func (x *soakIndex) applied(b *index.Block) {
	if !x.counting.Load() {
		return
	}
	bs := blockSeen{number: b.Number}
	var n int64
	for i := range b.Transactions {
		t := &b.Transactions[i]
		if t.Function == "" {
			continue // config
		}
		bs.txs++
		if !t.Valid() {
			if bs.invalid == nil {
				bs.invalid = map[string]int64{}
			}
			bs.invalid[t.ValidationCode]++
			continue
		}
		n += int64(len(t.Readings))
	}
	x.readings.Add(n)
	x.mu.Lock()
	x.blocks = append(x.blocks, bs)
	x.mu.Unlock()
}

func (x *soakIndex) validation() *Validation {
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.blocks) == 0 {
		return nil
	}
	return tallyValidation(x.blocks, x.blocks[0].number, x.blocks[len(x.blocks)-1].number+1)
}

// size is the SQLite index's bytes on disk (database, WAL and shared memory).
func (x *soakIndex) size() (int64, error) {
	return FilesSize(x.sqlite, x.sqlite+"-wal", x.sqlite+"-shm")
}

// close stops following and closes the store.
func (x *soakIndex) close() error {
	x.stop()
	err := <-x.done
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return errors.Join(err, x.st.Close())
}

func openSoakIndex(ctx context.Context, cfg SoakConfig, c *client.Client, chaincode, dir string, log *slog.Logger) (*soakIndex, error) {
	x := &soakIndex{done: make(chan error, 1)}
	var err error
	if cfg.IndexURL != "" {
		x.st, err = store.Open(ctx, cfg.IndexURL)
		x.where = redactURL(cfg.IndexURL)
	} else {
		x.sqlite = filepath.Join(dir, "index.sqlite")
		x.st, err = store.OpenSQLite(ctx, x.sqlite)
		x.where = "sqlite:" + x.sqlite
	}
	if err != nil {
		return nil, err
	}
	anchor, _, err := c.TrustAnchor(ctx)
	if err != nil {
		_ = x.st.Close()
		return nil, fmt.Errorf("trust anchor: %w", err)
	}
	f := index.NewFollower(x.st, c, anchor, chaincode, log)
	f.OnApplied(x.applied)
	fctx, cancel := context.WithCancel(ctx)
	x.stop = cancel
	go func() { x.done <- f.Run(fctx) }()
	return x, nil
}

// redactURL drops a password from a database URL for the report.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// caughtUp waits until the index has every block the peer has committed.
func (x *soakIndex) caughtUp(ctx context.Context, c *client.Client) error {
	h, err := c.Height(ctx)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- index.CaughtUp(wctx, x.st, h) }()
	select {
	case err := <-errc:
		return err
	case err := <-x.done:
		x.done <- err
		return fmt.Errorf("the index stopped following the channel: %w", err)
	}
}

// lag is how many blocks the index is behind the peer.
func (x *soakIndex) lag(ctx context.Context, c *client.Client) (uint64, error) {
	h, err := c.Height(ctx)
	if err != nil {
		return 0, err
	}
	next, _, err := x.st.Checkpoint(ctx)
	if err != nil {
		return 0, err
	}
	if next >= h {
		return 0, nil
	}
	return h - next, nil
}

// RunSoak applies sustained batched telemetry to the target for
// cfg.Duration while an index follows the channel, and reports per
// interval what committed, how far the index lagged and how long range
// queries of a heavy device took, then what each store grew by per reading.
func RunSoak(ctx context.Context, cfg SoakConfig, t Target) (*SoakReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if t.Profile == nil {
		return nil, errors.New("bench: no connection profile for the network under load")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	progressf := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "bench: soak: "+format+"\n", args...)
		}
	}
	self := Process{Name: "bench", PID: os.Getpid()}
	procs := append(append([]Process(nil), t.Processes...), self)

	conn, err := client.NewConnection(t.Profile)
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	operator, hub, closeClients, err := dialOperatorAndHub(ctx, conn, t.Profile, log)
	if err != nil {
		return nil, err
	}
	defer closeClients()

	dir := cfg.IndexDir
	if dir == "" && cfg.IndexURL == "" {
		if dir, err = os.MkdirTemp("", "iotledger-soak-"); err != nil {
			return nil, err
		}
		defer func() { _ = os.RemoveAll(dir) }()
	}
	x, err := openSoakIndex(ctx, cfg, operator, t.Profile.Chaincode, dir, log)
	if err != nil {
		return nil, fmt.Errorf("bench: soak index: %w", err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = x.close()
		}
	}()

	started := time.Now()
	rep := &SoakReport{
		StartedAt: started.UTC(), Machine: describeMachine(), Network: t.Info,
		Workers: cfg.Workers, BatchSize: cfg.BatchSize, HeavyPerBatch: cfg.HeavyPerBatch,
		Devices: cfg.Workers * (1 + cfg.LightPerWorker), Index: x.where,
		Intervals: []SoakInterval{}, Goals: []GoalResult{},
	}

	// Devices first: their enrollment is not part of what the soak grows.
	pool := NewPool("s" + strconv.FormatInt(started.Unix(), 36))
	progressf("enrolling %d devices (%d workers × 1 heavy + %d light)", rep.Devices, cfg.Workers, cfg.LightPerWorker)
	if err := EnsureDevices(ctx, pool, operator, rep.Devices, 64); err != nil {
		return nil, err
	}
	devs, err := assign(pool, cfg.Workers, 1+cfg.LightPerWorker)
	if err != nil {
		return nil, err
	}
	queried := devs[0][0]
	rep.QueryDevice = queried.ID

	progressf("index %s: catching up with the channel …", x.where)
	if err := x.caughtUp(ctx, operator); err != nil {
		return nil, fmt.Errorf("bench: soak index: %w", err)
	}
	startDisk, diskErr := measurePeers(t.PeerData)
	if diskErr != nil {
		rep.Notes = append(rep.Notes, "peer disk usage not measured: "+diskErr.Error())
	}
	var indexStart int64
	if x.sqlite != "" {
		if indexStart, err = x.size(); err != nil {
			rep.Notes = append(rep.Notes, "index size not measured: "+err.Error())
		}
	}
	x.counting.Store(true)

	every := soakInterval(cfg.Duration, cfg.Interval)
	progressf("%s of load, a row every %s; %d workers × %d readings (%d from the heavy device)", cfg.Duration, every, cfg.Workers, cfg.BatchSize, cfg.HeavyPerBatch)
	ctr := &soakCounters{}
	op := soakOp(devs, hub, soakSlots(cfg.BatchSize, cfg.HeavyPerBatch, cfg.LightPerWorker), cfg.HeavyPerBatch, ctr)

	loadStart := time.Now()
	cpu := StartCPU(procs)
	loadDone := make(chan LoadResult, 1)
	go func() {
		lr, err := RunLoad(ctx, Load{Workers: cfg.Workers, Duration: cfg.Duration, StopAfterErrors: int64(max(50, cfg.Workers))}, op)
		if err != nil {
			lr.ErrorText = append(lr.ErrorText, err.Error())
		}
		loadDone <- lr
	}()

	sctx, stopSamplers := context.WithCancel(ctx)
	samplers := newSoakSamplers(x, operator, queried.ID, ctr, loadStart, every/time.Duration(cfg.Queries))
	var wg sync.WaitGroup
	wg.Go(func() { samplers.queries(sctx) })
	wg.Go(func() { samplers.lags(sctx) })

	prev := soakMark{at: loadStart}
	end := loadStart.Add(cfg.Duration)
	var lr LoadResult
intervals:
	for n := 1; ; n++ {
		next := loadStart.Add(time.Duration(n) * every)
		last, partial := !next.Before(end) || end.Sub(next) < every/4, false
		if last {
			lr = <-loadDone
		} else {
			timer := time.NewTimer(time.Until(next))
			select {
			case <-timer.C:
			case lr = <-loadDone: // stopped early (errors or cancelled)
				timer.Stop()
				last, partial = true, true
			}
		}
		cur := samplers.mark(ctx)
		iv := samplers.row(n, prev, cur, partial)
		rep.Intervals = append(rep.Intervals, iv)
		printInterval(progressf, iv)
		if last {
			break intervals
		}
		prev = cur
	}
	rep.Seconds = round(time.Since(loadStart).Seconds(), 1)
	stopSamplers()
	wg.Wait()
	rep.CPU = cpu.Stop()
	rep.Readings = ctr.readings.Load()
	rep.Batches = ctr.batches.Load()
	rep.Errors = lr.Errors
	rep.BatchP50Ms, rep.BatchP99Ms = ms(lr.Latency.P50), ms(lr.Latency.P99)
	for _, e := range lr.ErrorText {
		rep.Notes = append(rep.Notes, "error: "+e)
	}
	if lr.Stopped != "" {
		rep.Notes = append(rep.Notes, "load stopped early: "+lr.Stopped)
	}

	caught := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	err = x.caughtUp(cctx, operator)
	cancel()
	if err != nil {
		rep.Notes = append(rep.Notes, "the index did not catch up after the load: "+err.Error())
	}
	rep.CatchUpMs = ms(time.Since(caught))
	rep.IndexReadings = x.readings.Load()
	rep.Validation = x.validation()
	// Closing the SQLite index folds its WAL into the database file.
	closed = true
	if err := x.close(); err != nil {
		rep.Notes = append(rep.Notes, "closing the index: "+err.Error())
	}
	if diskErr == nil {
		endDisk, err := measurePeers(t.PeerData)
		if err != nil {
			rep.Notes = append(rep.Notes, "peer disk usage not measured: "+err.Error())
		} else {
			for i := range endDisk {
				rep.Peers = append(rep.Peers, GrowthPerReading(startDisk[i], endDisk[i], rep.Readings))
			}
		}
	}
	if x.sqlite != "" {
		if indexEnd, err := x.size(); err == nil {
			g := indexEnd - indexStart
			rep.IndexGrowth = &g
			rep.IndexPerRead = BytesPerReading(g, rep.Readings)
		}
	} else {
		rep.Notes = append(rep.Notes, "the size of a PostgreSQL index is not measured")
	}
	rep.EvaluateGoals()
	if ctx.Err() != nil {
		return rep, fmt.Errorf("soak interrupted: %w", ctx.Err())
	}
	return rep, nil
}

func printInterval(progressf func(string, ...any), iv SoakInterval) {
	progressf("%3.0f s: %d readings (%.0f/s), index %d blocks behind (max %d), device %d readings, range query p50 %.1f ms p99 %.1f ms (n=%d)",
		iv.EndSec, iv.Readings, iv.ReadingsPerSec, iv.LagBlocks, iv.MaxLagBlocks, iv.DeviceReadings,
		iv.Range.P50Ms, iv.AllP99Ms, iv.Queries)
}

// measurePeers sizes every peer's ledger, in the order of their names.
func measurePeers(data map[string]string) ([]PeerDisk, error) {
	if len(data) == 0 {
		return nil, errors.New("the peers' data directories are not known")
	}
	names := make([]string, 0, len(data))
	for n := range data {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]PeerDisk, 0, len(names))
	for _, n := range names {
		d, err := MeasurePeerDisk(n, data[n])
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// soakSamplers time the index's queries and its lag while the load runs.
type soakSamplers struct {
	x       *soakIndex
	c       *client.Client
	device  string
	ctr     *soakCounters
	start   time.Time
	spacing time.Duration

	mu      sync.Mutex
	samples []querySample
	maxLag  uint64
	lastLag uint64
}

func newSoakSamplers(x *soakIndex, c *client.Client, device string, ctr *soakCounters, start time.Time, spacing time.Duration) *soakSamplers {
	return &soakSamplers{x: x, c: c, device: device, ctr: ctr, start: start, spacing: max(spacing, 10*time.Millisecond)}
}

// queries alternates the two kinds of range query of the device, one
// every spacing, once it has readings.
func (s *soakSamplers) queries(ctx context.Context) {
	tick := time.NewTicker(s.spacing)
	defer tick.Stop()
	lastHour := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if s.ctr.device.Load() == 0 {
			continue
		}
		now := time.Now()
		q := index.ReadingQuery{Device: s.device, Limit: 1000}
		if lastHour {
			q.From, q.To, q.Newest = now.Add(-time.Hour), now, true
		} else {
			q.From, q.To = s.randomWindow(now, q.Limit)
		}
		began := time.Now()
		rows, err := s.x.st.Readings(ctx, q)
		took := time.Since(began)
		if err != nil {
			continue // cancelled at the end, or the index is gone (noted elsewhere)
		}
		s.mu.Lock()
		s.samples = append(s.samples, querySample{lastHour: lastHour, took: took, rows: len(rows)})
		s.mu.Unlock()
		lastHour = !lastHour
	}
}

// randomWindow is a time range at a random point of the device's history
// that holds about n of its readings at the rate it has sent them so far
// (a chart's view of a past moment): [from, to], inclusive.
func (s *soakSamplers) randomWindow(now time.Time, n int) (from, to time.Time) {
	span := now.Sub(s.start)
	sent := s.ctr.device.Load()
	window := span
	if sent > int64(n) {
		window = time.Duration(float64(span) * float64(n) / float64(sent))
	}
	from = s.start.Add(time.Duration(rand.Int64N(int64(span-window) + 1))) //nolint:gosec // a sampling point, not a secret
	return from, from.Add(window)
}

// lags samples the index's lag every second.
func (s *soakSamplers) lags(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		lag, err := s.x.lag(ctx, s.c)
		if err != nil {
			continue
		}
		s.mu.Lock()
		s.maxLag = max(s.maxLag, lag)
		s.lastLag = lag
		s.mu.Unlock()
	}
}

// mark is the soak's state now; the lag is measured afresh when it can be.
func (s *soakSamplers) mark(ctx context.Context) soakMark {
	m := soakMark{at: time.Now(), readings: s.ctr.readings.Load(), deviceReadings: s.ctr.device.Load()}
	lag, err := s.x.lag(ctx, s.c)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		lag = s.lastLag
	}
	m.lag = lag
	return m
}

// row closes an interval: its queries and most lag, which start afresh.
func (s *soakSamplers) row(n int, prev, cur soakMark, partial bool) SoakInterval {
	s.mu.Lock()
	samples, maxLag := s.samples, s.maxLag
	s.samples, s.maxLag = nil, 0
	s.mu.Unlock()
	return aggregateInterval(n, s.start, prev, cur, samples, maxLag, partial)
}
