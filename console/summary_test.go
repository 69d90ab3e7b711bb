package console

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSummaryBucketsEveryReadingOfTheRange(t *testing.T) {
	fx := newFixture(t)
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	// 10 readings a second apart from 00:00:00 (values seq+0.5), then 5
	// from 00:01:00; the range is two minutes (to 00:01:59.999, inclusive)
	// in 4 buckets of 30 s.
	require.NoError(t, fx.st.Apply(context.Background(), readingsBlock(0, "sensor-1", 1, 10, day.UnixMilli())))
	require.NoError(t, fx.st.Apply(context.Background(), readingsBlock(1, "sensor-1", 11, 5, day.Add(time.Minute).UnixMilli())))
	q := fmt.Sprintf("from=%s&to=%s&buckets=4", day.Format(time.RFC3339), day.Add(2*time.Minute-time.Millisecond).Format(time.RFC3339Nano))
	status, body := fx.do(fx.as("auditor"), "GET", "/api/v1/devices/sensor-1/readings/summary?"+q, "")
	require.Equal(t, http.StatusOK, status, body)
	var s Summary
	requireStrictJSON(t, body, &s)
	require.Equal(t, 15, s.Count)
	require.Equal(t, int64(30_000), s.BucketMillis, "120,000 ms (to is inclusive) in 4 buckets")
	require.Equal(t, []int64{day.UnixMilli(), day.Add(time.Minute).UnixMilli()}, s.Times, "only buckets with readings")
	require.Len(t, s.Series, 1)
	temp := s.Series[0]
	require.Equal(t, "temp", temp.Name)
	require.Equal(t, "Cel", temp.Unit)
	require.InDelta(t, 1.5, *temp.Min[0], 1e-9)
	require.InDelta(t, 10.5, *temp.Max[0], 1e-9)
	require.InDelta(t, 6.0, *temp.Mean[0], 1e-9)
	require.InDelta(t, 11.5, *temp.Min[1], 1e-9)
	require.InDelta(t, 15.5, *temp.Max[1], 1e-9)

	for _, bad := range []string{"buckets=0", "buckets=9999", "limit=5", "order=newest", "after=3"} {
		status, body := fx.do(fx.as("auditor"), "GET", "/api/v1/devices/sensor-1/readings/summary?"+bad, "")
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", bad, body)
	}
}

func TestSummaryIsBoundedAndSaysSo(t *testing.T) {
	fx := newFixture(t, func(c *Config) { c.Limits.SummaryReadings = 7 })
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	require.NoError(t, fx.st.Apply(context.Background(), readingsBlock(0, "sensor-1", 1, 10, day.UnixMilli())))
	q := fmt.Sprintf("from=%s&to=%s", day.Format(time.RFC3339), day.Add(time.Hour).Format(time.RFC3339))
	status, body := fx.do(fx.as("auditor"), "GET", "/api/v1/devices/sensor-1/readings/summary?"+q, "")
	require.Equal(t, http.StatusOK, status, body)
	var s Summary
	requireStrictJSON(t, body, &s)
	require.Equal(t, 7, s.Count)
	require.True(t, s.Truncated)
}
