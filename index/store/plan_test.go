package store

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/index"
)

// bigDevice is the device of loadReadings.
const bigDevice = "dev-big"

// loadReadings applies blocks of 10 batches of 100 readings until the
// index holds n readings of bigDevice (seq 1..n, one a second from t0),
// plus a few of other devices.
func loadReadings(t testing.TB, s index.Store, n int) {
	t.Helper()
	ctx := context.Background()
	const perBlock = 1000
	for b := 0; b*perBlock < n; b++ {
		blk := bulkBlock(uint64(b), bigDevice, uint64(b*perBlock+1), 10, perBlock/10)
		blk.Transactions = append(blk.Transactions, batchTx("other-"+blk.Transactions[0].TxID,
			devReadings("dev-other", uint64(b*10+1), 10)...))
		blk.Transactions[len(blk.Transactions)-1].Index = len(blk.Transactions) - 1
		require.NoError(t, s.Apply(ctx, blk))
	}
}

// explain is the query plan of q, one line per plan node.
func explain(t testing.TB, s *sqlStore, q index.ReadingQuery) (readingPlan, []string) {
	t.Helper()
	p, err := s.readingPlan(context.Background(), q)
	require.NoError(t, err)
	query, args := s.readingsQuery(q, p)
	require.NotEmpty(t, query)
	prefix := "EXPLAIN "
	if s.d == sqliteDialect {
		prefix = "EXPLAIN QUERY PLAN "
	}
	rows, err := s.r.QueryContext(context.Background(), prefix+query, args...)
	require.NoError(t, err)
	defer rows.Close()
	cols, err := rows.Columns()
	require.NoError(t, err)
	var plan []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		require.NoError(t, rows.Scan(ptrs...))
		// SQLite: id, parent, notused, detail; PostgreSQL: QUERY PLAN.
		switch v := vals[len(vals)-1].(type) {
		case string:
			plan = append(plan, v)
		case []byte:
			plan = append(plan, string(v))
		}
	}
	require.NoError(t, rows.Err())
	return p, plan
}

// TestRangeQueryPlan checks, on 100k readings of one device, that a
// device's time-range queries are answered from an index, not by a scan
// of the table.
func TestRangeQueryPlan(t *testing.T) {
	const n = 100_000
	if testing.Short() {
		t.Skip("loads 100k readings")
	}
	ctx := context.Background()
	at := func(seq int64) time.Time { return time.UnixMilli(t0.UnixMilli() + seq*1000) }
	queries := []struct {
		name string
		q    index.ReadingQuery
		want int
		// plan is SQLite's.
		plan readingPlan
	}{
		{"narrow range", index.ReadingQuery{From: at(50_000), To: at(50_099)}, 100, planTime},
		{"narrow range newest first", index.ReadingQuery{From: at(50_000), To: at(50_099), Newest: true}, 100, planTime},
		{"empty range", index.ReadingQuery{From: at(200_000)}, 0, planTime},
		{"from only", index.ReadingQuery{From: at(99_990)}, 11, planTime},
		{"wide range", index.ReadingQuery{From: at(10_000), To: at(90_000), Limit: 1000}, 1000, planTime},
		{"wide range from the start", index.ReadingQuery{From: at(0), To: at(90_000), Limit: 1000}, 1000, planSeq},
		{"newest of a wide range to the end", index.ReadingQuery{From: at(20_000), Newest: true}, 100, planSeq},
		{"newest of a wide range", index.ReadingQuery{From: at(10_000), To: at(50_000), Newest: true}, 100, planTime},
		{"range and page", index.ReadingQuery{From: at(20_000), To: at(30_000), AfterSeq: 25_000, Limit: 50}, 50, planSeq},
		{"latest", index.ReadingQuery{Newest: true, Limit: 10}, 10, planDefault},
	}
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			st, reopen := openFresh(t, be)
			loadReadings(t, st, n)
			if st.(*sqlStore).d == postgresDialect {
				// What autovacuum does after a bulk load.
				_, err := st.(*sqlStore).w.ExecContext(ctx, `ANALYZE readings`)
				require.NoError(t, err)
			}
			// Fresh, and reopened (SQLite's Close gathers statistics
			// that the planner then uses).
			for _, phase := range []string{"fresh", "reopened"} {
				if phase == "reopened" {
					require.NoError(t, st.Close())
					st = reopen()
				}
				s := st.(*sqlStore)
				for _, c := range queries {
					t.Run(phase+" "+c.name, func(t *testing.T) {
						q := c.q
						q.Device = bigDevice
						got, err := s.Readings(ctx, q)
						require.NoError(t, err)
						require.Len(t, got, c.want)

						p, lines := explain(t, s, q)
						text := strings.Join(lines, "\n")
						t.Logf("plan %s:\n%s", p, text)
						switch s.d {
						case sqliteDialect:
							require.Equal(t, c.plan, p)
							// A search of an index (device first), never a
							// scan of the table or of a whole index.
							require.NotContains(t, text, "SCAN ")
							switch p {
							case planTime:
								require.Contains(t, text, "SEARCH readings USING COVERING INDEX readings_device_ts (device=? AND ts")
								require.Contains(t, text, "SEARCH readings USING PRIMARY KEY (device=? AND seq=?)")
							default:
								require.Contains(t, text, "SEARCH readings USING PRIMARY KEY (device=?")
							}
						case postgresDialect:
							require.Equal(t, planDefault, p)
							require.NotContains(t, text, "Seq Scan")
							require.Contains(t, text, "Index")
						}
					})
				}
			}
		})
	}
}
