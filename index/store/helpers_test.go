package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/index"
	"github.com/iotledger/iotledger/index/pgtest"
)

// backend opens fresh indexes of one kind for tests.
type backend struct {
	name string
	// fresh returns the location of a new, empty index.
	fresh func(t testing.TB) string
	open  func(ctx context.Context, loc string) (index.Store, error)
}

// backends are the two stores. PostgreSQL's server is started once per
// top-level test, and each fresh index is a database of its own.
func backends(t testing.TB) []backend {
	server := pgtest.Start(t)
	return []backend{
		{
			name:  "sqlite",
			fresh: func(t testing.TB) string { return filepath.Join(t.TempDir(), "index.db") },
			open:  OpenSQLite,
		},
		{
			name:  "postgres",
			fresh: func(t testing.TB) string { return newDatabase(t, server) },
			open:  OpenPostgres,
		},
	}
}

var databases atomic.Int64

// newDatabase creates a database on the server of dsn and returns its DSN.
func newDatabase(t testing.TB, dsn string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	name := fmt.Sprintf("index_%d", databases.Add(1))
	_, err = conn.Exec(ctx, "CREATE DATABASE "+name)
	require.NoError(t, err)
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	u.Path = "/" + name
	return u.String()
}

// openFresh opens a new, empty index, closed when the test ends; reopen
// opens the same index again.
func openFresh(t testing.TB, be backend) (s index.Store, reopen func() index.Store) {
	t.Helper()
	loc := be.fresh(t)
	reopen = func() index.Store {
		t.Helper()
		s, err := be.open(context.Background(), loc)
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	return reopen(), reopen
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func blockHash(n uint64) []byte {
	h := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("block"), n))
	return h[:]
}

// block is block n with the transactions, indexed in order.
func block(n uint64, txs ...index.Transaction) *index.Block {
	b := &index.Block{Number: n, Hash: blockHash(n), Time: t0.Add(time.Duration(n) * time.Second)}
	for i := range txs {
		txs[i].Block = n
		txs[i].Index = i
		for k := range txs[i].Readings {
			txs[i].Readings[k].Block = n
		}
		if txs[i].Batch != nil {
			txs[i].Batch.Block = n
		}
	}
	b.Transactions = txs
	return b
}

func reading(device string, seq uint64, ts int64) index.Reading {
	values := fmt.Sprintf(`[{"n":"temp","v":%d.5,"u":"Cel"}]`, seq)
	return index.Reading{
		Device:    device,
		Seq:       seq,
		Timestamp: ts,
		Values:    json.RawMessage(values),
		// The payload holds the values, as a device's does.
		Payload:   fmt.Appendf(nil, `{"device":%q,"seq":%d,"ts":%d,"values":%s}`, device, seq, ts, values),
		Signature: fmt.Appendf(nil, "sig %s %d", device, seq),
	}
}

// batchTx is a valid telemetry batch transaction committing the readings.
func batchTx(txID string, readings ...index.Reading) index.Transaction {
	devices := map[string]bool{}
	var devs []string
	for i := range readings {
		readings[i].BatchTx = txID
		readings[i].Index = i
		if !devices[readings[i].Device] {
			devices[readings[i].Device] = true
			devs = append(devs, readings[i].Device)
		}
	}
	root := sha256.Sum256([]byte("root " + txID))
	return index.Transaction{
		TxID:           txID,
		Time:           t0.Add(123456789 * time.Nanosecond),
		ValidationCode: "VALID",
		Function:       "telemetry:SubmitBatch",
		CreatorMSP:     "Org1MSP",
		Creator:        "CN=hub1,OU=client,O=Org1",
		Endorsers:      []string{"Org1MSP", "Org2MSP"},
		Devices:        devs,
		Event:          &api.Event{Type: "telemetry.batch", TxID: txID},
		Readings:       readings,
		Batch: &index.Batch{
			TxID:      txID,
			Root:      root[:],
			Size:      len(readings),
			Submitter: "hub1",
			MSPID:     "Org1MSP",
		},
	}
}

// eventTx is a valid transaction carrying an event.
func eventTx(txID, function string, ev *api.Event, devices ...string) index.Transaction {
	ev.TxID = txID
	return index.Transaction{
		TxID:           txID,
		Time:           t0,
		ValidationCode: "VALID",
		Function:       function,
		CreatorMSP:     "Org1MSP",
		Creator:        "CN=admin,OU=admin,O=Org1",
		Endorsers:      []string{"Org1MSP"},
		Devices:        devices,
		Event:          ev,
	}
}

func apply(t testing.TB, s index.Store, blocks ...*index.Block) {
	t.Helper()
	for _, b := range blocks {
		require.NoError(t, s.Apply(context.Background(), b), "block %d", b.Number)
	}
}

// devReadings are n readings of a device, seq from..from+n-1, one a
// second from t0.
func devReadings(device string, from uint64, n int) []index.Reading {
	out := make([]index.Reading, n)
	for i := range out {
		seq := from + uint64(i)
		out[i] = reading(device, seq, t0.UnixMilli()+int64(seq)*1000)
	}
	return out
}

// bulkBlock is block n: batches batches of per readings each of device,
// seq continuing from firstSeq.
func bulkBlock(n uint64, device string, firstSeq uint64, batches, per int) *index.Block {
	txs := make([]index.Transaction, batches)
	for i := range txs {
		txs[i] = batchTx(fmt.Sprintf("tx-%d-%d", n, i), devReadings(device, firstSeq+uint64(i*per), per)...)
	}
	return block(n, txs...)
}

func seqs(rs []index.Reading) []uint64 {
	var out []uint64
	for _, r := range rs {
		out = append(out, r.Seq)
	}
	return out
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	if from <= to {
		for s := from; s <= to; s++ {
			out = append(out, s)
		}
	} else {
		for s := from; s >= to; s-- {
			out = append(out, s)
		}
	}
	return out
}
