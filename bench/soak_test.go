package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAggregateIntervalRatesLagAndQueryPercentiles(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	q := func(lastHour bool, msec, rows int) querySample {
		return querySample{lastHour: lastHour, took: time.Duration(msec) * time.Millisecond, rows: rows}
	}
	tests := []struct {
		name       string
		prev, cur  soakMark
		queries    []querySample
		maxLag     uint64
		want       SoakInterval
		wantHourMs [2]float64 // p50, p99
		wantRngMs  [2]float64
	}{
		{
			name: "rate over the interval, cumulative readings, both kinds of query",
			prev: soakMark{at: t0.Add(10 * time.Second), readings: 20_000, deviceReadings: 6_000},
			cur:  soakMark{at: t0.Add(20 * time.Second), readings: 50_000, deviceReadings: 15_000, lag: 1},
			queries: []querySample{
				q(true, 4, 1000), q(false, 2, 1000), q(true, 6, 1000), q(false, 3, 500),
			},
			maxLag: 3,
			want: SoakInterval{N: 2, EndSec: 20, Readings: 50_000, ReadingsPerSec: 3000, LagBlocks: 1, MaxLagBlocks: 3,
				DeviceReadings: 15_000, DeviceReadingsAtStart: 6_000, Queries: 4, AllP99Ms: 6},
			wantHourMs: [2]float64{4, 6},
			wantRngMs:  [2]float64{2, 3},
		},
		{
			name: "the lag at the end counts towards the most seen",
			prev: soakMark{at: t0},
			cur:  soakMark{at: t0.Add(4 * time.Second), readings: 1000, lag: 7},
			want: SoakInterval{N: 2, EndSec: 4, Readings: 1000, ReadingsPerSec: 250, LagBlocks: 7, MaxLagBlocks: 7},
		},
		{
			name: "an empty interval has no rate",
			prev: soakMark{at: t0.Add(time.Second), readings: 10},
			cur:  soakMark{at: t0.Add(time.Second), readings: 10},
			want: SoakInterval{N: 2, EndSec: 1, Readings: 10},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := aggregateInterval(2, t0, tc.prev, tc.cur, tc.queries, tc.maxLag, false)
			require.Equal(t, tc.wantHourMs, [2]float64{got.LastHour.P50Ms, got.LastHour.P99Ms})
			require.Equal(t, tc.wantRngMs, [2]float64{got.Range.P50Ms, got.Range.P99Ms})
			got.LastHour, got.Range = QueryLatency{}, QueryLatency{}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestAggregateIntervalAveragesRowsPerKind(t *testing.T) {
	qs := []querySample{{lastHour: true, took: time.Millisecond, rows: 1000}, {lastHour: true, took: time.Millisecond, rows: 500}, {took: time.Millisecond, rows: 10}}
	iv := aggregateInterval(1, time.Time{}, soakMark{}, soakMark{at: time.Unix(1, 0)}, qs, 0, true)
	require.Equal(t, QueryLatency{Count: 2, P50Ms: 1, P99Ms: 1, Rows: 750}, iv.LastHour)
	require.Equal(t, QueryLatency{Count: 1, P50Ms: 1, P99Ms: 1, Rows: 10}, iv.Range)
	require.True(t, iv.Partial)
}

func TestSoakSlotsPutTheHeavyDeviceFirstAndSpreadTheRest(t *testing.T) {
	tests := []struct {
		name               string
		size, heavy, light int
		want               []int
	}{
		{"heavy then round-robin", 7, 3, 2, []int{0, 0, 0, 1, 2, 1, 2}},
		{"all heavy", 3, 3, 5, []int{0, 0, 0}},
		{"no light devices: the heavy one fills the batch", 3, 1, 0, []int{0, 0, 0}},
		{"heavy capped at the batch size", 2, 9, 1, []int{0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, soakSlots(tc.size, tc.heavy, tc.light))
		})
	}
}

func TestSoakIntervalIsATenthAtLeastTenSeconds(t *testing.T) {
	tests := []struct {
		d, every, want time.Duration
	}{
		{15 * time.Minute, 0, 90 * time.Second},
		{2 * time.Minute, 0, 12 * time.Second},
		{30 * time.Second, 0, 10 * time.Second},
		{5 * time.Second, 0, 5 * time.Second},
		{15 * time.Minute, time.Minute, time.Minute},
		{time.Minute, 5 * time.Minute, time.Minute},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, soakInterval(tc.d, tc.every), "soak %s every %s", tc.d, tc.every)
	}
}

func TestBytesPerReading(t *testing.T) {
	tests := []struct {
		growth, readings int64
		want             float64
	}{
		{1_000_000, 2_000, 500},
		{1_000, 3, 333.3},
		{-4_096, 1_024, -4},
		{1_000, 0, 0},
		{0, 10, 0},
	}
	for _, tc := range tests {
		require.InDelta(t, tc.want, BytesPerReading(tc.growth, tc.readings), 1e-9, "%d B / %d readings", tc.growth, tc.readings)
	}
}

func TestGrowthPerReadingSubtractsEachStore(t *testing.T) {
	start := PeerDisk{Peer: "peer0.org1", Blocks: 1_000, State: 500, History: 100, Ledger: 2_000}
	end := PeerDisk{Peer: "peer0.org1", Blocks: 801_000, State: 10_500, History: 100, Ledger: 900_000}
	g := GrowthPerReading(start, end, 1_000)
	require.Equal(t, PeerDisk{Peer: "peer0.org1", Blocks: 800_000, State: 10_000, Ledger: 898_000}, g.Growth)
	require.InDelta(t, 800, g.PerReading.Blocks, 1e-9)
	require.InDelta(t, 10, g.PerReading.State, 1e-9)
	require.InDelta(t, 0, g.PerReading.History, 1e-9)
	require.InDelta(t, 898, g.PerReading.Ledger, 1e-9)
}

func writeFile(t *testing.T, path string, n int) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, bytes.Repeat([]byte{'x'}, n), 0o644))
}

func TestDirSizeSumsRegularFilesBelowTheRoot(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]int
		link  bool
		want  int64
	}{
		{"empty directory", nil, false, 0},
		{"nested files", map[string]int{"a": 10, "b/c": 20, "b/d/e": 300}, false, 330},
		{"a symlink is not followed", map[string]int{"a": 10}, true, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for name, n := range tc.files {
				writeFile(t, filepath.Join(root, name), n)
			}
			if tc.link {
				require.NoError(t, os.Symlink(filepath.Join(root, "a"), filepath.Join(root, "link")))
			}
			got, err := DirSize(root)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestDirSizeOfAMissingRootIsAnError(t *testing.T) {
	_, err := DirSize(filepath.Join(t.TempDir(), "nope"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestFilesSizeSkipsMissingFiles(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "index.sqlite")
	writeFile(t, db, 4096)
	writeFile(t, db+"-wal", 100)
	got, err := FilesSize(db, db+"-wal", db+"-shm")
	require.NoError(t, err)
	require.Equal(t, int64(4196), got)
}

func TestMeasurePeerDiskSizesEachStoreOfTheLedger(t *testing.T) {
	data := t.TempDir()
	writeFile(t, filepath.Join(data, "ledgersData/chains/chains/iot/blockfile_000000"), 5000)
	writeFile(t, filepath.Join(data, "ledgersData/chains/index/000001.ldb"), 200)
	writeFile(t, filepath.Join(data, "ledgersData/stateLeveldb/000002.ldb"), 300)
	writeFile(t, filepath.Join(data, "ledgersData/bookkeeper/LOG"), 7)
	d, err := MeasurePeerDisk("peer0.org1", data)
	require.NoError(t, err)
	require.Equal(t, PeerDisk{Peer: "peer0.org1", Blocks: 5200, State: 300, History: 0, Ledger: 5507}, d)

	_, err = MeasurePeerDisk("peer0.org2", t.TempDir())
	require.Error(t, err, "a data directory without a ledger is not an empty ledger")
}

func TestSoakGoals(t *testing.T) {
	row := func(atStart, atEnd int64, p99 float64) SoakInterval {
		return SoakInterval{DeviceReadingsAtStart: atStart, DeviceReadings: atEnd, Queries: 100, AllP99Ms: p99}
	}
	tests := []struct {
		name          string
		readings      int64
		intervals     []SoakInterval
		wantReadings  bool
		wantQuery     *bool
		wantInMeasure string
	}{
		{"both met", 2_100_000, []SoakInterval{row(0, 60_000, 90), row(60_000, 120_000, 80), row(120_000, 180_000, 12)}, true, ptrBool(true), "12.0 ms over 1 intervals"},
		{"slow query of a large device", 2_000_000, []SoakInterval{row(100_000, 150_000, 51), row(150_000, 200_000, 10)}, true, ptrBool(false), "51.0 ms over 2 intervals"},
		{"device never large enough", 500_000, []SoakInterval{row(0, 40_000, 3)}, false, nil, "reached 40000 readings"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &SoakReport{Readings: tc.readings, Intervals: tc.intervals, Validation: &Validation{Transactions: 10}}
			r.EvaluateGoals()
			require.Len(t, r.Goals, 3)
			require.Equal(t, tc.wantReadings, *r.Goals[0].Met)
			require.Equal(t, tc.wantQuery, r.Goals[1].Met)
			require.Contains(t, r.Goals[1].Measured, tc.wantInMeasure)
			require.True(t, *r.Goals[2].Met, "no conflicts")
		})
	}
}

func TestSoakReportTablePrintsIntervalsBytesAndGoals(t *testing.T) {
	g := GrowthPerReading(PeerDisk{Peer: "peer0.org1"}, PeerDisk{Peer: "peer0.org1", Blocks: 2_000_000, State: 10_000, Ledger: 2_500_000}, 4_000)
	idx := int64(1_200_000)
	r := &SoakReport{
		Workers: 8, BatchSize: 500, HeavyPerBatch: 300, Devices: 168, QueryDevice: "s1-1", Index: "sqlite:/tmp/x",
		Intervals: []SoakInterval{
			{N: 1, EndSec: 12, Readings: 2000, ReadingsPerSec: 166.7, Queries: 90},
			{N: 2, EndSec: 24, Readings: 4000, ReadingsPerSec: 166.7, Queries: 95},
		},
		Readings: 4000, Peers: []PeerGrowth{g}, IndexGrowth: &idx, IndexPerRead: 300, Validation: &Validation{Transactions: 8},
	}
	r.EvaluateGoals()
	var b bytes.Buffer
	require.NoError(t, r.WriteTable(&b))
	out := b.String()
	for _, want := range []string{"readings/s", "lag blocks", "range p50 ms", "peer0.org1 block files (chains)", "500.0", "index database", "300.0",
		"NOT MET  readings committed during the soak", "n/a      device time-range query p99", "MET      MVCC/phantom", "(1.00×)"} {
		require.Contains(t, out, want)
	}
	var j bytes.Buffer
	require.NoError(t, r.WriteJSON(&j))
	require.Contains(t, j.String(), `"bytesPerReading"`)
}

func TestSoakConfigValidate(t *testing.T) {
	ok := DefaultSoakConfig(time.Minute)
	require.NoError(t, ok.Validate())
	for name, mut := range map[string]func(*SoakConfig){
		"no duration":         func(c *SoakConfig) { c.Duration = 0 },
		"batch too large":     func(c *SoakConfig) { c.BatchSize = 501 },
		"heavy over batch":    func(c *SoakConfig) { c.HeavyPerBatch = c.BatchSize + 1 },
		"no light to fill":    func(c *SoakConfig) { c.LightPerWorker = 0 },
		"no workers":          func(c *SoakConfig) { c.Workers = 0 },
		"no queries sampled":  func(c *SoakConfig) { c.Queries = 0 },
		"no heavy device use": func(c *SoakConfig) { c.HeavyPerBatch = 0 },
	} {
		c := ok
		mut(&c)
		require.Error(t, c.Validate(), name)
	}
}

func TestRedactURLHidesThePassword(t *testing.T) {
	require.Equal(t, "postgres://u:xxxxx@db:5432/idx", redactURL("postgres://u:secret@db:5432/idx"))
	require.Equal(t, "postgres://db/idx", redactURL("postgres://db/idx"))
}

func TestSoakRandomWindowHoldsAboutALimitOfTheDevicesReadings(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start.Add(100 * time.Second)
	ctr := &soakCounters{}
	s := newSoakSamplers(nil, nil, "d", ctr, start, time.Second)

	ctr.device.Store(100_000) // 1,000 readings a second: 1,000 readings are 1 s
	for range 50 {
		from, to := s.randomWindow(now, 1000)
		require.Equal(t, time.Second, to.Sub(from))
		require.False(t, from.Before(start))
		require.False(t, to.After(now))
	}

	ctr.device.Store(500) // fewer readings than the limit: the whole history
	from, to := s.randomWindow(now, 1000)
	require.Equal(t, start, from)
	require.Equal(t, now, to)
}
