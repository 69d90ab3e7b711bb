package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/index"
)

// BenchmarkApply applies blocks of 10 batches of 100 readings each.
func BenchmarkApply(b *testing.B) {
	const batches, per = 10, 100
	for _, be := range backends(b) {
		b.Run(be.name, func(b *testing.B) {
			s, _ := openFresh(b, be)
			ctx := context.Background()
			blocks := make([]*index.Block, b.N)
			for i := range blocks {
				blocks[i] = bulkBlock(uint64(i), "dev1", uint64(i*batches*per+1), batches, per)
			}
			b.ResetTimer()
			for i := range b.N {
				if err := s.Apply(ctx, blocks[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*batches*per)/b.Elapsed().Seconds(), "readings/s")
		})
	}
}

// BenchmarkRangeQuery queries a device's readings by time, with 100k
// readings of that device in the index (seq 1..100k, one a second).
func BenchmarkRangeQuery(b *testing.B) {
	const n = 100_000
	at := func(seq int64) time.Time { return time.UnixMilli(t0.UnixMilli() + seq*1000) }
	queries := []struct {
		name string
		q    index.ReadingQuery
	}{
		{"100 in range", index.ReadingQuery{From: at(50_000), To: at(50_099)}},
		{"1000 in range", index.ReadingQuery{From: at(50_000), To: at(50_999), Limit: 1000}},
		{"first 1000 of 80k in range", index.ReadingQuery{From: at(10_000), To: at(90_000), Limit: 1000}},
		{"first 1000 of 90k from the start", index.ReadingQuery{To: at(90_000), Limit: 1000}},
		{"newest 100 of 80k to the end", index.ReadingQuery{From: at(20_000), Newest: true}},
		{"newest 100 of 40k in range", index.ReadingQuery{From: at(10_000), To: at(50_000), Newest: true}},
		{"next page of 100 in range", index.ReadingQuery{From: at(10_000), To: at(90_000), AfterSeq: 50_000}},
		{"none in range", index.ReadingQuery{From: at(200_000)}},
		{"latest 100", index.ReadingQuery{Newest: true}},
	}
	for _, be := range backends(b) {
		b.Run(be.name, func(b *testing.B) {
			s, _ := openFresh(b, be)
			loadReadings(b, s, n)
			ctx := context.Background()
			if st := s.(*sqlStore); st.d == postgresDialect {
				_, err := st.w.ExecContext(ctx, `ANALYZE readings`)
				require.NoError(b, err)
			}
			for _, c := range queries {
				q := c.q
				q.Device = bigDevice
				b.Run(c.name, func(b *testing.B) {
					for b.Loop() {
						if _, err := s.Readings(ctx, q); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}
