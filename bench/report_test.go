package bench

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func sampleReport() *Report {
	lr := func(workers int, ops, units int64) LoadResult {
		return LoadResult{
			Workers: workers, Ops: ops, Units: units, Elapsed: 10 * time.Second,
			Latency: Summarize(durations(100, 200, 300)),
		}
	}
	cpu := []CPUSample{{Process: Process{Name: "peer0.org1", PID: 10}, Percent: 80}, {Process: Process{Name: "bench", PID: 11}, Percent: 20}}
	r := &Report{
		Mode:      "quick",
		StartedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Network:   NetworkInfo{Orgs: []string{"Org1", "Org2"}, Orderers: 1, Peers: 2, BatchTimeoutMs: 250, EndorsementPolicy: "MAJORITY"},
		BatchSize: 100,
	}
	r.Workloads = []WorkloadResult{
		NewWorkloadResult(WorkRawPut, KindSubmit, "", "", lr(32, 4000, 4000), cpu),
		NewWorkloadResult(WorkRawGet, KindEvaluate, "", "", lr(32, 20000, 20000), cpu),
		NewWorkloadResult(WorkTelemetry, KindSubmit, WorkRawPut, "", lr(32, 3000, 3000), cpu),
		NewWorkloadResult(WorkCheckAccess, KindEvaluate, WorkRawGet, "", lr(32, 17000, 17000), cpu),
		NewWorkloadResult(WorkTelemetryBatch, KindSubmit, WorkRawPut, unitReadings, lr(32, 500, 64000), cpu),
		NewWorkloadResult(WorkHubIngest, KindEndToEnd, WorkRawPut, unitReadings, lr(32, 300, 38400), cpu),
	}
	r.Workloads[4].Validation = &Validation{FromBlock: 10, ToBlock: 20, Transactions: 500}
	r.Workloads[5].Validation = &Validation{FromBlock: 30, ToBlock: 40, Transactions: 302, Conflicts: 2,
		Invalid: map[string]int64{"MVCC_READ_CONFLICT": 2}}
	r.Latencies = []LatencyResult{
		{Name: LatReadingCommit, Count: 50, P50Ms: 400, P99Ms: 700},
		{Name: LatRevokeSubmit, Count: 3, P50Ms: 300, P99Ms: 500},
	}
	r.FillRatios()
	r.EvaluateGoals()
	return r
}

func TestReportRatiosCompareWithTheBaselineAtTheSameConcurrency(t *testing.T) {
	r := sampleReport()
	byName := map[string]WorkloadResult{}
	for _, w := range r.Workloads {
		byName[w.Name] = w
	}
	require.Nil(t, byName[WorkRawPut].Ratio, "a baseline has no ratio of its own")
	require.InDelta(t, 0.75, *byName[WorkTelemetry].Ratio, 1e-9)
	require.InDelta(t, 0.85, *byName[WorkCheckAccess].Ratio, 1e-9)
	require.InDelta(t, 0.125, *byName[WorkTelemetryBatch].Ratio, 1e-9)
	require.InDelta(t, 16.0, *byName[WorkTelemetryBatch].UnitRatio, 1e-9)
}

func TestReportFallsBackToTheBestBaselineWhenConcurrenciesDiffer(t *testing.T) {
	r := &Report{Workloads: []WorkloadResult{
		{Name: WorkRawPut, Workers: 16, Ops: 10, TxPerSec: 100},
		{Name: WorkRawPut, Workers: 64, Ops: 10, TxPerSec: 400},
		{Name: WorkHubIngest, Baseline: WorkRawPut, Workers: 5, Ops: 1, TxPerSec: 20, Unit: unitReadings, UnitsPerSec: 2000},
	}}
	r.FillRatios()
	require.InDelta(t, 5.0, *r.Workloads[2].UnitRatio, 1e-9)
}

func TestGoalsSayWhereEachStands(t *testing.T) {
	r := sampleReport()
	verdict := map[string]*bool{}
	for _, g := range r.Goals {
		verdict[g.Goal] = g.Met
	}
	require.True(t, *verdict["single-reading telemetry vs raw Put"])
	require.True(t, *verdict["CheckAccess vs raw Get"])
	require.True(t, *verdict["batched readings committed vs raw Put"])
	require.False(t, *verdict["hub end-to-end ingest vs batched telemetry"], "0.6× is under the 0.8× goal")
	require.True(t, *verdict["reading→commit p99 at half the saturating load"], "700 ms < 2×250+300 ms")
	require.False(t, *verdict["revocation → disconnect (p99, from submit)"], "500 ms is over 250+200 ms")
	require.False(t, *verdict["MVCC/phantom read conflicts, batched and hub workloads"], "2 conflicts in hub-ingest")
}

func TestGoalsWithoutMeasurementsAreNotJudged(t *testing.T) {
	r := &Report{}
	r.EvaluateGoals()
	require.NotEmpty(t, r.Goals)
	for _, g := range r.Goals {
		require.Nil(t, g.Met, g.Goal)
		require.Equal(t, "not measured", g.Measured)
	}
}

func TestReportJSONShape(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, sampleReport().WriteJSON(&buf))

	var doc map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &doc))
	for _, key := range []string{"mode", "startedAt", "machine", "network", "workloads", "latencies", "goals", "batchSize"} {
		require.Contains(t, doc, key)
	}
	workloads := doc["workloads"].([]any)
	require.Len(t, workloads, 6)
	first := workloads[0].(map[string]any)
	for _, key := range []string{"name", "kind", "workers", "ops", "errors", "seconds", "txPerSec", "p50Ms", "p99Ms", "cpu"} {
		require.Contains(t, first, key)
	}
	require.NotContains(t, first, "ratio", "the baseline carries no ratio")
	require.Equal(t, "raw-put", first["name"])
	require.EqualValues(t, 400, first["txPerSec"])
	require.EqualValues(t, 200, first["p50Ms"])
	cpu := first["cpu"].([]any)[0].(map[string]any)
	require.Equal(t, "peer0.org1", cpu["name"])
	require.EqualValues(t, 80, cpu["cpuPercent"])

	batch := workloads[4].(map[string]any)
	require.Equal(t, "readings", batch["unit"])
	require.Equal(t, map[string]any{"fromBlock": 10.0, "toBlock": 20.0, "transactions": 500.0, "conflicts": 0.0}, batch["validation"])
	require.NotContains(t, first, "validation", "not observed")
	require.EqualValues(t, 6400, batch["unitsPerSec"])
	require.EqualValues(t, 16, batch["unitRatio"])

	goal := doc["goals"].([]any)[0].(map[string]any)
	for _, key := range []string{"goal", "target", "measured", "met"} {
		require.Contains(t, goal, key)
	}
}

func TestReportTableNamesEveryWorkloadAndGoal(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, sampleReport().WriteTable(&buf))
	out := buf.String()
	for _, want := range []string{WorkRawPut, WorkTelemetryBatch, "0.75×", "16.00×", "NOT MET", "peer0.org1", LatReadingCommit,
		"MVCC/phantom conflicts", "MVCC_READ_CONFLICT 2", "2 of 802 transactions (telemetry-batch@32 0, hub-ingest@32 2)"} {
		require.Contains(t, out, want)
	}
}

func TestWorkPerCoreSecondDiscountsOthersLoad(t *testing.T) {
	lr := LoadResult{Workers: 64, Ops: 2000, Elapsed: 10 * time.Second} // 200 tx/s
	busy := []CPUSample{
		{Process: Process{Name: "peer0.org1"}, Percent: 120},
		{Process: Process{Name: "bench"}, Percent: 40},
		{Process: Process{Name: "gone"}, Percent: 0, Err: "exited"},
		{Process: Process{Name: MachineProcess}, Percent: 200},
	}
	starved := []CPUSample{
		{Process: Process{Name: "peer0.org1"}, Percent: 40},
		{Process: Process{Name: MachineProcess}, Percent: 200},
	}
	r := &Report{Workloads: []WorkloadResult{
		NewWorkloadResult(WorkRawPut, KindSubmit, "", "", lr, busy),
		// Half the tx/s, but with a quarter of the CPU: twice the work per core.
		NewWorkloadResult(WorkTelemetry, KindSubmit, WorkRawPut, "", LoadResult{Workers: 64, Ops: 1000, Elapsed: 10 * time.Second}, starved),
	}}
	r.FillRatios()
	require.InDelta(t, 1.6, r.Workloads[0].CPUCores, 1e-9, "the machine-wide figure is not ours")
	require.InDelta(t, 125, r.Workloads[0].TxPerCoreSec, 1e-9)
	require.InDelta(t, 250, r.Workloads[1].TxPerCoreSec, 1e-9)
	require.InDelta(t, 0.5, *r.Workloads[1].Ratio, 1e-9)
	require.InDelta(t, 2.0, *r.Workloads[1].CPURatio, 1e-9)

	r.EvaluateGoals()
	require.Contains(t, r.Goals[0].Measured, "per core-second 2.00×")
}
