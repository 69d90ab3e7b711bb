package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/iotledger/iotledger/index"
)

var postgresDialect = &dialect{
	name:      "postgres",
	blob:      "BYTEA",
	dollar:    true,
	maxParams: 65535,
	// Two indexes opening an empty database at once create it once.
	lockSchema: `SELECT pg_advisory_xact_lock(7306275364621837426)`,
	// Two followers applying to one database at once apply each block once.
	forUpdate: ` FOR UPDATE`,
	snapshot:  &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
}

// postgresConns is the most connections an index keeps open.
const postgresConns = 8

// OpenPostgres opens the index in the PostgreSQL database dsn names (a URL
// or a key=value connection string), creating its schema if missing.
func OpenPostgres(ctx context.Context, dsn string) (index.Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("index: PostgreSQL connection string: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(postgresConns)
	db.SetMaxIdleConns(postgresConns)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("index: connecting to PostgreSQL: %w", err)
	}
	if err := migrate(ctx, db, postgresDialect); err != nil {
		_ = db.Close()
		return nil, err
	}
	return &sqlStore{d: postgresDialect, w: db, r: db}, nil
}
