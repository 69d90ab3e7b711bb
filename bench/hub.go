package bench

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/client/device"
	"github.com/iotledger/iotledger/client/hub"
	"github.com/iotledger/iotledger/client/hub/wire"
)

// HubConfig sizes the end-to-end workload: simulated devices → MQTT → an
// in-process hub → the ledger.
type HubConfig struct {
	Devices    int           // MQTT device connections
	Submitters int           // hub: concurrent SubmitBatch calls
	BatchWait  time.Duration // hub: longest a reading waits for its batch
	Saturate   time.Duration // measured window of the saturating phase
	HalfLoad   time.Duration // window of the half-load latency phase
	Samples    int           // readings whose accepted→committed latency is timed
	Triggers   int           // rule → command round trips
	Revokes    int           // revocation → disconnect round trips
	// GatewayPlan leaves the hub's endorsements to the gateway's plan
	// instead of every org at once (client.WithParallelEndorsement).
	GatewayPlan bool
}

// hubRun is one end-to-end measurement: a hub, its ledger client, an
// observer of the chain's events and the bench's devices.
type hubRun struct {
	env   *Env
	cfg   HubConfig
	hub   *hub.Hub
	lc    *client.Client // the hub's identity, on its own connection
	obs   *observer
	roots *x509.CertPool // the org's CA, which issued the hub's TLS certificate: the bench's devices pin it
	// stages times the hub's batch submits, stage by stage, in the
	// half-load phase: where a reading's time to commit goes.
	stages *stageTimes
	dir    string
	stop   context.CancelFunc
}

// runHubBench measures hub ingest and the latencies that cross the hub, and
// appends them to the report.
func runHubBench(ctx context.Context, e *Env) error {
	cfg := e.Config.Hub
	if cfg.Devices < 1 {
		return errors.New("hub workload: no devices configured")
	}
	if err := e.ensureDevices(ctx, cfg.Devices); err != nil {
		return err
	}
	r, err := startHubRun(ctx, e, cfg)
	if err != nil {
		return err
	}
	defer r.close()

	row, lat, err := r.ingest(ctx)
	if row != nil {
		e.Report.Workloads = append(e.Report.Workloads, *row)
	}
	if lat != nil {
		e.Report.Latencies = append(e.Report.Latencies, *lat)
	}
	if err != nil {
		return err
	}
	var errs []error
	if l, err := r.ruleToCommand(ctx); err != nil {
		errs = append(errs, fmt.Errorf("rule → command: %w", err))
	} else {
		e.Report.Latencies = append(e.Report.Latencies, l)
	}
	ls, err := r.revocation(ctx)
	e.Report.Latencies = append(e.Report.Latencies, ls...)
	if err != nil {
		errs = append(errs, fmt.Errorf("revocation → disconnect: %w", err))
	}
	return errors.Join(errs...)
}

func startHubRun(ctx context.Context, e *Env, cfg HubConfig) (*hubRun, error) {
	dir, err := os.MkdirTemp("", "iotledger-bench-hub-")
	if err != nil {
		return nil, err
	}
	r := &hubRun{env: e, cfg: cfg, dir: dir, stages: &stageTimes{}}
	runCtx, cancel := context.WithCancel(ctx)
	r.stop = cancel
	fail := func(err error) (*hubRun, error) {
		r.close()
		return nil, err
	}
	// The hub gets its own connection, as a hub process would.
	opts := []client.Option{client.WithLogger(e.log)}
	if !cfg.GatewayPlan {
		opts = append(opts, client.WithParallelEndorsement())
	}
	r.lc, err = client.Connect(runCtx, e.Target.Profile, "hub", opts...)
	if err != nil {
		return fail(fmt.Errorf("hub identity: %w", err))
	}
	tlsCfg, roots, err := hubTLS(e.Target.Profile)
	if err != nil {
		return fail(err)
	}
	r.roots = roots
	hubID, err := e.Target.Profile.Identity("hub")
	if err != nil {
		return fail(fmt.Errorf("hub identity: %w", err))
	}
	signer, err := wire.LoadHubSigner(hubID.Cert, hubID.Key)
	if err != nil {
		return fail(fmt.Errorf("hub identity: %w", err))
	}
	if r.obs = e.observer(ctx); r.obs == nil {
		return fail(fmt.Errorf("the hub workload times commits from the channel's blocks: %w", e.obsErr))
	}
	h, err := hub.New(hub.Config{
		HubID:       "bench-hub-" + e.RunID,
		MQTTAddr:    "127.0.0.1:0",
		TLS:         tlsCfg,
		HTTPAddr:    "127.0.0.1:0",
		DataDir:     dir,
		BatchSize:   e.Config.BatchSize,
		BatchWait:   cfg.BatchWait,
		Submitters:  cfg.Submitters,
		Ledger:      r.lc,
		Events:      client.EventFeed{Client: r.lc},
		Logger:      e.log,
		Signer:      signer,
		SubmitTrace: r.stages.trace(),
		// The bench's devices all connect from 127.0.0.1, at once: the
		// per-address budget of lookups of device ids the hub does not
		// know yet, which counts the lookups in flight, would refuse most
		// of them.
		Limits: hub.Limits{UnknownDeviceRate: -1},
	})
	if err != nil {
		return fail(err)
	}
	if err := h.Start(runCtx); err != nil {
		return fail(err)
	}
	r.hub = h
	plan := "every org at once"
	if cfg.GatewayPlan {
		plan = "the gateway's plan"
	}
	e.Report.Notes = append(e.Report.Notes, "hub endorsement: "+plan)
	e.Progressf("hub started: MQTT over TLS %s, metrics %s, %d submitters, batch %d, wait %s, endorsement: %s",
		h.MQTTAddr(), h.HTTPAddr(), cfg.Submitters, e.Config.BatchSize, cfg.BatchWait, plan)
	return r, nil
}

func (r *hubRun) close() {
	if r.hub != nil {
		_ = r.hub.Close()
	}
	if r.stop != nil {
		r.stop()
	}
	if r.lc != nil {
		_ = r.lc.Close()
	}
	_ = os.RemoveAll(r.dir)
}

// ingest measures committed readings/s with devices offering more than the
// ledger took in the batched workload, then reading→commit latency at half
// the rate the hub sustained.
func (r *hubRun) ingest(ctx context.Context) (*WorkloadResult, *LatencyResult, error) {
	e := r.env
	devs, err := e.Pool.Slice(0, r.cfg.Devices)
	if err != nil {
		return nil, nil, err
	}
	fleet, err := connectFleet(ctx, r.deviceConfig(), devs)
	if err != nil {
		return nil, nil, err
	}
	defer fleet.close()

	offer := 2000.0
	if best, ok := e.Report.best(WorkTelemetryBatch); ok && best.UnitsPerSec > 0 {
		offer = best.UnitsPerSec * 1.3
	}
	warm := e.Config.Warmup
	total := warm + r.cfg.Saturate
	perDevice := int(offer*total.Seconds())/len(devs) + 2
	e.Progressf("signing readings ahead: %d devices × %d", len(devs), perDevice)
	if err := Presign(devs, min(perDevice, maxPresigned/len(devs)+1)); err != nil {
		return nil, nil, err
	}

	// The validation codes of both phases' transactions.
	fromBlock, err := r.obs.caughtUp(ctx, r.lc)
	if err != nil {
		return nil, nil, err
	}

	// Phase 1: saturate.
	e.Progressf("%-17s %4d devices offering %.0f readings/s for %s …", WorkHubIngest, len(devs), offer, total)
	cpu := StartCPU(e.Target.Processes)
	start := time.Now()
	pub := fleet.publish(ctx, offer, total, 0)
	measureFrom, measureTo := start.Add(warm), start.Add(total)
	samples := cpu.Stop()
	// Blocks that arrived in the window may still be being verified.
	if _, err := r.obs.caughtUp(ctx, r.lc); err != nil {
		return nil, nil, err
	}
	batches, readings := r.obs.committedBetween(measureFrom, measureTo)
	elapsed := measureTo.Sub(measureFrom)
	lr := LoadResult{
		Workers: len(devs), Ops: batches, Units: readings, Elapsed: elapsed,
		Errors: pub.errors, ErrorText: pub.errorText,
	}
	row := NewWorkloadResult(WorkHubIngest, KindEndToEnd, WorkRawPut, unitReadings, lr, samples)
	row.P50Ms, row.P99Ms = ms(pub.ackLatency.P50), ms(pub.ackLatency.P99) // device publish → PUBACK
	e.Progressf("%-17s %.0f readings/s committed (%.0f accepted/s), PUBACK p50 %.1f ms p99 %.1f ms",
		WorkHubIngest, row.UnitsPerSec, Rate(pub.accepted, total), row.P50Ms, row.P99Ms)
	if err := r.drain(ctx, 2*time.Minute); err != nil {
		return &row, nil, err
	}

	// Phase 2: half the sustained rate, sample accepted → committed.
	half := row.UnitsPerSec / 2
	if half <= 0 {
		return &row, nil, errors.New("the hub committed nothing; no half-load phase")
	}
	perDevice = int(half*r.cfg.HalfLoad.Seconds())/len(devs) + 2
	if err := Presign(devs, perDevice); err != nil {
		return &row, nil, err
	}
	every := max(1, int(half*r.cfg.HalfLoad.Seconds())/max(1, r.cfg.Samples))
	e.Progressf("reading→commit latency at %.0f readings/s (half the sustained rate) for %s …", half, r.cfg.HalfLoad)
	r.obs.recordReadings(true)
	defer r.obs.recordReadings(false)
	r.stages.record(true)
	pub = fleet.publish(ctx, half, r.cfg.HalfLoad, every)
	if err := r.drain(ctx, time.Minute); err != nil {
		return &row, nil, err
	}
	r.stages.record(false)
	lat, err := r.commitLatency(ctx, pub.sampled)
	row.Validation = e.validationSince(ctx, r.obs, fromBlock)
	lat.Note = fmt.Sprintf("at %.0f readings/s offered; PUBACK → the block with the reading's valid batch delivered to the bench", half)
	lat.Target = fmt.Sprintf("p99 < %.0f ms", 2*e.Target.Info.BatchTimeoutMs+latencyGoalMargin)
	e.Report.Latencies = append(e.Report.Latencies, r.stages.results(half)...)
	return &row, &lat, err
}

// drain waits for the hub's outbox to empty.
func (r *hubRun) drain(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for r.hub.Outbox().Depth() > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("the hub's outbox still holds %d readings after %s", r.hub.Outbox().Depth(), limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// commitLatency is each sampled reading's accepted → committed time: from
// its PUBACK to the arrival of the block whose valid telemetry:SubmitBatch
// transaction carries it (the observer decodes the batches' arguments as
// an org's index does). A sampled reading in no valid batch is an error.
func (r *hubRun) commitLatency(ctx context.Context, sampled []sample) (LatencyResult, error) {
	out := LatencyResult{Name: LatReadingCommit}
	// The outbox is empty: the blocks of its last batches are committed,
	// and once applied every sampled reading's commit time is known.
	if _, err := r.obs.caughtUp(ctx, r.lc); err != nil {
		return out, err
	}
	var lat []time.Duration
	var missing int
	var first string
	for _, s := range sampled {
		at, ok := r.obs.readingCommitted(s.device, s.seq)
		if !ok {
			missing++
			first = cmp.Or(first, fmt.Sprintf("%s/%d", s.device, s.seq))
			continue
		}
		lat = append(lat, at.Sub(s.acked))
	}
	fill(&out, lat)
	if missing > 0 {
		return out, fmt.Errorf("%d of %d sampled readings were not seen in a valid batch; first: %s", missing, len(sampled), first)
	}
	return out, nil
}

// deviceConfig is how the bench's devices reach the hub.
func (r *hubRun) deviceConfig() device.Config {
	return device.Config{Hub: r.hub.MQTTAddr(), HubID: "bench-hub-" + r.env.RunID, RootCAs: r.roots}
}

// hubTLS is the certificate the bench's hub serves, and the CA its devices
// pin, from the org's profile (written by `network up`).
func hubTLS(p *client.Profile) (*tls.Config, *x509.CertPool, error) {
	if p.HubTLS == nil {
		return nil, nil, fmt.Errorf("hub workload: the profile of %s has no hubTLS (a network started by an older version): take it down and up again", p.Org)
	}
	pair, err := tls.LoadX509KeyPair(p.HubTLS.Cert, p.HubTLS.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("hub workload: TLS certificate: %w", err)
	}
	roots, err := device.LoadRootCAs(p.HubTLS.CACert)
	if err != nil {
		return nil, nil, fmt.Errorf("hub workload: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, roots, nil
}
