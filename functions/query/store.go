package query

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/trustplane/trustplane/clickhouse"
)

// reader runs query's statements. Every statement is one of the fixed texts built in this
// package from constants; request values reach ClickHouse only as bound parameters. Every
// statement runs with the limits of Limits as ClickHouse settings.
type reader struct {
	conn     queryer
	db       string
	features clickhouse.Features
	settings ch.Settings
	findings atomic.Bool // whether the findings table exists

	mu       sync.Mutex
	verdicts map[dayKey]dayVerdict // see rawDays
}

// queryer runs one statement with bound arguments: a clickhouse-go connection (through
// nativeConn), or in the tests an in-process ClickHouse 26.9.
type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (rows, error)
}

// rows are a statement's result.
type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// nativeConn is a clickhouse-go connection as a queryer.
type nativeConn struct{ driver.Conn }

func (c nativeConn) Query(ctx context.Context, sql string, args ...any) (rows, error) {
	return c.Conn.Query(ctx, sql, args...)
}

func newReader(conn driver.Conn, db string, f clickhouse.Features, l Limits) *reader {
	return newReaderOn(nativeConn{conn}, db, f, l)
}

func newReaderOn(conn queryer, db string, f clickhouse.Features, l Limits) *reader {
	// Integers only: servers before 19.x take settings as numbers on the wire. The overflow
	// modes stay at their default, throw: a statement over a limit fails, never answers a part.
	return &reader{conn: conn, db: db, features: f, verdicts: map[dayKey]dayVerdict{}, settings: ch.Settings{
		"max_execution_time": int(l.MaxExecutionTime / time.Second),
		"max_rows_to_read":   int(l.MaxRowsToRead),
		"max_bytes_to_read":  int(l.MaxBytesToRead),
		"max_result_rows":    int(l.MaxResultRows),
		"max_result_bytes":   int(l.MaxResultBytes),
	}}
}

func (r *reader) ctx(ctx context.Context) context.Context {
	return ch.Context(ctx, ch.WithSettings(r.settings))
}

func (r *reader) table(name string) string { return r.db + "." + name }

// timeParam is the SQL of a bound time and the value to bind: whole seconds for DateTime
// columns, milliseconds for DateTime64(3). A time between two of the column's ticks binds the
// next tick: the column holds whole ticks, so ">= t" and "< t" keep the same rows with t
// moved up, while cutting it down would keep the row one tick before from, and drop the rows
// of the current second from a range that ends now.
func (r *reader) timeParam(t time.Time) (string, any) {
	if r.features.DateTime64 {
		return "fromUnixTimestamp64Milli(toInt64(?), 'UTC')", ceilTick(t, time.Millisecond).UnixMilli()
	}
	return "toDateTime(?, 'UTC')", ceilTick(t, time.Second).Unix()
}

// ceilTick is t moved up to a whole multiple of tick.
func ceilTick(t time.Time, tick time.Duration) time.Time {
	if c := t.Truncate(tick); !c.Equal(t) {
		return c.Add(tick)
	}
	return t
}

// refreshFindings checks whether guard's findings table exists (the route answers 404 until
// it does).
func (r *reader) refreshFindings(ctx context.Context) error {
	rs, err := r.conn.Query(r.ctx(ctx), "SELECT count() FROM system.tables WHERE database = ? AND name = ?", r.db, "findings")
	if err != nil {
		return err
	}
	defer rs.Close()
	var n uint64
	for rs.Next() {
		if err := rs.Scan(&n); err != nil {
			return err
		}
	}
	if err := rs.Err(); err != nil {
		return err
	}
	r.findings.Store(n > 0)
	return nil
}

// errTooExpensive wraps ClickHouse's refusals of a statement over its limits.
var errTooExpensive = errors.New("the query is over this deployment's limits")

// ClickHouse error codes for limits: TOO_MANY_ROWS (158), TOO_MANY_BYTES (307),
// TIMEOUT_EXCEEDED (159), TOO_MANY_ROWS_OR_BYTES (396), MEMORY_LIMIT_EXCEEDED (241),
// TOO_SLOW (160).
var limitCodes = map[int32]bool{158: true, 159: true, 160: true, 241: true, 307: true, 396: true}

func classify(err error) error {
	var ex *ch.Exception
	if errors.As(err, &ex) && limitCodes[ex.Code] {
		return fmt.Errorf("%w: %s", errTooExpensive, firstLine(ex.Message))
	}
	return err
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

// where is a statement's WHERE clause under construction with its bound arguments.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) String() string { return strings.Join(w.conds, " AND ") }

// rows runs a statement and scans every row into JSON objects.
func (r *reader) rows(ctx context.Context, cols []column, sql string, args ...any) ([]map[string]any, error) {
	rs, err := r.conn.Query(r.ctx(ctx), sql, args...)
	if err != nil {
		return nil, classify(err)
	}
	defer rs.Close()
	out := []map[string]any{}
	for rs.Next() {
		vals := scanTargets(cols)
		if err := rs.Scan(vals...); err != nil {
			return nil, err
		}
		out = append(out, rowJSON(cols, vals))
	}
	if err := rs.Err(); err != nil {
		return nil, classify(err)
	}
	return out, nil
}
