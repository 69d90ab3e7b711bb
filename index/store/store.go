// Package store keeps an index (index.Store) in SQLite, the default, or in
// PostgreSQL, through one SQL layer over database/sql: the pure-Go
// modernc.org/sqlite driver and pgx's database/sql adapter. Queries are
// written once, with ? placeholders rewritten per dialect.
//
// A block is applied in one database transaction together with the
// checkpoint, its rows written with multi-row INSERTs: a block either is
// wholly in the index and the checkpoint past it, or not at all.
package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/index"
	"github.com/iotledger/iotledger/receipt"
)

// Query limits: a limit of 0 (or less) means defaultLimit, and none is
// larger than maxLimit.
const (
	defaultLimit = 100
	maxLimit     = 1000
)

// maxBulkRows is the most rows one INSERT statement writes.
const maxBulkRows = 500

// Open opens the index a URL names: "sqlite:/path/to/file.db" (also
// "sqlite:///path/to/file.db", or a relative path) or a PostgreSQL URL,
// "postgres://..." or "postgresql://...".
func Open(ctx context.Context, url string) (index.Store, error) {
	switch {
	case strings.HasPrefix(url, "sqlite:"):
		path := strings.TrimPrefix(url, "sqlite:")
		if p, ok := strings.CutPrefix(path, "//"); ok {
			path = p
		}
		if path == "" {
			return nil, fmt.Errorf("index: %q names no SQLite file", url)
		}
		return OpenSQLite(ctx, path)
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return OpenPostgres(ctx, url)
	}
	scheme, _, ok := strings.Cut(url, ":")
	if !ok {
		scheme = url
	}
	return nil, fmt.Errorf("index: unknown database URL scheme %q (want sqlite:PATH, postgres:// or postgresql://)", scheme)
}

// dialect is what differs between the SQL of SQLite and of PostgreSQL.
type dialect struct {
	name string
	blob string // the binary column type
	// withoutRowID ends a CREATE TABLE of a table clustered by its
	// primary key ("" where tables are heaps).
	withoutRowID string
	dollar       bool   // placeholders are $1, $2, ... (else ?)
	maxParams    int    // bound parameters one statement may have
	lockSchema   string // serializes schema migrations, if needed
	forUpdate    string // locks the checkpoint row read in Apply
	// snapshot reads several tables consistently (nil: a transaction is
	// a snapshot already).
	snapshot *sql.TxOptions
	// planReadings: choose how a time-range query of readings is
	// answered (see readingPlan), with these hints naming the (device,
	// ts, seq) index and the primary key's.
	planReadings        bool
	timeIndex, seqIndex string
}

// rebind rewrites the ? placeholders of q for the dialect. The package's
// queries have no ? in literals or identifiers.
func (d *dialect) rebind(q string) string {
	if !d.dollar {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + len(q)/4)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] != '?' {
			b.WriteByte(q[i])
			continue
		}
		n++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// sqlStore is an index.Store over database/sql.
type sqlStore struct {
	d *dialect
	w *sql.DB // Apply's transactions
	r *sql.DB // queries (w itself where one pool serves both)

	closeOnce sync.Once
	closeErr  error
	onClose   func(ctx context.Context, w *sql.DB) // e.g. SQLite's PRAGMA optimize
}

func (s *sqlStore) Close() error {
	s.closeOnce.Do(func() {
		if s.onClose != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			s.onClose(ctx, s.w)
			cancel()
		}
		var errs []error
		if s.r != s.w {
			errs = append(errs, s.r.Close())
		}
		errs = append(errs, s.w.Close())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

func (s *sqlStore) Checkpoint(ctx context.Context) (uint64, []byte, error) {
	var (
		next int64
		hash []byte
	)
	err := s.r.QueryRowContext(ctx, `SELECT next_block, last_hash FROM checkpoint WHERE id = 1`).Scan(&next, &hash)
	if err != nil {
		return 0, nil, fmt.Errorf("index: reading the checkpoint: %w", err)
	}
	return uint64(next), nonEmpty(hash), nil
}

// Apply stores a block's records and moves the checkpoint past it, in one
// database transaction. The block's Number is where its records are: a
// transaction, batch or reading that names another block is refused.
func (s *sqlStore) Apply(ctx context.Context, b *index.Block) (err error) {
	if b == nil {
		return errors.New("index: nil block")
	}
	rows, err := blockRows(b)
	if err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("index: block %d: %w", b.Number, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()

	var next int64
	if err := tx.QueryRowContext(ctx, `SELECT next_block FROM checkpoint WHERE id = 1`+s.d.forUpdate).Scan(&next); err != nil {
		return fmt.Errorf("index: reading the checkpoint: %w", err)
	}
	if uint64(next) != b.Number {
		return fmt.Errorf("%w: expected block %d, got %d", index.ErrOutOfOrder, next, b.Number)
	}
	for _, t := range rows.tables() {
		if err := s.insert(ctx, tx, t); err != nil {
			return fmt.Errorf("index: block %d: %s: %w", b.Number, t.name, err)
		}
	}
	if err := s.applyChainState(ctx, tx, b); err != nil {
		return fmt.Errorf("index: block %d: %w", b.Number, err)
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE checkpoint SET next_block = ?, last_hash = ? WHERE id = 1`),
		next+1, b.Hash); err != nil {
		return fmt.Errorf("index: block %d: moving the checkpoint: %w", b.Number, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("index: block %d: commit: %w", b.Number, err)
	}
	return nil
}

// applyChainState keeps what the block changes of the verifier's state:
// the config block in force, and the key-level policies.
func (s *sqlStore) applyChainState(ctx context.Context, tx *sql.Tx, b *index.Block) error {
	if b.Config != nil {
		if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE checkpoint SET config = ? WHERE id = 1`), b.Config); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	if len(b.Policies) == 0 {
		return nil
	}
	keys := make([]string, 0, len(b.Policies))
	for k := range b.Policies {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	set := &table{name: "key_policies", cols: []string{"key", "policy"},
		suffix: ` ON CONFLICT (key) DO UPDATE SET policy = excluded.policy`}
	var removed []any
	for _, k := range keys {
		if p := b.Policies[k]; p != nil {
			set.add([]byte(k), p)
		} else {
			removed = append(removed, []byte(k))
		}
	}
	if err := s.insert(ctx, tx, set); err != nil {
		return fmt.Errorf("key-level policies: %w", err)
	}
	for len(removed) > 0 {
		n := min(len(removed), maxBulkRows)
		q := `DELETE FROM key_policies WHERE key IN (` + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + `)`
		if _, err := tx.ExecContext(ctx, s.d.rebind(q), removed[:n]...); err != nil {
			return fmt.Errorf("key-level policies: %w", err)
		}
		removed = removed[n:]
	}
	return nil
}

// ChainState is the verifier's state saved with the checkpoint.
func (s *sqlStore) ChainState(ctx context.Context) (_ *receipt.ChainState, err error) {
	tx, err := s.r.BeginTx(ctx, s.d.snapshot)
	if err != nil {
		return nil, fmt.Errorf("index: chain state: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var (
		st   receipt.ChainState
		next int64
	)
	if err := tx.QueryRowContext(ctx, `SELECT next_block, last_hash, config FROM checkpoint WHERE id = 1`).
		Scan(&next, &st.LastHash, &st.Config); err != nil {
		return nil, fmt.Errorf("index: chain state: %w", err)
	}
	st.Next = uint64(next)
	st.LastHash, st.Config = nonEmpty(st.LastHash), nonEmpty(st.Config)
	rows, err := tx.QueryContext(ctx, `SELECT key, policy FROM key_policies ORDER BY key`)
	if err != nil {
		return nil, fmt.Errorf("index: chain state: %w", err)
	}
	defer rows.Close()
	st.Policies = map[string][]byte{}
	for rows.Next() {
		var k, p []byte
		if err := rows.Scan(&k, &p); err != nil {
			return nil, fmt.Errorf("index: chain state: %w", err)
		}
		st.Policies[string(k)] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("index: chain state: %w", err)
	}
	return &st, nil
}

// table is the rows one block adds to a table, flattened.
type table struct {
	name   string
	cols   []string
	args   []any
	suffix string // e.g. an ON CONFLICT clause
}

func (t *table) add(vals ...any) {
	if len(vals) != len(t.cols) {
		panic(fmt.Sprintf("store: %d values for the %d columns of %s", len(vals), len(t.cols), t.name))
	}
	t.args = append(t.args, vals...)
}

// insert writes t's rows with multi-row INSERTs.
func (s *sqlStore) insert(ctx context.Context, tx *sql.Tx, t *table) error {
	ncols := len(t.cols)
	if len(t.args) == 0 {
		return nil
	}
	per := min(maxBulkRows, s.d.maxParams/ncols)
	var stmt *sql.Stmt // the full-size statement, prepared once per table
	defer func() {
		if stmt != nil {
			_ = stmt.Close()
		}
	}()
	for args := t.args; len(args) > 0; {
		n := min(per, len(args)/ncols)
		chunk := args[:n*ncols]
		args = args[n*ncols:]
		if n == per && (stmt != nil || len(args) >= per*ncols) {
			// Full chunks, more than one: one prepared statement.
			if stmt == nil {
				var err error
				if stmt, err = tx.PrepareContext(ctx, s.insertSQL(t, n)); err != nil {
					return err
				}
			}
			if _, err := stmt.ExecContext(ctx, chunk...); err != nil {
				return err
			}
			continue
		}
		if _, err := tx.ExecContext(ctx, s.insertSQL(t, n), chunk...); err != nil {
			return err
		}
	}
	return nil
}

func (s *sqlStore) insertSQL(t *table, rows int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(t.name)
	b.WriteString(" (")
	b.WriteString(strings.Join(t.cols, ", "))
	b.WriteString(") VALUES ")
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(t.cols)), ", ") + ")"
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	b.WriteString(t.suffix)
	return s.d.rebind(b.String())
}

// rows are what a block adds, table by table.
type rows struct {
	blocks, transactions, deviceTxs, batches, readings, alerts, commands, statusChanges table
}

func (r *rows) tables() []*table {
	return []*table{&r.blocks, &r.transactions, &r.deviceTxs, &r.batches, &r.readings, &r.alerts, &r.commands, &r.statusChanges}
}

// blockRows turns a block into rows, and checks that it fits the schema.
func blockRows(b *index.Block) (*rows, error) {
	num, err := toInt64("block number", b.Number)
	if err != nil {
		return nil, err
	}
	r := &rows{
		blocks: table{name: "blocks", cols: []string{"number", "hash", "time", "tx_count"}},
		transactions: table{name: "transactions", cols: []string{
			"block", "idx", "tx_id", "time", "validation_code", "function", "creator_msp", "creator", "endorsers", "event_type",
		}},
		deviceTxs: table{name: "device_transactions", cols: []string{"device", "block", "idx"}},
		batches:   table{name: "batches", cols: []string{"tx_id", "root", "size", "submitter", "msp_id", "block", "private"}},
		readings: table{name: "readings", cols: []string{
			"device", "seq", "ts", "payload", "signature", "tx_idx", "idx", "block", "private",
		}},
		alerts: table{name: "alerts", cols: []string{
			"block", "tx_idx", "pos", "tx_id", "rule", "device", "seq", "severity", "message",
		}},
		commands: table{name: "commands", cols: []string{
			"id", "device", "status", "record", "first_block", "first_tx_idx", "first_pos",
			"updated_block", "updated_tx_idx", "updated_tx_id",
		}, suffix: ` ON CONFLICT (id) DO UPDATE SET device = excluded.device, status = excluded.status, record = excluded.record,` +
			` updated_block = excluded.updated_block, updated_tx_idx = excluded.updated_tx_idx, updated_tx_id = excluded.updated_tx_id`},
		statusChanges: table{name: "status_changes", cols: []string{
			"block", "tx_idx", "pos", "tx_id", "time", "device", "owner", "from_status", "to_status", "reason", "cause",
		}},
	}
	if b.Hash == nil {
		return nil, fmt.Errorf("index: block %d has no hash", b.Number)
	}
	r.blocks.add(num, b.Hash, nanos(b.Time), len(b.Transactions))

	// One row per command: its latest record in this block, where it was
	// first seen in it. (One INSERT may not upsert the same row twice.)
	type command struct {
		rec        api.Command
		txIdx, pos int
		lastIdx    int
		lastTx     string
	}
	var (
		cmds     []*command
		cmdsByID = map[string]*command{}
	)
	for i := range b.Transactions {
		t := &b.Transactions[i]
		if t.Block != b.Number && t.Block != 0 {
			return nil, fmt.Errorf("index: transaction %s says it is in block %d, not %d", t.TxID, t.Block, b.Number)
		}
		endorsers, err := json.Marshal(nonNil(t.Endorsers))
		if err != nil {
			return nil, err
		}
		eventType := ""
		if t.Valid() && t.Event != nil {
			eventType = t.Event.Type
		}
		r.transactions.add(num, t.Index, t.TxID, nanos(t.Time), t.ValidationCode, t.Function, t.CreatorMSP, t.Creator,
			string(endorsers), eventType)
		for j, dev := range t.Devices {
			if j > 0 && containsBefore(t.Devices, j) {
				continue
			}
			r.deviceTxs.add(dev, num, t.Index)
		}
		if !t.Valid() {
			continue // in the audit trail only
		}
		if bt := t.Batch; bt != nil {
			if bt.Block != b.Number && bt.Block != 0 {
				return nil, fmt.Errorf("index: batch %s says it is in block %d, not %d", bt.TxID, bt.Block, b.Number)
			}
			r.batches.add(bt.TxID, nonNilBytes(bt.Root), bt.Size, bt.Submitter, bt.MSPID, num, bt.Private)
		}
		for k := range t.Readings {
			rd := &t.Readings[k]
			if rd.Block != b.Number && rd.Block != 0 {
				return nil, fmt.Errorf("index: reading %s/%d says it is in block %d, not %d", rd.Device, rd.Seq, rd.Block, b.Number)
			}
			seq, err := toInt64("reading seq", rd.Seq)
			if err != nil {
				return nil, err
			}
			// A reading names its batch by the transaction's place; its
			// values are read back from its payload.
			if rd.BatchTx != "" && rd.BatchTx != t.TxID {
				return nil, fmt.Errorf("index: reading %s/%d says its batch is %s, but transaction %s holds it",
					rd.Device, rd.Seq, rd.BatchTx, t.TxID)
			}
			r.readings.add(rd.Device, seq, rd.Timestamp, nilIfEmpty(rd.Payload), nilIfEmpty(rd.Signature),
				t.Index, rd.Index, num, rd.Private)
		}
		ev := t.Event
		if ev == nil {
			continue
		}
		for k, a := range ev.Alerts {
			seq, err := toInt64("alert seq", a.Seq)
			if err != nil {
				return nil, err
			}
			r.alerts.add(num, t.Index, k, t.TxID, a.Rule, a.Device, seq, a.Severity, a.Message)
		}
		for k, sc := range ev.StatusChanges {
			r.statusChanges.add(num, t.Index, k, t.TxID, nanos(t.Time), sc.Device, sc.Owner, string(sc.From), string(sc.To),
				sc.Reason, sc.Cause)
		}
		for k, c := range ev.Commands {
			if c.ID == "" {
				return nil, fmt.Errorf("index: transaction %s: a command without an id", t.TxID)
			}
			if prev, ok := cmdsByID[c.ID]; ok {
				prev.rec, prev.lastIdx, prev.lastTx = c, t.Index, t.TxID
				continue
			}
			cmd := &command{rec: c, txIdx: t.Index, pos: k, lastIdx: t.Index, lastTx: t.TxID}
			cmdsByID[c.ID] = cmd
			cmds = append(cmds, cmd)
		}
	}
	for _, c := range cmds {
		rec, err := json.Marshal(c.rec)
		if err != nil {
			return nil, fmt.Errorf("index: command %s: %w", c.rec.ID, err)
		}
		r.commands.add(c.rec.ID, c.rec.Device, string(c.rec.Status), string(rec), num, c.txIdx, c.pos, num, c.lastIdx, c.lastTx)
	}
	return r, nil
}

func containsBefore(s []string, j int) bool {
	for _, v := range s[:j] {
		if v == s[j] {
			return true
		}
	}
	return false
}

func toInt64(what string, v uint64) (int64, error) {
	if v > math.MaxInt64 {
		return 0, fmt.Errorf("index: %s %d is too large to store", what, v)
	}
	return int64(v), nil
}

// nanos is a time as stored: Unix nanoseconds, or NULL for the zero time.
func nanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// nilIfEmpty stores an empty byte string as NULL, as both databases give
// back the same for it.
func nilIfEmpty(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func limit(n int) int {
	switch {
	case n <= 0:
		return defaultLimit
	case n > maxLimit:
		return maxLimit
	}
	return n
}

// readingCols are a reading's columns, the id of its batch's transaction
// looked up by its place (the key of transactions).
const readingCols = `readings.device, readings.seq, readings.ts, readings.payload, readings.signature,` +
	` (SELECT t.tx_id FROM transactions t WHERE t.block = readings.block AND t.idx = readings.tx_idx),` +
	` readings.idx, readings.block, readings.private`

func scanReading(sc interface{ Scan(...any) error }) (index.Reading, error) {
	var (
		r          index.Reading
		seq, block int64
		batchTx    sql.NullString
	)
	if err := sc.Scan(&r.Device, &seq, &r.Timestamp, &r.Payload, &r.Signature, &batchTx, &r.Index, &block, &r.Private); err != nil {
		return index.Reading{}, err
	}
	r.Seq, r.Block, r.BatchTx = uint64(seq), uint64(block), batchTx.String
	r.Payload, r.Signature = nonEmpty(r.Payload), nonEmpty(r.Signature)
	values, err := payloadValues(r.Payload)
	if err != nil {
		return index.Reading{}, fmt.Errorf("reading %s/%d: %w", r.Device, r.Seq, err)
	}
	r.Values = values
	return r, nil
}

// payloadValues is the values array of a reading's payload, as the
// device wrote it (nil for none, or for a private reading indexed as its
// hash only). The follower stored the payload once it had decoded it
// strictly (reading.ParsePayload: one "values" key, exactly so spelt), so
// the array is found by its key without decoding the payload again; it
// decodes to the reading's values.
func payloadValues(payload []byte) (json.RawMessage, error) {
	if len(payload) == 0 {
		return nil, nil
	}
	if !gjson.ValidBytes(payload) {
		return nil, errors.New("payload: not JSON")
	}
	v := gjson.GetBytes(payload, "values")
	if !v.Exists() {
		return nil, nil
	}
	if v.Index > 0 && v.Index+len(v.Raw) <= len(payload) {
		return json.RawMessage(payload[v.Index : v.Index+len(v.Raw) : v.Index+len(v.Raw)]), nil
	}
	return json.RawMessage(v.Raw), nil
}

func (s *sqlStore) Reading(ctx context.Context, device string, seq uint64) (*index.Reading, error) {
	if seq > math.MaxInt64 {
		return nil, fmt.Errorf("%w: reading %s/%d", index.ErrNotFound, device, seq)
	}
	row := s.r.QueryRowContext(ctx, s.d.rebind(`SELECT `+readingCols+` FROM readings WHERE device = ? AND seq = ?`), device, int64(seq))
	r, err := scanReading(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: reading %s/%d", index.ErrNotFound, device, seq)
	}
	if err != nil {
		return nil, fmt.Errorf("index: reading %s/%d: %w", device, seq, err)
	}
	return &r, nil
}

func (s *sqlStore) BatchReadings(ctx context.Context, batchTx string) ([]index.Reading, error) {
	return s.queryReadings(ctx, s.d.rebind(`SELECT `+readingCols+` FROM readings JOIN transactions b ON b.block = readings.block AND b.idx = readings.tx_idx`+
		` WHERE b.tx_id = ? ORDER BY readings.idx`), batchTx)
}

func (s *sqlStore) queryReadings(ctx context.Context, query string, args ...any) ([]index.Reading, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("index: readings: %w", err)
	}
	defer rows.Close()
	var out []index.Reading
	for rows.Next() {
		r, err := scanReading(rows)
		if err != nil {
			return nil, fmt.Errorf("index: readings: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("index: readings: %w", err)
	}
	return out, nil
}

func (s *sqlStore) Batch(ctx context.Context, txID string) (*index.Batch, error) {
	var (
		bt    index.Batch
		block int64
	)
	err := s.r.QueryRowContext(ctx, s.d.rebind(`SELECT tx_id, root, size, submitter, msp_id, block, private FROM batches WHERE tx_id = ?`), txID).
		Scan(&bt.TxID, &bt.Root, &bt.Size, &bt.Submitter, &bt.MSPID, &block, &bt.Private)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: batch %s", index.ErrNotFound, txID)
	}
	if err != nil {
		return nil, fmt.Errorf("index: batch %s: %w", txID, err)
	}
	bt.Block = uint64(block)
	bt.Root = nonEmpty(bt.Root)
	return &bt, nil
}

func (s *sqlStore) Audit(ctx context.Context, device string, n int) ([]index.AuditEntry, error) {
	rows, err := s.r.QueryContext(ctx, s.d.rebind(`
		SELECT t.block, t.idx, t.tx_id, t.time, t.function, t.creator_msp, t.creator, t.endorsers, t.validation_code, t.event_type
		FROM device_transactions d JOIN transactions t ON t.block = d.block AND t.idx = d.idx
		WHERE d.device = ?
		ORDER BY d.block, d.idx
		LIMIT ?`), device, limit(n))
	if err != nil {
		return nil, fmt.Errorf("index: audit of %s: %w", device, err)
	}
	defer rows.Close()
	var out []index.AuditEntry
	for rows.Next() {
		var (
			e         index.AuditEntry
			block     int64
			t         sql.NullInt64
			endorsers string
		)
		if err := rows.Scan(&block, &e.Index, &e.TxID, &t, &e.Function, &e.CreatorMSP, &e.Creator, &endorsers,
			&e.ValidationCode, &e.EventType); err != nil {
			return nil, fmt.Errorf("index: audit of %s: %w", device, err)
		}
		e.Block, e.Time = uint64(block), fromNanos(t)
		if err := json.Unmarshal([]byte(endorsers), &e.Endorsers); err != nil {
			return nil, fmt.Errorf("index: audit of %s: endorsers of %s: %w", device, e.TxID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("index: audit of %s: %w", device, err)
	}
	return out, nil
}

// byDevice is a WHERE clause selecting one device, or all for "".
func byDevice(device string) (string, []any) {
	if device == "" {
		return "", nil
	}
	return ` WHERE device = ?`, []any{device}
}

func (s *sqlStore) Alerts(ctx context.Context, device string, n int) ([]api.Alert, error) {
	where, args := byDevice(device)
	rows, err := s.r.QueryContext(ctx, s.d.rebind(`SELECT rule, device, seq, severity, message FROM alerts`+where+
		` ORDER BY block DESC, tx_idx DESC, pos DESC LIMIT ?`), append(args, limit(n))...)
	if err != nil {
		return nil, fmt.Errorf("index: alerts: %w", err)
	}
	defer rows.Close()
	var out []api.Alert
	for rows.Next() {
		var (
			a   api.Alert
			seq int64
		)
		if err := rows.Scan(&a.Rule, &a.Device, &seq, &a.Severity, &a.Message); err != nil {
			return nil, fmt.Errorf("index: alerts: %w", err)
		}
		a.Seq = uint64(seq)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("index: alerts: %w", err)
	}
	return out, nil
}

// Commands lists commands newest (most recently issued: first seen on the
// ledger) first, each in its latest state.
func (s *sqlStore) Commands(ctx context.Context, device string, n int) ([]api.Command, error) {
	where, args := byDevice(device)
	rows, err := s.r.QueryContext(ctx, s.d.rebind(`SELECT record FROM commands`+where+
		` ORDER BY first_block DESC, first_tx_idx DESC, first_pos DESC LIMIT ?`), append(args, limit(n))...)
	if err != nil {
		return nil, fmt.Errorf("index: commands: %w", err)
	}
	defer rows.Close()
	var out []api.Command
	for rows.Next() {
		var rec string
		if err := rows.Scan(&rec); err != nil {
			return nil, fmt.Errorf("index: commands: %w", err)
		}
		var c api.Command
		if err := json.Unmarshal([]byte(rec), &c); err != nil {
			return nil, fmt.Errorf("index: commands: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("index: commands: %w", err)
	}
	return out, nil
}

func (s *sqlStore) StatusChanges(ctx context.Context, device string, n int) ([]api.StatusChange, error) {
	where, args := byDevice(device)
	rows, err := s.r.QueryContext(ctx, s.d.rebind(`SELECT device, owner, from_status, to_status, reason, cause FROM status_changes`+where+
		` ORDER BY block, tx_idx, pos LIMIT ?`), append(args, limit(n))...)
	if err != nil {
		return nil, fmt.Errorf("index: status changes: %w", err)
	}
	defer rows.Close()
	var out []api.StatusChange
	for rows.Next() {
		var (
			c        api.StatusChange
			from, to string
		)
		if err := rows.Scan(&c.Device, &c.Owner, &from, &to, &c.Reason, &c.Cause); err != nil {
			return nil, fmt.Errorf("index: status changes: %w", err)
		}
		c.From, c.To = api.DeviceStatus(from), api.DeviceStatus(to)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("index: status changes: %w", err)
	}
	return out, nil
}

var _ index.Store = (*sqlStore)(nil)
