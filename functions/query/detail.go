package query

import (
	"context"
	"fmt"

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
	children := []struct {
		res  *resource
		dst  *[]map[string]any
		name string
	}{
		{&observations, &d.Observations, "observations"},
		{&scores, &d.Scores, "scores"},
		{&llmCalls, &d.LLMCalls, "llm_calls"},
		{&findings, &d.Findings, "findings"},
	}
	for _, c := range children {
		*c.dst = []map[string]any{}
		if c.res == &findings && !r.findings.Load() {
			continue
		}
		cols := c.res.selected(all)
		rows, err := r.rows(ctx, cols, fmt.Sprintf("SELECT %s FROM %s FINAL WHERE tenant_id = ? AND project_id = ? AND trace_id = ? ORDER BY %s, id LIMIT ?",
			columnList(cols), r.table(c.res.table), c.res.timeCol), p.Tenant, p.Project, id, limit+1)
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
