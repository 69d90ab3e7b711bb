package store

import (
	"context"
	"database/sql"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/index"
)

// openVersion opens the database at loc with the schema of version v, as
// an older program left it.
func openVersion(t *testing.T, be backend, loc string, v int) (*sql.DB, *dialect) {
	t.Helper()
	ctx := context.Background()
	var (
		db  *sql.DB
		d   *dialect
		err error
	)
	if be.name == "sqlite" {
		db, err = sql.Open("sqlite", "file:"+escapeURIPath(loc)+"?_pragma=journal_mode(WAL)")
		require.NoError(t, err)
		d = sqliteDialect
	} else {
		cfg, err := pgx.ParseConfig(loc)
		require.NoError(t, err)
		db, d = stdlib.OpenDB(*cfg), postgresDialect
	}
	t.Cleanup(func() { _ = db.Close() })
	require.NoError(t, migrateTo(ctx, db, d, v))
	return db, d
}

// insertV2 writes a reading as schema version 2 held it: its batch by
// transaction id, its values beside its payload.
func insertV2(t *testing.T, db *sql.DB, d *dialect, r index.Reading) {
	t.Helper()
	_, err := db.ExecContext(context.Background(), d.rebind(`INSERT INTO readings
		(device, seq, ts, values_json, payload, signature, batch_tx, idx, block, private) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		r.Device, int64(r.Seq), r.Timestamp, string(r.Values), nilIfEmpty(r.Payload), nilIfEmpty(r.Signature), r.BatchTx, r.Index,
		int64(r.Block), r.Private)
	require.NoError(t, err)
}

func insertTxV2(t *testing.T, db *sql.DB, d *dialect, block uint64, idx int, txID string) {
	t.Helper()
	_, err := db.ExecContext(context.Background(), d.rebind(`INSERT INTO transactions
		(block, idx, tx_id, time, validation_code, function, creator_msp, creator, endorsers, event_type)
		VALUES (?, ?, ?, NULL, 'VALID', 'telemetry:SubmitBatch', 'Org1MSP', 'CN=hub1', '[]', '')`), int64(block), idx, txID)
	require.NoError(t, err)
}

// TestMigrateReadingsFromVersion2: an index of schema version 2 is brought
// to version 3 in place when opened, and answers as before; one whose
// readings name a batch that is no transaction of their block is refused
// and left as it was.
func TestMigrateReadingsFromVersion2(t *testing.T) {
	ctx := context.Background()
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			loc := be.fresh(t)
			db, d := openVersion(t, be, loc, 2)
			// Block 4: an invalid transaction, then two batches.
			insertTxV2(t, db, d, 4, 0, "tx-invalid")
			insertTxV2(t, db, d, 4, 1, "tx-a")
			insertTxV2(t, db, d, 4, 2, "tx-b")
			var want []index.Reading
			for i, r := range devReadings("dev1", 1, 3) {
				r.BatchTx, r.Index, r.Block = "tx-a", i, 4
				want = append(want, r)
			}
			other := reading("dev2", 7, 7)
			other.BatchTx, other.Index, other.Block = "tx-b", 0, 4
			private := reading("dev3", 1, 1)
			private.BatchTx, private.Index, private.Block, private.Private = "tx-b", 1, 4, true
			private.Payload, private.Values = nil, nil
			for _, r := range append(append([]index.Reading{}, want...), other, private) {
				insertV2(t, db, d, r)
			}
			require.NoError(t, db.Close())

			s, err := be.open(ctx, loc)
			require.NoError(t, err)
			defer s.Close()
			st := s.(*sqlStore)
			var version int
			require.NoError(t, st.r.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&version))
			require.Equal(t, schemaVersion, version)

			got, err := s.Readings(ctx, index.ReadingQuery{Device: "dev1"})
			require.NoError(t, err)
			require.Equal(t, want, got)
			r, err := s.Reading(ctx, "dev2", 7)
			require.NoError(t, err)
			require.Equal(t, other, *r)
			batch, err := s.BatchReadings(ctx, "tx-b")
			require.NoError(t, err)
			require.Equal(t, []index.Reading{other, private}, batch)
		})
		t.Run(be.name+" orphan reading refused", func(t *testing.T) {
			loc := be.fresh(t)
			db, d := openVersion(t, be, loc, 2)
			insertTxV2(t, db, d, 0, 0, "tx-a")
			orphan := reading("dev1", 1, 1)
			orphan.BatchTx, orphan.Block = "tx-elsewhere", 0
			insertV2(t, db, d, orphan)
			require.NoError(t, db.Close())

			_, err := be.open(ctx, loc)
			require.ErrorContains(t, err, "schema version 3: 1 readings name a batch that is no transaction of their block")

			db, _ = openVersion(t, be, loc, 2)
			var version, n int
			require.NoError(t, db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&version))
			require.Equal(t, 2, version)
			require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM readings WHERE batch_tx = 'tx-elsewhere'`).Scan(&n))
			require.Equal(t, 1, n)
		})
	}
}

// TestReadingOfAnotherBatchRefused: a reading that names a batch other
// than the transaction that holds it is refused, and nothing of its
// block is stored.
func TestReadingOfAnotherBatchRefused(t *testing.T) {
	ctx := context.Background()
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			s, _ := openFresh(t, be)
			tx := batchTx("tx0", devReadings("dev1", 1, 3)...)
			tx.Readings[1].BatchTx = "tx-other"
			err := s.Apply(ctx, block(0, tx))
			require.ErrorContains(t, err, "reading dev1/2 says its batch is tx-other, but transaction tx0 holds it")
			next, _, err := s.Checkpoint(ctx)
			require.NoError(t, err)
			require.Zero(t, next)
			got, err := s.Readings(ctx, index.ReadingQuery{Device: "dev1"})
			require.NoError(t, err)
			require.Empty(t, got)
		})
	}
}
