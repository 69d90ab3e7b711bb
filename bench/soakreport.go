package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Goals of the soak (the issue's): the ledger grows past SoakReadingsGoal
// readings, and a time-range query of a device with at least
// SoakDeviceReadings readings stays under SoakQueryP99Ms at p99.
const (
	SoakReadingsGoal   = 2_000_000
	SoakDeviceReadings = 100_000
	SoakQueryP99Ms     = 50.0
)

// SoakReport is what `iotledger bench --soak` measured.
type SoakReport struct {
	StartedAt     time.Time      `json:"startedAt"`
	Seconds       float64        `json:"seconds"` // of sustained load
	Machine       Machine        `json:"machine"`
	Network       NetworkInfo    `json:"network"`
	Workers       int            `json:"workers"` // concurrent batches, device-disjoint
	BatchSize     int            `json:"batchSize"`
	HeavyPerBatch int            `json:"heavyPerBatch"` // readings of the worker's heavy device in each batch
	Devices       int            `json:"devices"`
	QueryDevice   string         `json:"queryDevice"`
	Index         string         `json:"index"` // where the soak's index is ("sqlite:<path>" or the PostgreSQL URL without password)
	Intervals     []SoakInterval `json:"intervals"`
	Readings      int64          `json:"readings"`      // committed (acknowledged by the peer)
	IndexReadings int64          `json:"indexReadings"` // applied by the index during the soak
	Batches       int64          `json:"batches"`
	Errors        int64          `json:"errors"`
	BatchP50Ms    float64        `json:"batchP50Ms"`
	BatchP99Ms    float64        `json:"batchP99Ms"`
	Validation    *Validation    `json:"validation,omitempty"`
	CatchUpMs     float64        `json:"catchUpMs"` // after the load: until the index had every block
	CPU           []CPUSample    `json:"cpu"`
	Peers         []PeerGrowth   `json:"peers"`
	IndexGrowth   *int64         `json:"indexGrowth,omitempty"` // bytes; nil when not measured (PostgreSQL)
	IndexPerRead  float64        `json:"indexBytesPerReading,omitempty"`
	Goals         []GoalResult   `json:"goals"`
	Notes         []string       `json:"notes,omitempty"`
}

// WriteJSON prints the report as indented JSON.
func (r *SoakReport) WriteJSON(out io.Writer) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable prints the report for people, in the style of Report.WriteTable.
func (r *SoakReport) WriteTable(out io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "iotledger bench (soak %s) — %s, %d CPUs %s, %s\n", time.Duration(r.Seconds*float64(time.Second)).Round(time.Second),
		r.StartedAt.UTC().Format(time.RFC3339), r.Machine.CPUs, r.Machine.CPUModel, r.Machine.GoVersion)
	fmt.Fprintf(&b, "network: orgs %s, %d orderer(s), %d peer(s), endorsement %s", strings.Join(r.Network.Orgs, "+"), r.Network.Orderers, r.Network.Peers, r.Network.EndorsementPolicy)
	if r.Network.BatchTimeoutMs > 0 {
		fmt.Fprintf(&b, ", BatchTimeout %gms", r.Network.BatchTimeoutMs)
	}
	fmt.Fprintf(&b, "\nload: %d concurrent telemetry:SubmitBatch of %d readings (%d of them from the worker's heavy device), %d devices, device-disjoint\n",
		r.Workers, r.BatchSize, r.HeavyPerBatch, r.Devices)
	fmt.Fprintf(&b, "index: %s; queries of heavy device %s: its last hour (newest 1000) and a random window of its history holding about 1000 readings\n\n", r.Index, r.QueryDevice)

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "interval\tend s\treadings\treadings/s\tlag blocks\tmax lag\tdevice readings\tqueries\tlast-hour p50 ms\tp99 ms\trange p50 ms\tp99 ms\tall p99 ms\t")
	for _, iv := range r.Intervals {
		fmt.Fprintf(tw, "%d\t%.0f\t%d\t%.0f\t%d\t%d\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n",
			iv.N, iv.EndSec, iv.Readings, iv.ReadingsPerSec, iv.LagBlocks, iv.MaxLagBlocks, iv.DeviceReadings, iv.Queries,
			iv.LastHour.P50Ms, iv.LastHour.P99Ms, iv.Range.P50Ms, iv.Range.P99Ms, iv.AllP99Ms)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(&b, "\ntotal: %d readings in %d batches (%d errors), batch p50 %.0f ms, p99 %.0f ms; index applied %d readings, caught up %.0f ms after the load\n",
		r.Readings, r.Batches, r.Errors, r.BatchP50Ms, r.BatchP99Ms, r.IndexReadings, r.CatchUpMs)
	if first, last, ok := r.throughputDrift(); ok {
		fmt.Fprintf(&b, "readings/s, last full interval vs first: %.0f vs %.0f (%.2f×)\n", last, first, last/first)
	}
	if v := r.Validation; v != nil {
		fmt.Fprintf(&b, "validation: blocks %d-%d, %d iotledger transactions, %d MVCC/phantom conflicts, %d invalid\n",
			v.FromBlock, max(v.ToBlock, v.FromBlock+1)-1, v.Transactions, v.Conflicts, sumInvalid(v))
	}
	if len(r.CPU) > 0 {
		fmt.Fprintf(&b, "CPU (%% of one core, whole soak): %s\n", topCPU(r.CPU, 6))
	}

	b.WriteString("\nbytes per reading per peer (growth during the soak / readings committed)\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "store\tgrowth MB\tB/reading\t")
	for _, p := range r.Peers {
		g := p.Growth
		fmt.Fprintf(tw, "%s block files (chains)\t%.1f\t%.1f\t\n", g.Peer, mb(g.Blocks), p.PerReading.Blocks)
		fmt.Fprintf(tw, "%s state (stateLeveldb)\t%.1f\t%.1f\t\n", g.Peer, mb(g.State), p.PerReading.State)
		fmt.Fprintf(tw, "%s history (historyLeveldb)\t%.1f\t%.1f\t\n", g.Peer, mb(g.History), p.PerReading.History)
		fmt.Fprintf(tw, "%s ledgersData, all\t%.1f\t%.1f\t\n", g.Peer, mb(g.Ledger), p.PerReading.Ledger)
	}
	if r.IndexGrowth != nil {
		fmt.Fprintf(tw, "index database\t%.1f\t%.1f\t\n", mb(*r.IndexGrowth), r.IndexPerRead)
	} else {
		fmt.Fprintf(tw, "index database\t-\t-\t\n")
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(r.Goals) > 0 {
		b.WriteString("\ngoals\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, g := range r.Goals {
			fmt.Fprintf(tw, "%s\t%s\ttarget %s\tmeasured %s\n", goalState(g.Met), g.Goal, g.Target, g.Measured)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	_, err := io.WriteString(out, b.String())
	return err
}

func goalState(met *bool) string {
	if met == nil {
		return "n/a"
	}
	if *met {
		return "MET"
	}
	return "NOT MET"
}

func mb(n int64) float64 { return round(float64(n)/1e6, 1) }

func sumInvalid(v *Validation) int64 {
	var n int64
	for _, c := range v.Invalid {
		n += c
	}
	return n
}

// throughputDrift compares the readings/s of the first and the last full
// interval (the last one may be cut short).
func (r *SoakReport) throughputDrift() (first, last float64, ok bool) {
	var full []SoakInterval
	for _, iv := range r.Intervals {
		if !iv.Partial {
			full = append(full, iv)
		}
	}
	if len(full) < 2 || full[0].ReadingsPerSec <= 0 {
		return 0, 0, false
	}
	return full[0].ReadingsPerSec, full[len(full)-1].ReadingsPerSec, true
}

// EvaluateGoals appends the soak's verdicts.
func (r *SoakReport) EvaluateGoals() {
	met := r.Readings >= SoakReadingsGoal
	r.Goals = append(r.Goals, GoalResult{
		Goal:     "readings committed during the soak",
		Target:   fmt.Sprintf("≥ %d", SoakReadingsGoal),
		Measured: fmt.Sprintf("%d in %.0f s", r.Readings, r.Seconds),
		Met:      &met,
	})
	r.Goals = append(r.Goals, r.queryGoal())
	if v := r.Validation; v != nil {
		ok := v.Conflicts == 0
		r.Goals = append(r.Goals, GoalResult{
			Goal: "MVCC/phantom read conflicts during the soak", Target: "0 (device-disjoint batches)",
			Measured: fmt.Sprintf("%d of %d transactions", v.Conflicts, v.Transactions), Met: &ok,
		})
	}
}

// queryGoal judges the range queries of the intervals in which the
// queried device already had SoakDeviceReadings readings: the worst p99
// of those intervals. Without such an interval it is not measured, and
// the worst p99 seen is given.
func (r *SoakReport) queryGoal() GoalResult {
	g := GoalResult{
		Goal:   fmt.Sprintf("device time-range query p99, device with ≥ %d readings", SoakDeviceReadings),
		Target: fmt.Sprintf("< %.0f ms", SoakQueryP99Ms),
	}
	var worst, worstAny float64
	var n, samples int
	var most int64
	for _, iv := range r.Intervals {
		worstAny = max(worstAny, iv.AllP99Ms)
		most = max(most, iv.DeviceReadings)
		if iv.DeviceReadingsAtStart < SoakDeviceReadings || iv.Queries == 0 {
			continue
		}
		worst = max(worst, iv.AllP99Ms)
		n++
		samples += iv.Queries
	}
	if n == 0 {
		g.Measured = fmt.Sprintf("not measured: the device reached %d readings (worst interval p99 %.1f ms)", most, worstAny)
		return g
	}
	met := worst < SoakQueryP99Ms
	g.Met = &met
	g.Measured = fmt.Sprintf("worst interval p99 %.1f ms over %d intervals (%d queries), device at %d readings", worst, n, samples, most)
	return g
}
