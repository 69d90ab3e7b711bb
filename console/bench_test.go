package console

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkDaySummaryOf100kReadings measures what the device page asks the
// console for to draw a day of 100,000 readings (about 1.2 a second): the
// summary in 500 buckets, from the org's SQLite index, over mTLS.
//
//	go test -run '^$' -bench DaySummary -benchtime 5x ./console/
func BenchmarkDaySummaryOf100kReadings(b *testing.B) {
	fx := newFixture(b)
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	const total, perBlock = 100_000, 1000
	step := int64(24*time.Hour/time.Millisecond) / total
	for n := range uint64(total / perBlock) {
		blk := readingsBlock(n, "sensor-1", n*perBlock+1, perBlock, day.UnixMilli()+int64(n)*perBlock*step)
		for i := range blk.Transactions[0].Readings {
			blk.Transactions[0].Readings[i].Timestamp = day.UnixMilli() + (int64(n)*perBlock+int64(i))*step
		}
		require.NoError(b, fx.st.Apply(context.Background(), blk))
	}
	q := fmt.Sprintf("/api/v1/devices/sensor-1/readings/summary?from=%s&to=%s&buckets=500", day.Format(time.RFC3339), day.Add(24*time.Hour).Format(time.RFC3339))
	c := fx.as("auditor")
	b.ResetTimer()
	for b.Loop() {
		status, body := fx.do(c, "GET", q, "")
		if status != http.StatusOK || len(body) == 0 {
			b.Fatalf("summary: %d %s", status, body)
		}
	}
}
