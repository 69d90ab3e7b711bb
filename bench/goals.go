package bench

import (
	"fmt"
	"strings"
)

// Workload names used in reports and goals.
const (
	WorkRawPut         = "raw-put"
	WorkRawGet         = "raw-get"
	WorkEnroll         = "device-enroll"
	WorkTelemetry      = "telemetry-submit"
	WorkTelemetryBatch = "telemetry-batch"
	WorkCheckAccess    = "check-access"
	WorkHubIngest      = "hub-ingest"

	LatReadingCommit  = "reading accepted by hub → committed"
	LatRuleCommand    = "rule trigger → command delivered over MQTT"
	LatRevokeCommit   = "revocation committed → device disconnected"
	LatRevokeSubmit   = "revocation submitted → device disconnected"
	unitReadings      = "readings"
	latencyGoalMargin = 300 // ms added to 2×BatchTimeout for the reading→commit goal
	revokeGoalMargin  = 200 // ms added to one block for the revocation goal
)

// EvaluateGoals compares the best throughput of each workload (over all
// concurrencies) with the goals of the project and appends the verdicts.
func (r *Report) EvaluateGoals() {
	put, okPut := r.best(WorkRawPut)
	get, okGet := r.best(WorkRawGet)
	single, okSingle := r.best(WorkTelemetry)
	check, okCheck := r.best(WorkCheckAccess)
	batch, okBatch := r.best(WorkTelemetryBatch)
	hub, okHub := r.best(WorkHubIngest)

	r.Goals = append(r.Goals,
		ratioGoal("single-reading telemetry vs raw Put", "≥ 0.70× raw Put tx/s", 0.70,
			single.TxPerSec, put.TxPerSec, single.TxPerCoreSec, bestPerCore(r, WorkRawPut), okSingle && okPut, "tx/s", "tx/s"),
		ratioGoal("CheckAccess vs raw Get", "≥ 0.80× raw Get/s", 0.80,
			check.TxPerSec, get.TxPerSec, check.TxPerCoreSec, bestPerCore(r, WorkRawGet), okCheck && okGet, "/s", "/s"),
		ratioGoal("batched readings committed vs raw Put", "≥ 15× raw Put tx/s", 15,
			batch.UnitsPerSec, put.TxPerSec, batch.UnitsPerCoreSec, bestPerCore(r, WorkRawPut), okBatch && okPut, "readings/s", "tx/s"),
		ratioGoal("hub end-to-end ingest vs batched telemetry", "≥ 0.80× batched readings/s", 0.80,
			hub.UnitsPerSec, batch.UnitsPerSec, hub.UnitsPerCoreSec, batch.UnitsPerCoreSec, okHub && okBatch, "readings/s", "readings/s"),
	)

	bt := r.Network.BatchTimeoutMs
	r.Goals = append(r.Goals, r.latencyGoal(LatReadingCommit, "reading→commit p99 at half the saturating load",
		2*bt+latencyGoalMargin, fmt.Sprintf("< 2×BatchTimeout + %d ms", latencyGoalMargin), bt > 0))
	r.Goals = append(r.Goals, r.latencyGoal(LatRevokeSubmit, "revocation → disconnect (p99, from submit)",
		bt+revokeGoalMargin, fmt.Sprintf("< one block (BatchTimeout) + %d ms", revokeGoalMargin), bt > 0))
	r.Goals = append(r.Goals, r.conflictGoal())
}

// conflictGoal judges the MVCC and phantom read conflicts seen in the
// batched and hub workloads: with device-affine batches none of their
// transactions reads what another one in flight writes.
func (r *Report) conflictGoal() GoalResult {
	g := GoalResult{Goal: "MVCC/phantom read conflicts, batched and hub workloads", Target: "0 (device-affine batches)", Measured: "not measured"}
	var conflicts, txs int64
	var parts []string
	for _, w := range r.Workloads {
		if w.Validation == nil || (w.Name != WorkTelemetryBatch && w.Name != WorkHubIngest) {
			continue
		}
		conflicts += w.Validation.Conflicts
		txs += w.Validation.Transactions
		parts = append(parts, fmt.Sprintf("%s@%d %d", w.Name, w.Workers, w.Validation.Conflicts))
	}
	if len(parts) == 0 {
		return g
	}
	met := conflicts == 0
	g.Met = &met
	g.Measured = fmt.Sprintf("%d of %d transactions (%s)", conflicts, txs, strings.Join(parts, ", "))
	return g
}

// bestPerCore is the highest work per core-second of a workload.
func bestPerCore(r *Report, name string) float64 {
	var m float64
	for _, w := range r.Workloads {
		if w.Name == name {
			m = max(m, w.TxPerCoreSec)
		}
	}
	return m
}

// ratioGoal judges value/base; valuePerCore/basePerCore (work per
// core-second of our processes) is reported beside it, as it holds up when
// other load shares the machine.
func ratioGoal(goal, target string, want, value, base, valuePerCore, basePerCore float64, ok bool, unit, baseUnit string) GoalResult {
	g := GoalResult{Goal: goal, Target: target, Measured: "not measured"}
	if !ok {
		return g
	}
	ratio := Ratio(value, base)
	if ratio == nil {
		g.Measured = fmt.Sprintf("%.0f %s against a baseline of %.0f %s", value, unit, base, baseUnit)
		return g
	}
	met := *ratio >= want
	g.Met = &met
	g.Measured = fmt.Sprintf("%.2f× (%.0f %s vs %.0f %s)", *ratio, value, unit, base, baseUnit)
	if pc := Ratio(valuePerCore, basePerCore); pc != nil && valuePerCore > 0 {
		g.Measured += fmt.Sprintf("; per core-second %.2f×", *pc)
	}
	return g
}

func (r *Report) latencyGoal(name, goal string, limitMs float64, target string, ok bool) GoalResult {
	g := GoalResult{Goal: goal, Target: fmt.Sprintf("%s = %.0f ms", target, limitMs), Measured: "not measured"}
	if !ok {
		g.Target = target
		return g
	}
	for _, l := range r.Latencies {
		if l.Name != name || l.Count == 0 {
			continue
		}
		met := l.P99Ms < limitMs
		g.Met = &met
		g.Measured = fmt.Sprintf("p99 %.0f ms (p50 %.0f ms, n=%d)", l.P99Ms, l.P50Ms, l.Count)
	}
	return g
}
