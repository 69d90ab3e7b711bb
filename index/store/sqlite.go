package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/iotledger/iotledger/index"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

var sqliteDialect = &dialect{
	name:         "sqlite",
	blob:         "BLOB",
	withoutRowID: " WITHOUT ROWID",
	maxParams:    32766, // SQLITE_MAX_VARIABLE_NUMBER
	planReadings: true,
	timeIndex:    ` INDEXED BY readings_device_ts`,
	seqIndex:     ` INDEXED BY sqlite_autoindex_readings_1`, // PRIMARY KEY (device, seq): the table itself, WITHOUT ROWID
}

// sqliteReaders is the size of the pool that serves queries; WAL lets them
// run beside the writer.
const sqliteReaders = 4

// OpenSQLite opens (creating it, its directory and its schema if missing)
// an index in the SQLite file at path. The database is in WAL mode with
// synchronous=NORMAL: a crash of the machine may lose the last blocks
// applied, never half a block, and the checkpoint goes back with them.
// It has one writer, a single connection whose transactions take the
// write lock at once (BEGIN IMMEDIATE), and a pool of read-only
// connections for queries.
func OpenSQLite(ctx context.Context, path string) (index.Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("index: %q is not a SQLite file path", path)
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("index: %w", err)
		}
	}
	uri := "file:" + escapeURIPath(path)
	const common = "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"
	// The writer's page cache stays valid between its transactions (no
	// one else writes): 32 MiB holds the pages each device's readings
	// are appended to. A reader's cache is dropped whenever the writer
	// commits, so readers map the file instead (mmap_size) and read its
	// pages from the OS's page cache without a system call each.
	w, err := sql.Open("sqlite", uri+"?"+common+"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=cache_size(-32768)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("index: opening %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("index: opening %s: %w", path, err)
	}
	var mode string
	if err := w.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("index: opening %s: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		_ = w.Close()
		return nil, fmt.Errorf("index: %s is not in WAL mode but %q", path, mode)
	}
	if err := migrate(ctx, w, sqliteDialect); err != nil {
		_ = w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", uri+"?"+common+"&_pragma=query_only(1)&_pragma=cache_size(-8192)&_pragma=mmap_size(268435456)")
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("index: opening %s: %w", path, err)
	}
	r.SetMaxOpenConns(sqliteReaders)
	r.SetMaxIdleConns(sqliteReaders)
	return &sqlStore{
		d: sqliteDialect,
		w: w,
		r: r,
		onClose: func(ctx context.Context, w *sql.DB) {
			// Keeps the planner's statistics current (cheap; see SQLite's
			// documentation of PRAGMA optimize).
			_, _ = w.ExecContext(ctx, `PRAGMA optimize`)
		},
	}, nil
}

// escapeURIPath escapes what would end or alter the path of a file: URI.
func escapeURIPath(p string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return r.Replace(filepath.ToSlash(p))
}
