package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client"
)

// Config says how much load a run applies.
type Config struct {
	Quick       bool
	Concurrency []int         // closed-loop worker counts, each workload runs at each
	Duration    time.Duration // measured window of each workload at each concurrency
	Warmup      time.Duration // discarded start of each window
	BatchSize   int           // readings per telemetry:SubmitBatch
	// BatchConcurrency are the worker counts of the batched workload: each
	// worker keeps BatchSize readings in flight, so it runs at fewer
	// workers than the single-transaction workloads.
	BatchConcurrency []int
	DevicesPerWorker int       // devices each batch worker spreads its readings over
	Hub              HubConfig // the end-to-end workload through the hub
	Only             []string  // run only these workloads (names as in the report); empty = all
	Progress         io.Writer // progress lines (stderr); nil = none
	Logger           *slog.Logger
}

// QuickConfig is about two minutes of load.
func QuickConfig() Config {
	return Config{
		Quick:            true,
		Concurrency:      []int{32, 128},
		BatchConcurrency: []int{8, 32},
		Duration:         5 * time.Second,
		Warmup:           time.Second,
		BatchSize:        api.DefaultBatchReadings,
		DevicesPerWorker: 10,
		Hub: HubConfig{
			Devices: 100, Submitters: 32, BatchWait: 200 * time.Millisecond,
			Saturate: 15 * time.Second, HalfLoad: 10 * time.Second, Samples: 200, Triggers: 5, Revokes: 5,
		},
	}
}

// FullConfig is about ten minutes of load.
func FullConfig() Config {
	return Config{
		Concurrency:      []int{16, 64, 256},
		BatchConcurrency: []int{4, 16, 64},
		Duration:         25 * time.Second,
		Warmup:           3 * time.Second,
		BatchSize:        api.DefaultBatchReadings,
		DevicesPerWorker: 10,
		Hub: HubConfig{
			Devices: 200, Submitters: 32, BatchWait: 200 * time.Millisecond,
			Saturate: 45 * time.Second, HalfLoad: 30 * time.Second, Samples: 500, Triggers: 10, Revokes: 10,
		},
	}
}

// Validate says what is wrong with a configuration.
func (c Config) Validate() error {
	if len(c.Concurrency) == 0 || len(c.BatchConcurrency) == 0 {
		return errors.New("bench: at least one concurrency is needed")
	}
	for _, n := range append(slices.Clone(c.Concurrency), c.BatchConcurrency...) {
		if n < 1 || n > 2000 {
			return fmt.Errorf("bench: concurrency %d out of range 1..2000", n)
		}
	}
	if c.Duration <= 0 {
		return errors.New("bench: the duration of each workload must be positive")
	}
	if c.BatchSize < 1 || c.BatchSize > api.MaxBatchReadings {
		return fmt.Errorf("bench: batch size %d out of range 1..%d (telemetry:SubmitBatch's limit)", c.BatchSize, api.MaxBatchReadings)
	}
	for _, name := range c.Only {
		if !slices.Contains(allWorkloads, name) {
			return fmt.Errorf("bench: unknown workload %q (have %s)", name, strings.Join(allWorkloads, ", "))
		}
	}
	if c.DevicesPerWorker < 1 || c.DevicesPerWorker > c.BatchSize {
		return fmt.Errorf("bench: devices per worker %d out of range 1..batch size", c.DevicesPerWorker)
	}
	return nil
}

// allWorkloads names every workload in the order a run applies them.
var allWorkloads = []string{WorkRawPut, WorkRawGet, WorkEnroll, WorkTelemetry, WorkTelemetryBatch, WorkCheckAccess, WorkHubIngest}

// Target is the running network under load.
type Target struct {
	Profile      *client.Profile // the org whose gateway peer takes the load
	Profiles     []*client.Profile
	RefChaincode string // name of the reference chaincode (Put/Get)
	Processes    []Process
	Info         NetworkInfo
	// PeerData are the peers' data directories (peer.fileSystemPath), by
	// node name, for the soak's disk accounting; empty when unknown.
	PeerData map[string]string
}

// Env is what workloads share during a run.
type Env struct {
	Target   Target
	Config   Config
	Operator *client.Client // "operator" identity of Target.Profile
	Hub      *client.Client // "hub" identity of Target.Profile
	Raw      *RawGateway
	Pool     *Pool
	RunID    string
	Report   *Report
	progress io.Writer
	log      *slog.Logger

	// The channel's blocks, followed from the first workload that needs
	// them (observer.go).
	obs     *observer
	obsStop context.CancelFunc
	obsErr  error
}

// Progressf prints one progress line.
func (e *Env) Progressf(format string, args ...any) {
	if e.progress != nil {
		fmt.Fprintf(e.progress, "bench: "+format+"\n", args...)
	}
}

// Run applies every workload to the target and returns the report.
func Run(ctx context.Context, cfg Config, t Target) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if t.Profile == nil {
		return nil, errors.New("bench: no connection profile for the network under load")
	}
	if t.RefChaincode == "" {
		return nil, errors.New("bench: no reference chaincode name")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	self := Process{Name: "bench", PID: os.Getpid()}
	t.Processes = append(append([]Process(nil), t.Processes...), self)
	mode := "full"
	if cfg.Quick {
		mode = "quick"
	}
	started := time.Now()
	rep := &Report{
		Mode:       mode,
		StartedAt:  started.UTC(),
		Machine:    describeMachine(),
		Network:    t.Info,
		BatchSize:  cfg.BatchSize,
		BenchPID:   self.PID,
		Processes:  t.Processes,
		Concurrent: cfg.Concurrency,
		BatchConc:  cfg.BatchConcurrency,
		Workloads:  []WorkloadResult{},
		Latencies:  []LatencyResult{},
	}

	conn, err := client.NewConnection(t.Profile)
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	raw, err := NewRawGateway(conn, t.Profile, "hub", t.RefChaincode)
	if err != nil {
		return nil, err
	}
	defer func() { _ = raw.Close() }()
	operator, hub, closeClients, err := dialOperatorAndHub(ctx, conn, t.Profile, log)
	if err != nil {
		return nil, err
	}
	defer closeClients()

	runID := "b" + strconv.FormatInt(started.Unix(), 36)
	env := &Env{
		Target: t, Config: cfg, Operator: operator, Hub: hub, Raw: raw,
		Pool: NewPool(runID), RunID: runID, Report: rep, progress: cfg.Progress, log: log,
	}
	defer env.closeObserver()
	// Workloads are interleaved per concurrency, so that each is measured
	// within seconds of its baseline: on a shared machine others' load
	// drifts over minutes.
	failed := map[string]bool{}
	apply := func(name string, c int, point func(context.Context, *Env, int) error) {
		if ctx.Err() != nil || failed[name] || (len(cfg.Only) > 0 && !slices.Contains(cfg.Only, name)) {
			return
		}
		if err := point(ctx, env, c); err != nil && ctx.Err() == nil {
			failed[name] = true
			env.Progressf("%s: %v", name, err)
			rep.Skipped = append(rep.Skipped, name+": "+err.Error())
		}
	}
	for _, c := range cfg.Concurrency {
		apply(WorkRawPut, c, rawPutAt)
		apply(WorkEnroll, c, enrollAt)
		apply(WorkTelemetry, c, telemetryAt)
		apply(WorkRawGet, c, rawGetAt)
		apply(WorkCheckAccess, c, checkAccessAt)
	}
	for _, c := range cfg.BatchConcurrency {
		apply(WorkTelemetryBatch, c, batchAt)
	}
	apply(WorkHubIngest, 0, func(ctx context.Context, e *Env, _ int) error { return runHubBench(ctx, e) })
	rep.Seconds = round(time.Since(started).Seconds(), 1)
	rep.FillRatios()
	rep.EvaluateGoals()
	if ctx.Err() != nil {
		return rep, fmt.Errorf("bench interrupted: %w", ctx.Err())
	}
	return rep, nil
}

// measure runs op at one concurrency inside a CPU window and appends the row.
func (e *Env) measure(ctx context.Context, name, kind, baseline, unit string, workers int, op Op) WorkloadResult {
	load := Load{Workers: workers, Duration: e.Config.Duration, Warmup: e.Config.Warmup, StopAfterErrors: int64(max(50, workers))}
	e.Progressf("%-17s %4d workers, %s …", name, workers, e.Config.Duration+e.Config.Warmup)
	cpu := StartCPU(e.Target.Processes)
	lr, err := RunLoad(ctx, load, op)
	samples := cpu.Stop()
	if err != nil {
		lr.ErrorText = append(lr.ErrorText, err.Error())
	}
	row := NewWorkloadResult(name, kind, baseline, unit, lr, samples)
	e.Report.Workloads = append(e.Report.Workloads, row)
	units := ""
	if unit != "" {
		units = fmt.Sprintf(", %.0f %s/s", row.UnitsPerSec, unit)
	}
	e.Progressf("%-17s %4d workers: %.1f tx/s%s, p50 %.0f ms, p99 %.0f ms, %d errors%s",
		name, workers, row.TxPerSec, units, row.P50Ms, row.P99Ms, row.Errors, stoppedNote(row.Stopped))
	return row
}

func stoppedNote(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func rawPutAt(ctx context.Context, e *Env, c int) error {
	e.measure(ctx, WorkRawPut, KindSubmit, "", "", c, e.Raw.PutOp(e.RunID+"-put"+strconv.Itoa(c)))
	return nil
}

func rawGetAt(ctx context.Context, e *Env, c int) error {
	keys := e.Raw.KnownKeys()
	if len(keys) == 0 {
		e.Progressf("raw-get: seeding keys")
		if err := e.Raw.Seed(ctx, e.RunID+"-seed", 256, 32); err != nil {
			return err
		}
		keys = e.Raw.KnownKeys()
	}
	op, err := e.Raw.GetOp(keys)
	if err != nil {
		return err
	}
	e.measure(ctx, WorkRawGet, KindEvaluate, "", "", c, op)
	return nil
}

func enrollAt(ctx context.Context, e *Env, c int) error {
	e.measure(ctx, WorkEnroll, KindSubmit, WorkRawPut, "", c, EnrollOp(e.Pool, e.Operator))
	return nil
}

// ensureDevices enrolls what the telemetry workloads need at the highest
// concurrency, outside any measured window.
func (e *Env) ensureDevices(ctx context.Context, n int) error {
	if e.Pool.Len() >= n {
		return nil
	}
	e.Progressf("enrolling %d more devices (have %d)", n-e.Pool.Len(), e.Pool.Len())
	return EnsureDevices(ctx, e.Pool, e.Operator, n, 64)
}

// expectedOps estimates how many operations a window will complete: factor
// × the best measured rate of a workload (or fallback ops/s without one),
// capped so that signing ahead stays within memory and a few seconds.
func (e *Env) expectedOps(name string, factor, fallback float64) int {
	rate := fallback
	if best, ok := e.Report.best(name); ok {
		rate = best.throughput()
	}
	n := int(rate * factor * (e.Config.Duration + e.Config.Warmup).Seconds())
	return min(n, maxPresigned)
}

// maxPresigned bounds the readings signed ahead for one run (~400 B each).
const maxPresigned = 200_000

// presign tops up the queues of the devices of workers×perWorker to n
// readings each.
func (e *Env) presign(workers, perWorker, n int) error {
	devs, err := e.Pool.Slice(0, workers*perWorker)
	if err != nil {
		return err
	}
	var need []*Device
	for _, d := range devs {
		if len(d.ready) < n {
			need = append(need, d)
		}
	}
	if len(need) == 0 {
		return nil
	}
	e.Progressf("signing readings ahead: %d devices × %d", len(need), n)
	return Presign(need, n)
}

func telemetryAt(ctx context.Context, e *Env, c int) error {
	if err := e.ensureDevices(ctx, c); err != nil {
		return err
	}
	// Devices sign on their own hardware: sign ahead, outside the window.
	perDevice := e.expectedOps(WorkRawPut, 1.5, 100) / c
	if err := e.presign(c, 1, perDevice); err != nil {
		return err
	}
	op, err := TelemetryOp(e.Pool, e.Hub, c)
	if err != nil {
		return err
	}
	e.measure(ctx, WorkTelemetry, KindSubmit, WorkRawPut, "", c, op)
	return nil
}

func batchAt(ctx context.Context, e *Env, c int) error {
	if err := e.ensureDevices(ctx, c*e.Config.DevicesPerWorker); err != nil {
		return err
	}
	// At most ~17 readings per raw Put were ever measured here.
	perDevice := e.expectedOps(WorkRawPut, 17*1.2, 100) / (c * e.Config.DevicesPerWorker)
	if err := e.presign(c, e.Config.DevicesPerWorker, perDevice); err != nil {
		return err
	}
	op, err := BatchOp(e.Pool, e.Hub, c, e.Config.DevicesPerWorker, e.Config.BatchSize)
	if err != nil {
		return err
	}
	// The validation codes of the window's transactions: the client
	// retries a conflict, so only the blocks show how many there were.
	from, obs := e.observeFrom(ctx, e.observer(ctx))
	e.measure(ctx, WorkTelemetryBatch, KindSubmit, WorkRawPut, unitReadings, c, op)
	e.Report.Workloads[len(e.Report.Workloads)-1].Validation = e.validationSince(ctx, obs, from)
	return nil
}

func checkAccessAt(ctx context.Context, e *Env, c int) error {
	if err := e.ensureDevices(ctx, c); err != nil {
		return err
	}
	op, err := CheckAccessOp(e.Pool, e.Operator, "telemetry:read")
	if err != nil {
		return err
	}
	e.measure(ctx, WorkCheckAccess, KindEvaluate, WorkRawGet, "", c, op)
	return nil
}

func describeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPUModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	return m
}

// dialOperatorAndHub opens the org's operator and hub clients on conn; the
// function returned closes both.
func dialOperatorAndHub(ctx context.Context, conn *grpc.ClientConn, p *client.Profile, log *slog.Logger) (operator, hub *client.Client, closeBoth func(), err error) {
	opts := []client.Option{client.WithLogger(log)}
	operator, err = client.Dial(ctx, conn, p, "operator", opts...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("bench: operator identity: %w", err)
	}
	hub, err = client.Dial(ctx, conn, p, "hub", opts...)
	if err != nil {
		_ = operator.Close()
		return nil, nil, nil, fmt.Errorf("bench: hub identity: %w", err)
	}
	return operator, hub, func() { _ = hub.Close(); _ = operator.Close() }, nil
}
