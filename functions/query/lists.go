package query

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trustplane/trustplane/functions/auth/authclient"
)

// listRequest is a list's parameters, checked.
type listRequest struct {
	from, to time.Time
	limit    int
	after    *cursor
	groups   map[string]bool
	filters  []filterValue
}

type filterValue struct {
	f     filter
	value string
}

// maxParamLen bounds one parameter's value.
const maxParamLen = 512

// parseTime reads an RFC 3339 time.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("must be an RFC 3339 time such as 2026-01-02T15:04:05Z, got %.64q", s)
	}
	if ms := t.UnixMilli(); ms < minTimeMs || ms > maxTimeMs {
		return time.Time{}, fmt.Errorf("must lie between 1970-01-01T00:00:00Z and 2106-02-07T06:28:15Z, got %.64q", s)
	}
	return t.UTC(), nil
}

// parseRange reads from and to (to defaults to now, from to to - defaultRange) and checks the
// range.
func parseRange(b *badRequest, fromS, toS string, now time.Time, l Limits) (from, to time.Time) {
	to = now.UTC()
	if toS != "" {
		t, err := parseTime(toS)
		if err != nil {
			b.add("to", "%v", err)
		} else {
			to = t
		}
	}
	from = to.Add(-l.DefaultRange)
	if fromS != "" {
		t, err := parseTime(fromS)
		if err != nil {
			b.add("from", "%v", err)
		} else {
			from = t
		}
	}
	if b.ok() {
		switch {
		case !from.Before(to):
			b.add("from", "must be before to (%s), got %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
		case to.Sub(from) > l.MaxRange:
			b.add("from", "the range from %s to %s is longer than %s, the longest this deployment serves", from.Format(time.RFC3339), to.Format(time.RFC3339), l.MaxRange)
		}
	}
	return from, to
}

// parseList checks a list's query parameters against its resource. Unknown parameters are
// refused, so a misspelt filter never silently widens a list.
func parseList(res *resource, q url.Values, now time.Time, l Limits) (listRequest, *badRequest) {
	b := &badRequest{}
	req := listRequest{limit: l.DefaultPageSize, groups: map[string]bool{}}
	for name, vals := range q {
		if len(vals) > 1 {
			b.add(name, "given %d times; give it once", len(vals))
			continue
		}
		v := vals[0]
		if len(v) > maxParamLen || !utf8.ValidString(v) {
			b.add(name, "must be valid UTF-8 of at most %d bytes", maxParamLen)
			continue
		}
		switch name {
		case "from", "to":
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > l.MaxPageSize {
				b.add("limit", "must be an integer between 1 and %d, got %.32q", l.MaxPageSize, v)
				continue
			}
			req.limit = n
		case "cursor":
			c, err := decodeCursor(v)
			if err != nil {
				b.add("cursor", "%v", err)
				continue
			}
			req.after = &c
		case "fields":
			for _, g := range strings.Split(v, ",") {
				if !slices.Contains(fieldGroups, g) || !res.hasGroup(g) {
					b.add("fields", "unknown field group %.32q for %s (known: %s)", g, res.name, strings.Join(groupsOf(res), ", "))
					continue
				}
				req.groups[g] = true
			}
		default:
			f, ok := res.filter(name)
			if !ok {
				b.add(name, "unknown parameter for %s (known: from, to, limit, cursor, fields, %s)", res.name, strings.Join(filterNames(res), ", "))
				continue
			}
			req.filters = append(req.filters, filterValue{f: f, value: v})
		}
	}
	req.from, req.to = parseRange(b, q.Get("from"), q.Get("to"), now, l)
	slices.SortFunc(req.filters, func(a, b filterValue) int { return strings.Compare(a.f.param, b.f.param) })
	if !b.ok() {
		return listRequest{}, b
	}
	return req, nil
}

func groupsOf(res *resource) []string {
	var out []string
	for _, g := range fieldGroups {
		if res.hasGroup(g) {
			out = append(out, g)
		}
	}
	return out
}

func filterNames(res *resource) []string {
	out := make([]string, len(res.filters))
	for i, f := range res.filters {
		out[i] = f.param
	}
	return out
}

// page is a list's answer.
type page struct {
	Data       []map[string]any `json:"data"`
	NextCursor string           `json:"next_cursor,omitempty"`
}

// list runs a list: the key's tenant and project, the time range, the filters and the cursor,
// newest first, one row more than the limit to know whether another page follows.
func (r *reader) list(ctx context.Context, p authclient.Principal, res *resource, req listRequest) (page, error) {
	cols := res.selected(req.groups)
	// FINAL collapses a row's versions before the conditions are checked only on current
	// servers; before 20.x it checks them first, and an older version could answer a filter
	// (or a time) that the latest one fails. So only the sorting key's own columns (tenant,
	// project, day), which every version of a row shares, select rows under FINAL; the exact
	// range, the filters and the cursor apply to what FINAL answers.
	fromSQL, fromArg := r.timeParam(req.from)
	toSQL, toArg := r.timeParam(req.to)
	inner := &where{}
	inner.add("tenant_id = ?", p.Tenant)
	inner.add("project_id = ?", p.Project)
	inner.add("toDate("+res.timeCol+") >= toDate("+fromSQL+")", fromArg)
	inner.add("toDate("+res.timeCol+") <= toDate("+toSQL+")", toArg)
	w := &where{}
	w.add(res.timeCol+" >= "+fromSQL, fromArg)
	w.add(res.timeCol+" < "+toSQL, toArg)
	for _, fv := range req.filters {
		if fv.f.array {
			w.add("has("+fv.f.sql+", ?)", fv.value)
		} else {
			w.add(fv.f.sql+" = ?", fv.value)
		}
	}
	if req.after != nil {
		tSQL, tArg := r.timeParam(req.after.time())
		w.add("("+res.timeCol+" < "+tSQL+" OR ("+res.timeCol+" = "+tSQL+" AND id < ?))", tArg, tArg, req.after.ID)
	}
	sql := fmt.Sprintf("SELECT %s, %s AS sort_ms FROM (SELECT %s FROM %s FINAL WHERE %s) WHERE %s ORDER BY %s DESC, id DESC LIMIT ?",
		jsonList(cols), r.sortMillis(res.timeCol), columnList(cols), r.table(res.table), inner, w, res.timeCol)
	args := append(append(inner.args, w.args...), req.limit+1)
	scanCols := append(slices.Clone(cols), column{json: "\x00sort_ms", kind: kUint64})
	rows, err := r.rows(ctx, scanCols, sql, args...)
	if err != nil {
		return page{}, err
	}
	pg := page{Data: rows}
	if len(rows) > req.limit {
		last := rows[req.limit-1]
		pg.Data = rows[:req.limit]
		pg.NextCursor = cursor{TimeMs: int64(last["\x00sort_ms"].(uint64)), ID: last["id"].(string)}.encode()
	}
	for _, row := range pg.Data {
		delete(row, "\x00sort_ms")
	}
	return pg, nil
}

// sortMillis is the time column in Unix milliseconds as UInt64.
func (r *reader) sortMillis(col string) string {
	if r.features.DateTime64 {
		return "toUInt64(toUnixTimestamp64Milli(" + col + "))"
	}
	return "toUInt64(toUnixTimestamp(" + col + ")) * 1000"
}
