// Package bench measures iotledger against raw Fabric on the same network in
// the same run: a closed-loop load generator, latency statistics, CPU
// accounting per process, the workloads themselves and the report that puts
// every project figure next to its raw baseline as a ratio.
package bench

import (
	"math"
	"slices"
	"time"
)

// Summary condenses a set of latency samples.
type Summary struct {
	Count int           `json:"count"`
	Min   time.Duration `json:"-"`
	Mean  time.Duration `json:"-"`
	P50   time.Duration `json:"-"`
	P90   time.Duration `json:"-"`
	P99   time.Duration `json:"-"`
	Max   time.Duration `json:"-"`
}

// Summarize sorts a copy of samples and returns its percentiles. An empty
// input gives a zero Summary.
func Summarize(samples []time.Duration) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	var total time.Duration
	for _, s := range sorted {
		total += s
	}
	return Summary{
		Count: len(sorted),
		Min:   sorted[0],
		Mean:  total / time.Duration(len(sorted)),
		P50:   Percentile(sorted, 50),
		P90:   Percentile(sorted, 90),
		P99:   Percentile(sorted, 99),
		Max:   sorted[len(sorted)-1],
	}
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// samples, which must be sorted ascending: the smallest sample such that at
// least p % of all samples are less than or equal to it. p <= 0 gives the
// minimum; an empty slice gives 0.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	if p >= 100 {
		return sorted[n-1]
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

// Ratio is value/baseline, or nil when there is no usable baseline (zero,
// negative or not a number), so that a report never shows a made-up ratio.
func Ratio(value, baseline float64) *float64 {
	if baseline <= 0 || math.IsNaN(baseline) || math.IsInf(baseline, 0) || math.IsNaN(value) {
		return nil
	}
	r := value / baseline
	return &r
}

// Rate is count per second over elapsed, 0 when elapsed is not positive.
func Rate(count int64, elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	return float64(count) / elapsed.Seconds()
}

// ms renders a duration as fractional milliseconds for reports.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}
