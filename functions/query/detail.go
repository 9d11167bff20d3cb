package query

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/trustplane/trustplane/functions/auth/authclient"
)

// traceDetail is one trace with what belongs to it. Each list is cut at the detail limit, and
// its truncated flag says so.
type traceDetail struct {
	Trace        map[string]any   `json:"trace"`
	Observations []map[string]any `json:"observations"`
	Scores       []map[string]any `json:"scores"`
	LLMCalls     []map[string]any `json:"llm_calls"`
	Findings     []map[string]any `json:"findings"`
	Truncated    []string         `json:"truncated"`
}

// errNotFound is a trace id the key's project does not have.
var errNotFound = fmt.Errorf("not found")

// detail reads a trace and its observations, scores, llm calls and findings, all within the
// key's tenant and project. A trace id posted on several days is several rows; the detail
// shows the latest. After the trace index, the five reads are independent and run at once.
func (r *reader) detail(ctx context.Context, p authclient.Principal, id string, limit int) (traceDetail, error) {
	all := map[string]bool{groupIO: true, groupMetadata: true}
	idx, err := r.traceIndex(ctx, p, id, limit)
	if err != nil {
		return traceDetail{}, err
	}
	if len(idx["trace"].days) == 0 {
		return traceDetail{}, errNotFound
	}
	var trace []map[string]any
	d := traceDetail{Truncated: []string{}}
	parts := []struct {
		res  *resource
		dst  *[]map[string]any
		name string
		kind string
	}{
		{&traces, &trace, "trace", "trace"},
		{&observations, &d.Observations, "observations", "observation"},
		{&scores, &d.Scores, "scores", "score"},
		{&llmCalls, &d.LLMCalls, "llm_calls", "llm_call"},
		{&findings, &d.Findings, "findings", "finding"},
	}
	var wg sync.WaitGroup
	errs := make([]error, len(parts))
	cut := make([]bool, len(parts))
	for i, c := range parts {
		*c.dst = []map[string]any{}
		entries := idx[c.kind]
		if len(entries.days) == 0 || (c.res == &findings && !r.findings.Load()) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cols := c.res.selected(all)
			var sql string
			var args []any
			if c.res == &traces {
				sql, args = r.traceSQL(p, cols, id, entries.days)
			} else {
				sql, args = r.childSQL(p, c.res, cols, id, entries, limit)
			}
			rows, err := r.rows(ctx, cols, sql, args...)
			if err != nil {
				errs[i] = err
				return
			}
			if len(rows) > limit {
				rows, cut[i] = rows[:limit], true
			}
			*c.dst = rows
		}()
	}
	wg.Wait()
	for i, c := range parts {
		if errs[i] != nil {
			return traceDetail{}, errs[i]
		}
		if cut[i] {
			d.Truncated = append(d.Truncated, c.name)
		}
	}
	if len(trace) == 0 {
		return traceDetail{}, errNotFound
	}
	d.Trace = trace[0]
	return d, nil
}

// latest selects, from the rows of res that key selects, each row's latest version: what
// FINAL answers, without FINAL, which on old servers reads every column of every granule in
// the key's range to merge them, where this reads only the selected rows. key must hold only
// conditions on sorting key columns, which every version of a row shares, so that no version
// is dropped before the latest is chosen. Among versions of one number (one ingest
// millisecond), the highest event id wins, where FINAL keeps the last inserted. candidatesFor,
// when set, is a trace id: only rows of which some version belongs to it are read (the latest
// version is still checked by the caller), so a day of many rows is not sorted whole.
func (r *reader) latest(res *resource, cols []column, key *where, candidatesFor string) (string, []any) {
	args := key.args
	cond := key.String()
	if candidatesFor != "" {
		cond += fmt.Sprintf(" AND (%s) IN (SELECT %s FROM %s WHERE %s AND trace_id = ?)", res.rowKey, res.rowKey, r.table(res.table), key)
		args = append(append(append([]any{}, args...), key.args...), candidatesFor)
	}
	return fmt.Sprintf("SELECT %s FROM %s WHERE %s ORDER BY %s, version DESC, event_id DESC LIMIT 1 BY %s",
		columnList(cols), r.table(res.table), cond, res.rowKey, res.rowKey), args
}

// traceSQL reads the trace's row: the latest version of each day's, then the latest day's.
func (r *reader) traceSQL(p authclient.Principal, cols []column, id string, days []string) (string, []any) {
	w := &where{}
	w.add("tenant_id = ?", p.Tenant)
	w.add("project_id = ?", p.Project)
	w.add("toDate(timestamp) IN ?", groupSet(days))
	w.add("id = ?", id)
	inner, args := r.latest(&traces, cols, w, "")
	return fmt.Sprintf("SELECT %s FROM (%s) ORDER BY timestamp DESC LIMIT 1", jsonList(cols), inner), args
}

// indexEntries are where a trace's rows of one kind are: their days, and each day's ids unless
// there are too many to list (then the days alone select them).
type indexEntries struct {
	days []string
	ids  map[string][]string // by day
}

// maxDayBranches bounds the per-day parts of a child statement; a trace spread over more days
// is read with the days as one set instead.
const maxDayBranches = 31

// childSQL reads a trace's rows of one kind: one part per day, each selecting its rows by the
// table's sorting key (tenant, project, day, ids), joined with UNION ALL, which old servers
// prune far better than one condition over every day; the trace id is checked on each row's
// latest version (an index entry may be stale).
func (r *reader) childSQL(p authclient.Principal, res *resource, cols []column, traceID string, e indexEntries, limit int) (string, []any) {
	day := "toDate(" + res.timeCol + ")"
	// Only the sorting key's columns select rows before the latest versions are chosen; the
	// trace id is checked on those.
	part := func(key *where, byIDs bool) (string, []any) {
		candidates := traceID
		if byIDs {
			candidates = ""
		}
		inner, args := r.latest(res, cols, key, candidates)
		return fmt.Sprintf("SELECT %s FROM (%s) WHERE trace_id = ?", jsonList(cols), inner), append(args, traceID)
	}
	if len(e.days) > maxDayBranches {
		w := &where{}
		w.add("tenant_id = ?", p.Tenant)
		w.add("project_id = ?", p.Project)
		w.add(day+" IN ?", groupSet(e.days))
		sql, args := part(w, false)
		return sql + " ORDER BY " + res.timeCol + ", id LIMIT ?", append(args, limit+1)
	}
	var parts []string
	var args []any
	for _, d := range e.days {
		w := &where{}
		w.add("tenant_id = ?", p.Tenant)
		w.add("project_id = ?", p.Project)
		w.add(day+" = toDate(?)", d)
		ids := e.ids[d]
		if len(ids) > 0 {
			w.add("id IN ?", groupSet(ids))
		}
		sql, a := part(w, len(ids) > 0)
		parts = append(parts, sql)
		args = append(args, a...)
	}
	return fmt.Sprintf("SELECT %s FROM (%s) ORDER BY %s, id LIMIT ?", jsonList(cols), strings.Join(parts, " UNION ALL "), res.timeCol),
		append(args, limit+1)
}

// traceIndex reads the trace index (migration 0007) for a trace in one statement: per kind,
// the days its rows lie in and, when at most a few times the detail limit, their ids. Each
// day lists at most that many entries (an id not yet merged may be listed twice), so a
// kind's ids are complete when its entries in all are within it.
func (r *reader) traceIndex(ctx context.Context, p authclient.Principal, id string, limit int) (map[string]indexEntries, error) {
	maxIDs := 4 * limit
	rs, err := r.conn.Query(r.ctx(ctx), fmt.Sprintf("SELECT kind, toString(day), count(), groupArrayIf(%d)(id, kind NOT IN ('trace', 'finding')) FROM %s"+
		" WHERE tenant_id = ? AND project_id = ? AND trace_id = ? GROUP BY kind, day ORDER BY kind, day", maxIDs+1, r.table("trace_index")), p.Tenant, p.Project, id)
	if err != nil {
		return nil, classify(err)
	}
	defer rs.Close()
	out := map[string]indexEntries{}
	counts := map[string]uint64{}
	for rs.Next() {
		var kind, day string
		var n uint64
		var ids []string
		if err := rs.Scan(&kind, &day, &n, &ids); err != nil {
			return nil, err
		}
		e := out[kind]
		e.days = append(e.days, day)
		if len(ids) > 0 {
			if e.ids == nil {
				e.ids = map[string][]string{}
			}
			slices.Sort(ids)
			e.ids[day] = slices.Compact(ids)
		}
		out[kind] = e
		counts[kind] += n
	}
	if err := rs.Err(); err != nil {
		return nil, classify(err)
	}
	for kind, n := range counts {
		if n > uint64(maxIDs) {
			e := out[kind]
			e.ids = nil
			out[kind] = e
		}
	}
	return out, nil
}

// groupSet binds a list as a tuple, for IN: ClickHouse then uses it against the sorting key.
func groupSet(vals []string) ch.GroupSet {
	g := ch.GroupSet{Value: make([]any, len(vals))}
	for i, v := range vals {
		g.Value[i] = v
	}
	return g
}
