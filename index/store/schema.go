package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// schemaVersion is the version of the schema this package writes and reads.
// migrations[i] takes a database from version i to version i+1.
const schemaVersion = 3

// Column types are written as {{blob}} and replaced per dialect, as is
// {{without_rowid}} after a table clustered by its primary key; every
// other type name means the same in SQLite and PostgreSQL. Integers are
// BIGINT (an INTEGER in SQLite), times are Unix nanoseconds (readings'
// device times Unix milliseconds, as the device signed them), lists and
// records are JSON text.
var migrations = []migration{
	// 1: the first schema.
	{stmts: []string{
		// The checkpoint: exactly one row, the next block to apply, the
		// hash of the last one applied and the config block in force
		// (with key_policies, the verifier's state: receipt.ChainState).
		`CREATE TABLE checkpoint (
			id         INTEGER PRIMARY KEY CHECK (id = 1),
			next_block BIGINT  NOT NULL,
			last_hash  {{blob}},
			config     {{blob}}
		)`,
		`INSERT INTO checkpoint (id, next_block, last_hash, config) VALUES (1, 0, NULL, NULL)`,
		// The key-level endorsement policies in force. Keys are binary
		// (composite keys hold NULs).
		`CREATE TABLE key_policies (
			key    {{blob}} PRIMARY KEY,
			policy {{blob}} NOT NULL
		)`,
		// Every block applied: its header hash (the chain), time and size.
		`CREATE TABLE blocks (
			number   BIGINT  PRIMARY KEY,
			hash     {{blob}} NOT NULL,
			time     BIGINT,
			tx_count INTEGER NOT NULL
		)`,
		// Every transaction, valid or not: the audit trail.
		`CREATE TABLE transactions (
			block           BIGINT  NOT NULL,
			idx             INTEGER NOT NULL,
			tx_id           TEXT    NOT NULL,
			time            BIGINT,
			validation_code TEXT    NOT NULL,
			function        TEXT    NOT NULL,
			creator_msp     TEXT    NOT NULL,
			creator         TEXT    NOT NULL,
			endorsers       TEXT    NOT NULL,
			event_type      TEXT    NOT NULL,
			PRIMARY KEY (block, idx)
		)`,
		`CREATE INDEX transactions_tx_id ON transactions (tx_id)`,
		// The devices each transaction touched, for a device's audit trail.
		`CREATE TABLE device_transactions (
			device TEXT    NOT NULL,
			block  BIGINT  NOT NULL,
			idx    INTEGER NOT NULL,
			PRIMARY KEY (device, block, idx)
		)`,
		`CREATE TABLE readings (
			device      TEXT    NOT NULL,
			seq         BIGINT  NOT NULL,
			ts          BIGINT  NOT NULL,
			values_json TEXT,
			payload     {{blob}},
			signature   {{blob}},
			batch_tx    TEXT    NOT NULL,
			idx         INTEGER NOT NULL,
			block       BIGINT  NOT NULL,
			private     BOOLEAN NOT NULL,
			PRIMARY KEY (device, seq)
		)`,
		`CREATE INDEX readings_device_ts ON readings (device, ts, seq)`,
		`CREATE INDEX readings_batch ON readings (batch_tx, idx)`,
		`CREATE TABLE batches (
			tx_id     TEXT    PRIMARY KEY,
			root      {{blob}} NOT NULL,
			size      INTEGER NOT NULL,
			submitter TEXT    NOT NULL,
			msp_id    TEXT    NOT NULL,
			block     BIGINT  NOT NULL,
			private   BOOLEAN NOT NULL
		)`,
		// Alerts, in ledger order: block, transaction, position in its event.
		`CREATE TABLE alerts (
			block    BIGINT  NOT NULL,
			tx_idx   INTEGER NOT NULL,
			pos      INTEGER NOT NULL,
			tx_id    TEXT    NOT NULL,
			rule     TEXT    NOT NULL,
			device   TEXT    NOT NULL,
			seq      BIGINT  NOT NULL,
			severity TEXT    NOT NULL,
			message  TEXT    NOT NULL,
			PRIMARY KEY (block, tx_idx, pos)
		)`,
		`CREATE INDEX alerts_device ON alerts (device, block, tx_idx, pos)`,
		// Commands: the latest record of each, and where it was first seen
		// (its issue, which orders the list) and last updated.
		`CREATE TABLE commands (
			id             TEXT    PRIMARY KEY,
			device         TEXT    NOT NULL,
			status         TEXT    NOT NULL,
			record         TEXT    NOT NULL,
			first_block    BIGINT  NOT NULL,
			first_tx_idx   INTEGER NOT NULL,
			first_pos      INTEGER NOT NULL,
			updated_block  BIGINT  NOT NULL,
			updated_tx_idx INTEGER NOT NULL,
			updated_tx_id  TEXT    NOT NULL
		)`,
		`CREATE INDEX commands_first ON commands (first_block, first_tx_idx, first_pos)`,
		`CREATE INDEX commands_device ON commands (device, first_block, first_tx_idx, first_pos)`,
		// Device status changes, in ledger order.
		`CREATE TABLE status_changes (
			block       BIGINT  NOT NULL,
			tx_idx      INTEGER NOT NULL,
			pos         INTEGER NOT NULL,
			tx_id       TEXT    NOT NULL,
			time        BIGINT,
			device      TEXT    NOT NULL,
			owner       TEXT    NOT NULL,
			from_status TEXT    NOT NULL,
			to_status   TEXT    NOT NULL,
			reason      TEXT    NOT NULL,
			cause       TEXT    NOT NULL,
			PRIMARY KEY (block, tx_idx, pos)
		)`,
		`CREATE INDEX status_changes_device ON status_changes (device, block, tx_idx, pos)`,
	}},
	// 2: transactions by time, for what was committed in a window
	// (Throughput, the console's readings per second).
	{stmts: []string{
		`CREATE INDEX transactions_time ON transactions (time)`,
	}},
	// 3: readings, smaller and a device's together (docs/decisions.md).
	// A reading names its batch by the transaction's place, (block,
	// tx_idx), the key of transactions, not by its 64-character id; its
	// values are read from its payload, which holds them, not kept beside
	// it; and in SQLite the table is clustered by (device, seq), so a
	// device's readings share pages instead of lying one a page among
	// everyone else's. The readings are copied over in place.
	{check: readingsHaveTransactions, stmts: []string{
		`CREATE TABLE readings_v3 (
			device    TEXT    NOT NULL,
			seq       BIGINT  NOT NULL,
			ts        BIGINT  NOT NULL,
			payload   {{blob}},
			signature {{blob}},
			tx_idx    INTEGER NOT NULL,
			idx       INTEGER NOT NULL,
			block     BIGINT  NOT NULL,
			private   BOOLEAN NOT NULL,
			PRIMARY KEY (device, seq)
		){{without_rowid}}`,
		`INSERT INTO readings_v3 (device, seq, ts, payload, signature, tx_idx, idx, block, private)
			SELECT r.device, r.seq, r.ts, r.payload, r.signature, t.idx, r.idx, r.block, r.private
			FROM readings r JOIN transactions t ON t.block = r.block AND t.tx_id = r.batch_tx`,
		`DROP TABLE readings`,
		`ALTER TABLE readings_v3 RENAME TO readings`,
		`CREATE INDEX readings_device_ts ON readings (device, ts, seq)`,
		`CREATE INDEX readings_batch ON readings (block, tx_idx, idx)`,
	}},
}

// migration takes a database one schema version up: check, if set, runs
// first and refuses a database the statements would spoil.
type migration struct {
	check func(ctx context.Context, tx *sql.Tx) error
	stmts []string
}

// readingsHaveTransactions refuses a version 2 index with a reading whose
// batch is no transaction of its block (the follower never writes one):
// version 3 would have no place to name.
func readingsHaveTransactions(ctx context.Context, tx *sql.Tx) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM readings r WHERE NOT EXISTS
		(SELECT 1 FROM transactions t WHERE t.block = r.block AND t.tx_id = r.batch_tx)`).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%d readings name a batch that is no transaction of their block; rebuild the index from the ledger", n)
	}
	return nil
}

// migrate creates the schema, or brings an older one up to date, in one
// transaction. A database of a newer schema than this package knows is
// refused.
func migrate(ctx context.Context, db *sql.DB, d *dialect) error {
	return migrateTo(ctx, db, d, schemaVersion)
}

// migrateTo is migrate up to version target (an older schema, in tests).
func migrateTo(ctx context.Context, db *sql.DB, d *dialect, target int) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("index: migrating schema: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if d.lockSchema != "" {
		if _, err := tx.ExecContext(ctx, d.lockSchema); err != nil {
			return fmt.Errorf("index: locking schema: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("index: creating schema_version: %w", err)
	}
	var version int
	switch err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&version); {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return fmt.Errorf("index: schema_version: %w", err)
		}
	case err != nil:
		return fmt.Errorf("index: schema_version: %w", err)
	}
	if version > target {
		return fmt.Errorf("index: the database has schema version %d, newer than this program's %d", version, target)
	}
	for v := version; v < target; v++ {
		m := migrations[v]
		if m.check != nil {
			if err := m.check(ctx, tx); err != nil {
				return fmt.Errorf("index: schema version %d: %w", v+1, err)
			}
		}
		for _, stmt := range m.stmts {
			stmt = strings.NewReplacer("{{blob}}", d.blob, "{{without_rowid}}", d.withoutRowID).Replace(stmt)
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("index: schema version %d: %w", v+1, err)
			}
		}
	}
	if version != target {
		if _, err := tx.ExecContext(ctx, d.rebind(`UPDATE schema_version SET version = ?`), target); err != nil {
			return fmt.Errorf("index: schema_version: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("index: migrating schema: %w", err)
	}
	return nil
}
