package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/iotledger/iotledger/index"
)

// Throughput counts the batches committed in [from, to) by their
// transaction's time (the proposal timestamp, which every endorser checked
// against its own clock), one row per batch: a minute of a busy channel is
// a few hundred batches.
func (s *sqlStore) Throughput(ctx context.Context, from, to time.Time) (*index.Throughput, error) {
	if !from.Before(to) {
		return nil, fmt.Errorf("index: throughput: the window %s to %s is empty", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	}
	out := &index.Throughput{From: from, To: to, Submitters: []index.SubmitterThroughput{}}
	var latest sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT time FROM blocks WHERE time IS NOT NULL ORDER BY number DESC LIMIT 1`).Scan(&latest)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("index: throughput: latest block: %w", err)
	}
	out.Latest = fromNanos(latest)
	rows, err := s.r.QueryContext(ctx, s.d.rebind(`
		SELECT t.creator_msp, t.creator, b.private, (SELECT COUNT(*) FROM readings r WHERE r.block = t.block AND r.tx_idx = t.idx)
		FROM transactions t JOIN batches b ON b.tx_id = t.tx_id AND b.block = t.block
		WHERE t.time >= ? AND t.time < ? AND t.validation_code = 'VALID'`), nanos(from), nanos(to))
	if err != nil {
		return nil, fmt.Errorf("index: throughput: %w", err)
	}
	defer rows.Close()
	type key struct{ msp, submitter string }
	at := map[key]int{}
	for rows.Next() {
		var (
			k        key
			private  bool
			readings int
		)
		if err := rows.Scan(&k.msp, &k.submitter, &private, &readings); err != nil {
			return nil, fmt.Errorf("index: throughput: %w", err)
		}
		i, ok := at[k]
		if !ok {
			i = len(out.Submitters)
			at[k] = i
			out.Submitters = append(out.Submitters, index.SubmitterThroughput{MSPID: k.msp, Submitter: k.submitter})
		}
		st := &out.Submitters[i]
		st.Batches++
		st.Readings += readings
		if private && readings == 0 {
			st.PrivateBatches++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("index: throughput: %w", err)
	}
	slices.SortFunc(out.Submitters, func(a, b index.SubmitterThroughput) int {
		return cmp.Or(cmp.Compare(a.MSPID, b.MSPID), cmp.Compare(a.Submitter, b.Submitter))
	})
	return out, nil
}
