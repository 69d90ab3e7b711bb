package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Workload kinds: a submit is compared with raw Put, an evaluate with raw Get.
const (
	KindSubmit   = "submit"
	KindEvaluate = "evaluate"
	KindEndToEnd = "end-to-end"
)

// Report is everything one bench run measured. It is what `-o json` prints.
type Report struct {
	Mode       string           `json:"mode"` // "quick" or "full"
	StartedAt  time.Time        `json:"startedAt"`
	Seconds    float64          `json:"seconds"` // wall time of the whole run
	Machine    Machine          `json:"machine"`
	Network    NetworkInfo      `json:"network"`
	Workloads  []WorkloadResult `json:"workloads"`
	Latencies  []LatencyResult  `json:"latencies"`
	Goals      []GoalResult     `json:"goals"`
	Notes      []string         `json:"notes,omitempty"`
	Skipped    []string         `json:"skipped,omitempty"` // workloads that could not run, and why
	BatchSize  int              `json:"batchSize"`
	BenchPID   int              `json:"benchPid"`
	Processes  []Process        `json:"processes"`
	Concurrent []int            `json:"concurrencies"`
	BatchConc  []int            `json:"batchConcurrencies"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpuModel,omitempty"`
	GoVersion string `json:"goVersion"`
	OS        string `json:"os"`
}

// NetworkInfo describes the Fabric network under load.
type NetworkInfo struct {
	Orgs              []string `json:"orgs"`
	Orderers          int      `json:"orderers"`
	Peers             int      `json:"peers"`
	BatchTimeoutMs    float64  `json:"batchTimeoutMs,omitempty"`
	MaxMessageCount   int      `json:"maxMessageCount,omitempty"`
	EndorsementPolicy string   `json:"endorsementPolicy"`
	StateDir          string   `json:"stateDir"`
	BroughtUp         bool     `json:"broughtUp"` // true when bench started (and stopped) the network itself
}

// WorkloadResult is one workload at one concurrency.
type WorkloadResult struct {
	Name        string      `json:"name"`               // e.g. "raw-put", "telemetry-batch"
	Kind        string      `json:"kind"`               // submit, evaluate, end-to-end
	Baseline    string      `json:"baseline,omitempty"` // the raw workload it is compared with
	Workers     int         `json:"workers"`
	Ops         int64       `json:"ops"`
	Errors      int64       `json:"errors"`
	Seconds     float64     `json:"seconds"`
	TxPerSec    float64     `json:"txPerSec"`
	Unit        string      `json:"unit,omitempty"` // what UnitsPerSec counts, e.g. "readings"
	UnitsPerSec float64     `json:"unitsPerSec,omitempty"`
	P50Ms       float64     `json:"p50Ms"`
	P99Ms       float64     `json:"p99Ms"`
	Ratio       *float64    `json:"ratio,omitempty"`     // TxPerSec / baseline TxPerSec at the same workers
	UnitRatio   *float64    `json:"unitRatio,omitempty"` // UnitsPerSec / baseline TxPerSec at the same workers
	CPU         []CPUSample `json:"cpu"`
	// CPUCores is the CPU our processes (network + bench) used, in cores.
	// On a shared machine others' load moves tx/s; work per core-second
	// does not, so it is given too, with its own ratios.
	CPUCores        float64  `json:"cpuCores"`
	TxPerCoreSec    float64  `json:"txPerCoreSec,omitempty"`
	UnitsPerCoreSec float64  `json:"unitsPerCoreSec,omitempty"`
	CPURatio        *float64 `json:"cpuRatio,omitempty"`     // TxPerCoreSec / baseline's
	CPUUnitRatio    *float64 `json:"cpuUnitRatio,omitempty"` // UnitsPerCoreSec / baseline's TxPerCoreSec
	ErrorText       []string `json:"errorText,omitempty"`
	Stopped         string   `json:"stopped,omitempty"`
	// Validation is what the peers' validation flags said of the iotledger
	// transactions committed while the workload ran (warm-up included; for
	// hub-ingest both phases), from the blocks the bench follows; nil when
	// they were not observed.
	Validation *Validation `json:"validation,omitempty"`
}

// Validation counts the validation codes of the iotledger transactions in
// a range of blocks.
type Validation struct {
	FromBlock    uint64           `json:"fromBlock"` // blocks [fromBlock, toBlock)
	ToBlock      uint64           `json:"toBlock"`
	Transactions int64            `json:"transactions"`      // valid or not
	Invalid      map[string]int64 `json:"invalid,omitempty"` // by validation code
	// Conflicts are the MVCC_READ_CONFLICT and PHANTOM_READ_CONFLICT
	// transactions: batches that read a key another transaction of the same
	// or an earlier block wrote after their endorsement. With device-affine
	// batches (a device in one batch in flight at a time) there should be
	// none.
	Conflicts int64 `json:"conflicts"`
}

// LatencyResult is a one-way latency measured across components.
type LatencyResult struct {
	Name   string  `json:"name"`
	Count  int     `json:"count"`
	P50Ms  float64 `json:"p50Ms"`
	P99Ms  float64 `json:"p99Ms"`
	MaxMs  float64 `json:"maxMs"`
	Target string  `json:"target,omitempty"`
	Note   string  `json:"note,omitempty"`
}

// GoalResult says where one of the performance goals stands.
type GoalResult struct {
	Goal     string `json:"goal"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Met      *bool  `json:"met,omitempty"` // nil when it could not be measured
}

// NewWorkloadResult turns a load result and its CPU window into a report row.
func NewWorkloadResult(name, kind, baseline, unit string, lr LoadResult, cpu []CPUSample) WorkloadResult {
	w := WorkloadResult{
		Name:      name,
		Kind:      kind,
		Baseline:  baseline,
		Workers:   lr.Workers,
		Ops:       lr.Ops,
		Errors:    lr.Errors,
		Seconds:   round(lr.Elapsed.Seconds(), 2),
		TxPerSec:  round(lr.OpsPerSec(), 1),
		P50Ms:     ms(lr.Latency.P50),
		P99Ms:     ms(lr.Latency.P99),
		CPU:       cpu,
		ErrorText: lr.ErrorText,
		Stopped:   lr.Stopped,
	}
	if unit != "" {
		w.Unit = unit
		w.UnitsPerSec = round(lr.UnitsPerSec(), 1)
	}
	var ours float64
	for _, c := range cpu {
		if c.Name != MachineProcess && c.Err == "" {
			ours += c.Percent
		}
	}
	w.CPUCores = round(ours/100, 3)
	if w.CPUCores > 0 {
		w.TxPerCoreSec = round(w.TxPerSec/w.CPUCores, 1)
		w.UnitsPerCoreSec = round(w.UnitsPerSec/w.CPUCores, 1)
	}
	return w
}

// FillRatios sets every row's ratios against the row of its baseline
// workload at the same concurrency (or, failing that, the baseline's best).
func (r *Report) FillRatios() {
	for i := range r.Workloads {
		w := &r.Workloads[i]
		if w.Baseline == "" {
			continue
		}
		base, ok := r.find(w.Baseline, w.Workers)
		if !ok {
			base, ok = r.best(w.Baseline)
		}
		if !ok {
			continue
		}
		w.Ratio = roundPtr(Ratio(w.TxPerSec, base.TxPerSec))
		w.CPURatio = roundPtr(Ratio(w.TxPerCoreSec, base.TxPerCoreSec))
		if w.Unit != "" {
			w.UnitRatio = roundPtr(Ratio(w.UnitsPerSec, base.TxPerSec))
			w.CPUUnitRatio = roundPtr(Ratio(w.UnitsPerCoreSec, base.TxPerCoreSec))
		}
	}
}

func (r *Report) find(name string, workers int) (WorkloadResult, bool) {
	for _, w := range r.Workloads {
		if w.Name == name && w.Workers == workers {
			return w, true
		}
	}
	return WorkloadResult{}, false
}

// best returns the row of a workload with the highest throughput (units/s
// when it counts units, tx/s otherwise).
func (r *Report) best(name string) (WorkloadResult, bool) {
	var out WorkloadResult
	found := false
	for _, w := range r.Workloads {
		if w.Name != name || w.Ops == 0 {
			continue
		}
		if !found || w.throughput() > out.throughput() {
			out, found = w, true
		}
	}
	return out, found
}

func (w WorkloadResult) throughput() float64 {
	if w.Unit != "" {
		return w.UnitsPerSec
	}
	return w.TxPerSec
}

// WriteJSON prints the report as indented JSON.
func (r *Report) WriteJSON(out io.Writer) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable prints the report for people.
func (r *Report) WriteTable(out io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "iotledger bench (%s) — %s, %d CPUs %s, %s\n", r.Mode, r.StartedAt.UTC().Format(time.RFC3339), r.Machine.CPUs, r.Machine.CPUModel, r.Machine.GoVersion)
	fmt.Fprintf(&b, "network: orgs %s, %d orderer(s), %d peer(s), endorsement %s", strings.Join(r.Network.Orgs, "+"), r.Network.Orderers, r.Network.Peers, r.Network.EndorsementPolicy)
	if r.Network.BatchTimeoutMs > 0 {
		fmt.Fprintf(&b, ", BatchTimeout %gms", r.Network.BatchTimeoutMs)
	}
	if r.Network.MaxMessageCount > 0 {
		fmt.Fprintf(&b, ", MaxMessageCount %d", r.Network.MaxMessageCount)
	}
	fmt.Fprintf(&b, "; batch size %d\n\n", r.BatchSize)

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tkind\tworkers\ttx/s\tratio\tunits/s\tunit ratio\tp50 ms\tp99 ms\terrors\tcores\tper core-s\tratio/core\tCPU % (top)\t")
	for _, w := range r.Workloads {
		units, unitRatio := "-", "-"
		perCore, cpuRatio := fmt.Sprintf("%.0f tx", w.TxPerCoreSec), fmtRatio(w.CPURatio)
		if w.Unit != "" {
			units = fmt.Sprintf("%.0f %s", w.UnitsPerSec, w.Unit)
			unitRatio = fmtRatio(w.UnitRatio)
			perCore, cpuRatio = fmt.Sprintf("%.0f %s", w.UnitsPerCoreSec, w.Unit), fmtRatio(w.CPUUnitRatio)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%s\t%s\t%s\t%.1f\t%.1f\t%d\t%.2f\t%s\t%s\t%s\t\n",
			w.Name, w.Kind, w.Workers, w.TxPerSec, fmtRatio(w.Ratio), units, unitRatio, w.P50Ms, w.P99Ms, w.Errors,
			w.CPUCores, perCore, cpuRatio, topCPU(w.CPU, 3))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := r.writeValidation(&b); err != nil {
		return err
	}
	if len(r.Latencies) > 0 {
		b.WriteString("\nlatencies\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "path\tcount\tp50 ms\tp99 ms\tmax ms\ttarget\tnote")
		for _, l := range r.Latencies {
			fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t%s\t%s\n", l.Name, l.Count, l.P50Ms, l.P99Ms, l.MaxMs, l.Target, l.Note)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Goals) > 0 {
		b.WriteString("\ngoals\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, g := range r.Goals {
			state := "n/a"
			if g.Met != nil {
				state = map[bool]string{true: "MET", false: "NOT MET"}[*g.Met]
			}
			fmt.Fprintf(tw, "%s\t%s\ttarget %s\tmeasured %s\n", state, g.Goal, g.Target, g.Measured)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Workloads) > 0 {
		b.WriteString("\nCPU per process (% of one core) per workload\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 1, ' ', tabwriter.AlignRight)
		names := processNames(r.Workloads)
		fmt.Fprintf(tw, "workload\tworkers\t%s\t\n", strings.Join(names, "\t"))
		for _, w := range r.Workloads {
			cells := make([]string, len(names))
			for i, n := range names {
				cells[i] = "-"
				for _, c := range w.CPU {
					if c.Name == n && c.Err == "" {
						cells[i] = fmt.Sprintf("%.0f", c.Percent)
					}
				}
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t\n", w.Name, w.Workers, strings.Join(cells, "\t"))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(&b, "skipped: %s\n", s)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	for _, w := range r.Workloads {
		for _, e := range w.ErrorText {
			fmt.Fprintf(&b, "error in %s@%d: %s\n", w.Name, w.Workers, e)
		}
	}
	_, err := io.WriteString(out, b.String())
	return err
}

// writeValidation prints the validation codes seen in each workload that
// has them.
func (r *Report) writeValidation(b *strings.Builder) error {
	var rows []WorkloadResult
	for _, w := range r.Workloads {
		if w.Validation != nil {
			rows = append(rows, w)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	b.WriteString("\nvalidation codes of the iotledger transactions committed during each workload (blocks followed by the bench)\n")
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "workload\tworkers\tblocks\ttransactions\tMVCC/phantom conflicts\tinvalid, by code")
	for _, w := range rows {
		v := w.Validation
		codes := make([]string, 0, len(v.Invalid))
		for c := range v.Invalid {
			codes = append(codes, c)
		}
		slices.Sort(codes)
		invalid := "-"
		if len(codes) > 0 {
			parts := make([]string, len(codes))
			for i, c := range codes {
				parts[i] = fmt.Sprintf("%s %d", c, v.Invalid[c])
			}
			invalid = strings.Join(parts, ", ")
		}
		fmt.Fprintf(tw, "%s\t%d\t%d-%d\t%d\t%d\t%s\n", w.Name, w.Workers, v.FromBlock, max(v.ToBlock, v.FromBlock+1)-1, v.Transactions, v.Conflicts, invalid)
	}
	return tw.Flush()
}

func processNames(ws []WorkloadResult) []string {
	var names []string
	seen := map[string]bool{}
	for _, w := range ws {
		for _, c := range w.CPU {
			if !seen[c.Name] {
				seen[c.Name] = true
				names = append(names, c.Name)
			}
		}
	}
	return names
}

func topCPU(samples []CPUSample, n int) string {
	type kv struct {
		name string
		pct  float64
	}
	var all []kv
	var total float64
	machine := -1.0
	for _, s := range samples {
		if s.Name == MachineProcess {
			if s.Err == "" {
				machine = s.Percent
			}
			continue
		}
		if s.Err == "" {
			all = append(all, kv{s.Name, s.Percent})
			total += s.Percent
		}
	}
	if len(all) == 0 {
		return "-"
	}
	// Insertion sort: a handful of processes.
	for i := 1; i < len(all); i++ {
		for j := i; j > 0 && all[j].pct > all[j-1].pct; j-- {
			all[j], all[j-1] = all[j-1], all[j]
		}
	}
	parts := []string{fmt.Sprintf("ours %.0f", total)}
	if machine >= 0 {
		parts = append(parts, fmt.Sprintf("others %.0f", max(machine-total, 0)))
	}
	for i := 0; i < len(all) && i < n; i++ {
		parts = append(parts, fmt.Sprintf("%s %.0f", all[i].name, all[i].pct))
	}
	return strings.Join(parts, ", ")
}

func fmtRatio(r *float64) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f×", *r)
}

func round(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	if v >= 0 {
		return float64(int64(v*p+0.5)) / p
	}
	return float64(int64(v*p-0.5)) / p
}

func roundPtr(v *float64) *float64 {
	if v == nil {
		return nil
	}
	r := round(*v, 3)
	return &r
}
