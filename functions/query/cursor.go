package query

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// A cursor is where the previous page ended: the sort time (Unix milliseconds) and id of its
// last row. Lists are ordered by time then id, both descending, so the next page holds the rows
// strictly before that position. A cursor carries no tenant, project or filter: those come from
// the key and the request every time, so a cursor can only move within what the key sees.
type cursor struct {
	TimeMs int64  `json:"t"`
	ID     string `json:"i"`
}

const maxCursorLen = 1024

var errCursor = errors.New("not a cursor returned by this API (take next_cursor from the previous page)")

func (c cursor) encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor reads a cursor; it refuses anything encode could not have produced.
func decodeCursor(s string) (cursor, error) {
	if len(s) > maxCursorLen {
		return cursor{}, fmt.Errorf("%w: longer than %d characters", errCursor, maxCursorLen)
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, errCursor
	}
	var c cursor
	if err := strictUnmarshal(raw, &c); err != nil {
		return cursor{}, errCursor
	}
	if c.TimeMs < minTimeMs || c.TimeMs > maxTimeMs || !utf8.ValidString(c.ID) || len(c.ID) > maxIDLen {
		return cursor{}, errCursor
	}
	if c.encode() != s {
		return cursor{}, errCursor
	}
	return c, nil
}

func (c cursor) time() time.Time { return time.UnixMilli(c.TimeMs).UTC() }

// The times a DateTime column holds (see clickhouse's README): 1970-01-01T00:00:00Z up to
// 2106-02-07T06:28:15Z.
const (
	minTimeMs = 0
	maxTimeMs = 4294967295 * 1000
	maxIDLen  = 512
)
