package batch

import (
	"context"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// sqlRunner is what retention needs from ClickHouse: statements, and queries whose columns
// are all Strings. The TTL path binds no parameters (a TTL expression cannot take them, so
// ids go in as checked, quoted literals), which lets its statements also run, in tests, on
// an engine without the native protocol.
type sqlRunner interface {
	Exec(ctx context.Context, query string, args ...any) error
	Strings(ctx context.Context, query string, args ...any) ([][]string, error)
}

// connRunner runs statements over clickhouse-go's native connection, with bound parameters
// where given.
type connRunner struct{ conn driver.Conn }

func (c connRunner) Exec(ctx context.Context, query string, args ...any) error {
	return c.conn.Exec(ctx, query, args...)
}

func (c connRunner) Strings(ctx context.Context, query string, args ...any) ([][]string, error) {
	rows, err := c.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	n := len(rows.Columns())
	var out [][]string
	for rows.Next() {
		vals := make([]string, n)
		ptrs := make([]any, n)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return out, err
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}
