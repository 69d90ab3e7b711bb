package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pg := backends(t)[1]
	for _, c := range []struct {
		name    string
		url     string
		dialect *dialect
		err     string
	}{
		{"sqlite path", "sqlite:" + filepath.Join(dir, "a.db"), sqliteDialect, ""},
		{"sqlite URL", "sqlite://" + filepath.Join(dir, "b.db"), sqliteDialect, ""},
		{"sqlite new directory", "sqlite:" + filepath.Join(dir, "sub", "dir", "c.db"), sqliteDialect, ""},
		{"sqlite odd file name", "sqlite:" + filepath.Join(dir, "d?x=1#%41.db"), sqliteDialect, ""},
		{"postgres", pg.fresh(t), postgresDialect, ""},
		{"postgresql", strings.Replace(pg.fresh(t), "postgres://", "postgresql://", 1), postgresDialect, ""},
		{"no file", "sqlite:", nil, "names no SQLite file"},
		{"memory", "sqlite::memory:", nil, "not a SQLite file path"},
		{"unknown scheme", "mysql://localhost/x", nil, `unknown database URL scheme "mysql"`},
		{"bare path", filepath.Join(dir, "e.db"), nil, "unknown database URL scheme"},
		{"postgres unreachable", "postgres://nobody@127.0.0.1:1/x?connect_timeout=2", nil, "connecting to PostgreSQL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Open(ctx, c.url)
			if c.err != "" {
				require.ErrorContains(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Same(t, c.dialect, s.(*sqlStore).d)
			apply(t, s, block(0, batchTx("tx0", devReadings("dev1", 1, 2)...)))
			require.NoError(t, s.Close())
			require.NoError(t, s.Close(), "a second Close")

			s, err = Open(ctx, c.url)
			require.NoError(t, err)
			defer s.Close()
			next, _, err := s.Checkpoint(ctx)
			require.NoError(t, err)
			require.Equal(t, uint64(1), next)
		})
	}
	require.FileExists(t, filepath.Join(dir, "d?x=1#%41.db"))
}

func TestSQLiteWAL(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "index.db")
	s, err := OpenSQLite(ctx, path)
	require.NoError(t, err)
	defer s.Close()
	var mode string
	require.NoError(t, s.(*sqlStore).r.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode))
	require.Equal(t, "wal", mode)
	// Queries go to read-only connections.
	_, err = s.(*sqlStore).r.ExecContext(ctx, `DELETE FROM readings`)
	require.Error(t, err)
}

// TestSchemaVersion: an index made by a newer program is refused, and
// reopening an index leaves its version alone.
func TestSchemaVersion(t *testing.T) {
	ctx := context.Background()
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			loc := be.fresh(t)
			s, err := be.open(ctx, loc)
			require.NoError(t, err)
			require.NoError(t, s.Close())
			s, err = be.open(ctx, loc)
			require.NoError(t, err)
			st := s.(*sqlStore)
			var version, rows int
			require.NoError(t, st.r.QueryRowContext(ctx, `SELECT max(version), count(*) FROM schema_version`).Scan(&version, &rows))
			require.Equal(t, schemaVersion, version)
			require.Equal(t, 1, rows)
			require.NoError(t, st.r.QueryRowContext(ctx, `SELECT count(*) FROM checkpoint`).Scan(&rows))
			require.Equal(t, 1, rows)
			_, err = st.w.ExecContext(ctx, `UPDATE schema_version SET version = 99`)
			require.NoError(t, err)
			require.NoError(t, s.Close())

			_, err = be.open(ctx, loc)
			require.ErrorContains(t, err, "schema version 99, newer than this program's 3")
		})
	}
}
