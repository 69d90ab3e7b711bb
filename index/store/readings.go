package store

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/iotledger/iotledger/index"
)

// readingPlan is how a query of a device's readings is answered.
type readingPlan int

const (
	// planDefault leaves it to the database's planner (PostgreSQL's, with
	// its statistics; or a query with no time range: the primary key).
	planDefault readingPlan = iota
	// planSeq walks the primary key (device, seq) in the order asked,
	// keeping the readings in the time range, until the page is full.
	planSeq
	// planTime takes the seqs in the time range from the (device, ts,
	// seq) index alone, sorts them, and reads the page's readings.
	planTime
)

// probeCap bounds the index entries a probe of readingPlan counts.
const probeCap = 4096

func (p readingPlan) String() string {
	switch p {
	case planSeq:
		return "seq"
	case planTime:
		return "time"
	}
	return "default"
}

// readingPlan chooses how to answer a time-range query, where the dialect
// asks for it (SQLite). Left to itself, SQLite walks the primary key in
// seq order to spare a sort, and filters on ts: a scan of all of a
// device's readings when the range holds few of them or none. The work
// of planTime is bounded by the readings in the range, that of planSeq
// by those it skips before the page is full; readingPlan counts both in
// the (device, ts, seq) index, up to probeCap each: planTime if the range
// holds fewer than probeCap readings; else (it fills the page) planSeq if
// fewer than probeCap readings lie between where the walk starts and the
// range, as a device's clock and seq go up together (none, for the next
// page of an ascending query); else planTime.
func (s *sqlStore) readingPlan(ctx context.Context, q index.ReadingQuery) (readingPlan, error) {
	if !s.d.planReadings || q.From.IsZero() && q.To.IsZero() {
		return planDefault, nil
	}
	inRange, err := s.countCapped(ctx, q)
	if err != nil || inRange < probeCap {
		return planTime, err
	}
	before := q // the readings the walk meets before the range
	if q.Newest {
		if q.To.IsZero() {
			return planSeq, nil
		}
		before.From, before.To = q.To.Add(time.Millisecond), time.Time{} // ts > To
	} else {
		// A page after one of the range starts in the range.
		if q.From.IsZero() || q.AfterSeq > 0 {
			return planSeq, nil
		}
		before.From, before.To = time.Time{}, q.From.Add(-time.Millisecond) // ts < From
	}
	skipped, err := s.countCapped(ctx, before)
	if err != nil || skipped < probeCap {
		return planSeq, err
	}
	return planTime, nil
}

// countCapped counts the readings q matches, up to probeCap, in the
// (device, ts, seq) index alone.
func (s *sqlStore) countCapped(ctx context.Context, q index.ReadingQuery) (int, error) {
	var b strings.Builder
	b.WriteString(`SELECT count(*) FROM (SELECT 1 FROM readings` + s.d.timeIndex)
	args := readingsWhere(&b, q)
	b.WriteString(` LIMIT ?) AS r`)
	var n int
	if err := s.r.QueryRowContext(ctx, s.d.rebind(b.String()), append(args, probeCap)...).Scan(&n); err != nil {
		return 0, fmt.Errorf("index: readings: %w", err)
	}
	return n, nil
}

// readingsWhere writes q's WHERE clause and returns its arguments.
func readingsWhere(b *strings.Builder, q index.ReadingQuery) []any {
	b.WriteString(` WHERE device = ?`)
	args := []any{q.Device}
	if !q.From.IsZero() {
		b.WriteString(` AND ts >= ?`)
		args = append(args, q.From.UnixMilli())
	}
	if !q.To.IsZero() {
		b.WriteString(` AND ts <= ?`)
		args = append(args, q.To.UnixMilli())
	}
	if q.AfterSeq > 0 {
		b.WriteString(` AND seq > ?`)
		args = append(args, int64(q.AfterSeq))
	}
	return args
}

// readingsQuery is the SQL of a ReadingQuery answered by plan ("" for a
// query that can match nothing).
func (s *sqlStore) readingsQuery(q index.ReadingQuery, plan readingPlan) (string, []any) {
	if q.AfterSeq >= math.MaxInt64 {
		return "", nil
	}
	order := ` ORDER BY seq`
	if q.Newest {
		order = ` ORDER BY seq DESC`
	}
	var b strings.Builder
	var args []any
	switch plan {
	case planTime:
		b.WriteString(`SELECT ` + readingCols + ` FROM readings WHERE device = ? AND seq IN (SELECT seq FROM readings` + s.d.timeIndex)
		args = append([]any{q.Device}, readingsWhere(&b, q)...)
		b.WriteString(order + ` LIMIT ?)` + order)
	case planSeq:
		b.WriteString(`SELECT ` + readingCols + ` FROM readings` + s.d.seqIndex)
		args = readingsWhere(&b, q)
		b.WriteString(order + ` LIMIT ?`)
	default:
		b.WriteString(`SELECT ` + readingCols + ` FROM readings`)
		args = readingsWhere(&b, q)
		b.WriteString(order + ` LIMIT ?`)
	}
	return s.d.rebind(b.String()), append(args, limit(q.Limit))
}

func (s *sqlStore) Readings(ctx context.Context, q index.ReadingQuery) ([]index.Reading, error) {
	if q.AfterSeq >= math.MaxInt64 {
		return nil, nil
	}
	plan, err := s.readingPlan(ctx, q)
	if err != nil {
		return nil, err
	}
	query, args := s.readingsQuery(q, plan)
	return s.queryReadings(ctx, query, args...)
}
