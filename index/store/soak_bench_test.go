package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	rd "github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/index"
)

// The soak's index, generated through the store's API: blocks of one
// batch of soakBatch readings, one reading every 2 ms of device time
// (500 a second), soakHeavyPerBatch of each batch from soakHeavy and the
// rest from soakOthers devices, with real payloads (a cold-chain reading:
// temperature and door) and signatures of an ECDSA signature's size.
const (
	soakBatch         = 500
	soakHeavyPerBatch = 32
	soakOthers        = 200
	soakHeavy         = "soak-heavy"
	soakStepMs        = 2
)

// soakReadings is how many readings BenchmarkSoakQueries loads:
// IOTLEDGER_INDEX_SOAK_READINGS, else 2 M (the heavy device gets 128 k).
func soakReadings(b *testing.B) int {
	if v := os.Getenv("IOTLEDGER_INDEX_SOAK_READINGS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(b, err, "IOTLEDGER_INDEX_SOAK_READINGS")
		return n
	}
	return 2_000_000
}

// soakGen makes the soak's blocks, one after the other.
type soakGen struct {
	block   uint64
	total   int64 // readings generated
	seqs    map[string]uint64
	rng     *rand.Rand
	heavyTs atomic.Int64 // device time of the heavy device's last reading
}

func newSoakGen() *soakGen {
	return &soakGen{seqs: map[string]uint64{}, rng: rand.New(rand.NewPCG(1, 2))} //nolint:gosec // reproducible test data
}

func (g *soakGen) next() *index.Block {
	n := g.block
	g.block++
	sum := sha256.Sum256(binary.BigEndian.AppendUint64(nil, n))
	txID := hex.EncodeToString(sum[:])
	rs := make([]index.Reading, soakBatch)
	devs := []string{soakHeavy}
	for i := range rs {
		dev := soakHeavy
		// The heavy device's readings spread through the batch.
		if i%(soakBatch/soakHeavyPerBatch) != 0 || i/(soakBatch/soakHeavyPerBatch) >= soakHeavyPerBatch {
			dev = "soak-" + strconv.Itoa(g.rng.IntN(soakOthers))
			devs = append(devs, dev)
		}
		g.seqs[dev]++
		ts := t0.UnixMilli() + g.total*soakStepMs
		g.total++
		temp := 2 + float64(g.rng.IntN(600))/100
		door := g.rng.IntN(50) == 0
		p := rd.Payload{Device: dev, Seq: g.seqs[dev], Timestamp: ts, Values: []rd.Value{
			{Name: "temperature", Unit: "Cel", Number: &temp}, {Name: "door", Bool: &door},
		}}
		payload, err := json.Marshal(p)
		if err != nil {
			panic(err)
		}
		values, err := json.Marshal(p.Values)
		if err != nil {
			panic(err)
		}
		sig := make([]byte, 71)
		for k := range sig {
			sig[k] = byte(g.rng.IntN(256))
		}
		rs[i] = index.Reading{Device: dev, Seq: p.Seq, Timestamp: ts, Values: values, Payload: payload, Signature: sig,
			BatchTx: txID, Index: i, Block: n}
		if dev == soakHeavy {
			g.heavyTs.Store(ts)
		}
	}
	slices.Sort(devs)
	devs = slices.Compact(devs)
	root := sha256.Sum256([]byte(txID))
	at := time.UnixMilli(rs[0].Timestamp).UTC()
	return &index.Block{Number: n, Hash: sum[:], Time: at, Transactions: []index.Transaction{{
		Block: n, TxID: txID, Time: at, ValidationCode: "VALID", Function: "telemetry:SubmitBatch",
		CreatorMSP: "Org1MSP", Creator: "CN=hub1,OU=client,O=Org1", Endorsers: []string{"Org1MSP", "Org2MSP"},
		Devices: devs, Event: &api.Event{Type: "telemetry.batch", TxID: txID}, Readings: rs,
		Batch: &index.Batch{TxID: txID, Root: root[:], Size: soakBatch, Submitter: "CN=hub1,OU=client,O=Org1", MSPID: "Org1MSP", Block: n},
	}}}
}

// BenchmarkSoakQueries times the soak's two device time-range queries
// (cmd/iotledger bench --soak: the newest 1000 readings of the last hour
// of the heavy device, and 1000 readings from a random point of its
// history) on a SQLite index of millions of readings, the heavy device
// past 100 k, alone and beside a writer applying blocks of a 500-reading
// batch as fast as it can. It reports p50 and p99 in ms and, once, the
// index's bytes per reading (the database file after a WAL checkpoint).
//
//	go test ./index/store -run XXX -bench SoakQueries -benchtime 400x -timeout 30m
func BenchmarkSoakQueries(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "index.db")
	st, err := OpenSQLite(ctx, path)
	require.NoError(b, err)
	defer func() { _ = st.Close() }()
	s := st.(*sqlStore)
	g := newSoakGen()
	total := soakReadings(b)
	for g.total < int64(total) {
		require.NoError(b, s.Apply(ctx, g.next()))
	}
	_, err = s.w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	require.NoError(b, err)
	fi, err := os.Stat(path)
	require.NoError(b, err)
	heavy := g.seqs[soakHeavy]
	bytesPerReading := float64(fi.Size()) / float64(g.total)
	b.Logf("index of %d readings (%d of %s): %d bytes, %.1f B per reading", g.total, heavy, soakHeavy, fi.Size(), bytesPerReading)
	start := t0

	queries := []struct {
		name string
		q    func(rng *rand.Rand) index.ReadingQuery
	}{
		{"last hour newest 1000", func(*rand.Rand) index.ReadingQuery {
			now := time.UnixMilli(g.heavyTs.Load())
			return index.ReadingQuery{Device: soakHeavy, From: now.Add(-time.Hour), To: now, Newest: true, Limit: 1000}
		}},
		{"1000 from a random point", func(rng *rand.Rand) index.ReadingQuery {
			span := time.UnixMilli(g.heavyTs.Load()).Sub(start)
			return index.ReadingQuery{Device: soakHeavy, From: start.Add(time.Duration(rng.Int64N(int64(span) + 1))), Limit: 1000}
		}},
	}
	for _, writer := range []bool{false, true} {
		mode := "idle"
		if writer {
			mode = "writer"
		}
		for _, c := range queries {
			b.Run(mode+"/"+c.name, func(b *testing.B) {
				rng := rand.New(rand.NewPCG(3, 4)) //nolint:gosec // sampling points
				var (
					wg      sync.WaitGroup
					stop    = make(chan struct{})
					applied atomic.Int64
					werr    error
				)
				if writer {
					wg.Go(func() {
						for {
							select {
							case <-stop:
								return
							default:
							}
							if err := s.Apply(ctx, g.next()); err != nil {
								werr = err
								return
							}
							applied.Add(1)
						}
					})
				}
				took := make([]time.Duration, 0, b.N)
				rows := 0
				for b.Loop() {
					q := c.q(rng)
					began := time.Now()
					rs, err := s.Readings(ctx, q)
					took = append(took, time.Since(began))
					if err != nil {
						b.Fatal(err)
					}
					rows += len(rs)
				}
				close(stop)
				wg.Wait()
				require.NoError(b, werr)
				slices.Sort(took)
				ms := func(p float64) float64 {
					return float64(took[min(len(took)-1, int(p*float64(len(took))))].Microseconds()) / 1000
				}
				b.ReportMetric(ms(0.50), "p50_ms")
				b.ReportMetric(ms(0.99), "p99_ms")
				b.ReportMetric(float64(rows)/float64(len(took)), "rows/query")
				b.ReportMetric(bytesPerReading, "B/reading")
				if writer {
					b.ReportMetric(float64(applied.Load()*soakBatch)/b.Elapsed().Seconds(), "written_readings/s")
				}
				b.Logf("%d queries, writer %v, %d blocks applied meanwhile", len(took), writer, applied.Load())
			})
		}
	}
}
