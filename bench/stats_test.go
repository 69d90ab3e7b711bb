package bench

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func durations(ms ...int) []time.Duration {
	out := make([]time.Duration, len(ms))
	for i, m := range ms {
		out[i] = time.Duration(m) * time.Millisecond
	}
	return out
}

func TestPercentileUsesNearestRank(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name    string
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{"empty gives zero", nil, 50, 0},
		{"single sample is every percentile", durations(7), 99, 7 * time.Millisecond},
		{"median of odd count is the middle", durations(1, 2, 3, 4, 5), 50, 3 * time.Millisecond},
		{"median of even count is the lower middle", durations(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 1..100 is 99", hundred, 99, 99 * time.Millisecond},
		{"p50 of 1..100 is 50", hundred, 50, 50 * time.Millisecond},
		{"p100 is the maximum", hundred, 100, 100 * time.Millisecond},
		{"p0 is the minimum", hundred, 0, 1 * time.Millisecond},
		{"p99 of ten samples is the maximum", durations(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, Percentile(tc.samples, tc.p))
		})
	}
}

func TestSummarizeSortsWithoutTouchingItsInput(t *testing.T) {
	in := durations(30, 10, 20, 40)
	s := Summarize(in)
	require.Equal(t, durations(30, 10, 20, 40), in, "input order must be preserved")
	require.Equal(t, 4, s.Count)
	require.Equal(t, 10*time.Millisecond, s.Min)
	require.Equal(t, 40*time.Millisecond, s.Max)
	require.Equal(t, 25*time.Millisecond, s.Mean)
	require.Equal(t, 20*time.Millisecond, s.P50)
	require.Equal(t, 40*time.Millisecond, s.P99)
}

func TestSummarizeOfNothingIsZero(t *testing.T) {
	require.Equal(t, Summary{}, Summarize(nil))
}

func TestRatioRefusesUnusableBaselines(t *testing.T) {
	tests := []struct {
		name            string
		value, baseline float64
		want            *float64
	}{
		{"plain ratio", 70, 100, ptr(0.7)},
		{"above baseline", 1700, 100, ptr(17)},
		{"zero value is a real zero ratio", 0, 100, ptr(0)},
		{"zero baseline has no ratio", 10, 0, nil},
		{"negative baseline has no ratio", 10, -1, nil},
		{"NaN baseline has no ratio", 10, math.NaN(), nil},
		{"infinite baseline has no ratio", 10, math.Inf(1), nil},
		{"NaN value has no ratio", math.NaN(), 10, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Ratio(tc.value, tc.baseline)
			if tc.want == nil {
				require.Nil(t, got)
				return
			}
			require.NotNil(t, got)
			require.InDelta(t, *tc.want, *got, 1e-9)
		})
	}
}

func TestRateIsPerSecondAndZeroWithoutTime(t *testing.T) {
	require.InDelta(t, 250.0, Rate(500, 2*time.Second), 1e-9)
	require.Zero(t, Rate(500, 0))
	require.Zero(t, Rate(500, -time.Second))
}

func ptr(v float64) *float64 { return &v }
