package query

import (
	"context"
	"fmt"
	"strings"

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
// shows the latest.
func (r *reader) detail(ctx context.Context, p authclient.Principal, id string, limit int) (traceDetail, error) {
	all := map[string]bool{groupIO: true, groupMetadata: true}
	cols := traces.selected(all)
	rows, err := r.rows(ctx, cols, fmt.Sprintf("SELECT %s FROM %s FINAL WHERE tenant_id = ? AND project_id = ? AND id = ? ORDER BY timestamp DESC LIMIT 1",
		columnList(cols), r.table(traces.table)), p.Tenant, p.Project, id)
	if err != nil {
		return traceDetail{}, err
	}
	if len(rows) == 0 {
		return traceDetail{}, errNotFound
	}
	d := traceDetail{Trace: rows[0], Truncated: []string{}}
	idx, err := r.traceIndex(ctx, p, id, limit)
	if err != nil {
		return traceDetail{}, err
	}
	children := []struct {
		res  *resource
		dst  *[]map[string]any
		name string
		kind string
	}{
		{&observations, &d.Observations, "observations", "observation"},
		{&scores, &d.Scores, "scores", "score"},
		{&llmCalls, &d.LLMCalls, "llm_calls", "llm_call"},
		{&findings, &d.Findings, "findings", "finding"},
	}
	for _, c := range children {
		*c.dst = []map[string]any{}
		entries := idx[c.kind]
		if len(entries.days) == 0 || (c.res == &findings && !r.findings.Load()) {
			continue
		}
		cols := c.res.selected(all)
		sql, args := r.childSQL(p, c.res, cols, id, entries, limit)
		rows, err := r.rows(ctx, cols, sql, args...)
		if err != nil {
			return traceDetail{}, err
		}
		if len(rows) > limit {
			rows = rows[:limit]
			d.Truncated = append(d.Truncated, c.name)
		}
		*c.dst = rows
	}
	return d, nil
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
// prune far better than one condition over every day; the trace id is checked on the row
// itself (an index entry may be stale).
func (r *reader) childSQL(p authclient.Principal, res *resource, cols []column, traceID string, e indexEntries, limit int) (string, []any) {
	day := "toDate(" + res.timeCol + ")"
	// Under FINAL only the sorting key's columns select rows (see list); the trace id is
	// checked on what FINAL answers.
	final := func(key *where) string {
		return fmt.Sprintf("SELECT %s FROM (SELECT %s FROM %s FINAL WHERE %s) WHERE trace_id = ?", jsonList(cols), columnList(cols), r.table(res.table), key)
	}
	if len(e.days) > maxDayBranches {
		w := &where{}
		w.add("tenant_id = ?", p.Tenant)
		w.add("project_id = ?", p.Project)
		w.add(day+" IN ?", groupSet(e.days))
		return final(w) + " ORDER BY " + res.timeCol + ", id LIMIT ?", append(w.args, traceID, limit+1)
	}
	var parts []string
	var args []any
	for _, d := range e.days {
		w := &where{}
		w.add("tenant_id = ?", p.Tenant)
		w.add("project_id = ?", p.Project)
		w.add(day+" = toDate(?)", d)
		if ids := e.ids[d]; len(ids) > 0 {
			w.add("id IN ?", groupSet(ids))
		}
		parts = append(parts, final(w))
		args = append(append(args, w.args...), traceID)
	}
	return fmt.Sprintf("SELECT %s FROM (%s) ORDER BY %s, id LIMIT ?", jsonList(cols), strings.Join(parts, " UNION ALL "), res.timeCol),
		append(args, limit+1)
}

// traceIndex reads the trace index (migration 0007) for a trace: per kind, the days its rows
// lie in and, when at most a few times the detail limit, their ids.
func (r *reader) traceIndex(ctx context.Context, p authclient.Principal, id string, limit int) (map[string]indexEntries, error) {
	out := map[string]indexEntries{}
	counts := map[string]uint64{}
	rs, err := r.conn.Query(r.ctx(ctx), "SELECT kind, toString(day), count() FROM "+r.table("trace_index")+
		" WHERE tenant_id = ? AND project_id = ? AND trace_id = ? GROUP BY kind, day ORDER BY kind, day", p.Tenant, p.Project, id)
	if err != nil {
		return nil, classify(err)
	}
	for rs.Next() {
		var kind, day string
		var n uint64
		if err := rs.Scan(&kind, &day, &n); err != nil {
			rs.Close()
			return nil, err
		}
		e := out[kind]
		e.days = append(e.days, day)
		out[kind] = e
		counts[kind] += n
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return nil, classify(err)
	}
	var listed []string
	for kind, n := range counts {
		if kind != "finding" && n <= uint64(4*limit) {
			listed = append(listed, kind)
		}
	}
	if len(listed) == 0 {
		return out, nil
	}
	rs, err = r.conn.Query(r.ctx(ctx), "SELECT kind, toString(day), id FROM "+r.table("trace_index")+
		" WHERE tenant_id = ? AND project_id = ? AND trace_id = ? AND has(?, kind) GROUP BY kind, day, id", p.Tenant, p.Project, id, listed)
	if err != nil {
		return nil, classify(err)
	}
	defer rs.Close()
	for rs.Next() {
		var kind, day, rowID string
		if err := rs.Scan(&kind, &day, &rowID); err != nil {
			return nil, err
		}
		e := out[kind]
		if e.ids == nil {
			e.ids = map[string][]string{}
		}
		e.ids[day] = append(e.ids[day], rowID)
		out[kind] = e
	}
	return out, classify(rs.Err())
}

// groupSet binds a list as a tuple, for IN: ClickHouse then uses it against the sorting key.
func groupSet(vals []string) ch.GroupSet {
	g := ch.GroupSet{Value: make([]any, len(vals))}
	for i, v := range vals {
		g.Value[i] = v
	}
	return g
}
