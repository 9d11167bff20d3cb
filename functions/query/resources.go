package query

import (
	"strings"
	"time"
)

// kind is how a column is scanned and written to JSON.
type kind int

const (
	kString kind = iota
	kUint64
	kUint16
	kUint32
	kUint8
	kBool // UInt8 0/1, answered as true/false
	kFloat
	kTime
	kStrings
)

// column is one field of a resource: its JSON name, the column it is read from, how, and the
// field group that selects it (core fields always, "io" and "metadata" when asked for).
type column struct {
	json  string
	sql   string
	kind  kind
	group string
}

// filter is a list parameter: it matches one column exactly (or, for an array column, a
// member of it). Its value is always a bound parameter.
type filter struct {
	param string
	sql   string
	array bool
}

// resource is a list the API serves: a table, its time column (lists are ordered by it and
// the time range applies to it), its fields and its filters. Nothing in a resource comes from
// a request: requests only pick among them.
type resource struct {
	name    string // as in the URL
	table   string
	timeCol string
	columns []column
	filters []filter
	// rowKey is the table's sorting key after tenant and project: the versions of one row
	// share it, and a ReplacingMergeTree keeps the one of the highest version.
	rowKey string
}

const (
	groupCore     = ""
	groupIO       = "io"
	groupMetadata = "metadata"
)

var fieldGroups = []string{groupIO, groupMetadata}

func metadataColumns() []column {
	return []column{
		{json: "metadata_keys", sql: "metadata_keys", kind: kStrings, group: groupMetadata},
		{json: "metadata_values", sql: "metadata_values", kind: kStrings, group: groupMetadata},
	}
}

func ioColumns(extra ...column) []column {
	return append([]column{
		{json: "input", sql: "input", kind: kString, group: groupIO},
		{json: "output", sql: "output", kind: kString, group: groupIO},
	}, extra...)
}

var (
	traces = resource{
		name: "traces", table: "traces", timeCol: "timestamp",
		rowKey: "toDate(timestamp), id",
		columns: concat([]column{
			{json: "id", sql: "id"},
			{json: "timestamp", sql: "timestamp", kind: kTime},
			{json: "name", sql: "name"},
			{json: "user_id", sql: "user_id"},
			{json: "session_id", sql: "session_id"},
			{json: "release", sql: "release"},
			{json: "app_version", sql: "app_version"},
			{json: "environment", sql: "environment"},
			{json: "tags", sql: "tags", kind: kStrings},
		}, metadataColumns(), ioColumns()),
		filters: []filter{{param: "name", sql: "name"}, {param: "user_id", sql: "user_id"},
			{param: "session_id", sql: "session_id"}, {param: "environment", sql: "environment"},
			{param: "release", sql: "release"}, {param: "tag", sql: "tags", array: true}},
	}
	observations = resource{
		name: "observations", table: "observations", timeCol: "start_time",
		rowKey: "toDate(start_time), id",
		columns: concat([]column{
			{json: "id", sql: "id"},
			{json: "trace_id", sql: "trace_id"},
			{json: "parent_observation_id", sql: "parent_observation_id"},
			{json: "type", sql: "type"},
			{json: "name", sql: "name"},
			{json: "start_time", sql: "start_time", kind: kTime},
			{json: "end_time", sql: "end_time", kind: kTime},
			{json: "completion_start_time", sql: "completion_start_time", kind: kTime},
			{json: "model", sql: "model"},
			{json: "model_parameters", sql: "model_parameters"},
			{json: "prompt_tokens", sql: "prompt_tokens", kind: kUint64},
			{json: "completion_tokens", sql: "completion_tokens", kind: kUint64},
			{json: "total_tokens", sql: "total_tokens", kind: kUint64},
			{json: "input_cost", sql: "input_cost", kind: kFloat},
			{json: "output_cost", sql: "output_cost", kind: kFloat},
			{json: "total_cost", sql: "total_cost", kind: kFloat},
			{json: "level", sql: "level"},
			{json: "status_message", sql: "status_message"},
		}, metadataColumns(), ioColumns()),
		filters: []filter{{param: "trace_id", sql: "trace_id"}, {param: "type", sql: "type"},
			{param: "name", sql: "name"}, {param: "model", sql: "model"}, {param: "level", sql: "level"},
			{param: "parent_observation_id", sql: "parent_observation_id"}},
	}
	scores = resource{
		name: "scores", table: "scores", timeCol: "timestamp",
		rowKey: "toDate(timestamp), id",
		columns: concat([]column{
			{json: "id", sql: "id"},
			{json: "trace_id", sql: "trace_id"},
			{json: "observation_id", sql: "observation_id"},
			{json: "timestamp", sql: "timestamp", kind: kTime},
			{json: "name", sql: "name"},
			{json: "value", sql: "value", kind: kFloat},
			{json: "string_value", sql: "string_value"},
			{json: "data_type", sql: "data_type"},
			{json: "source", sql: "source"},
			{json: "comment", sql: "comment"},
		}, metadataColumns()),
		filters: []filter{{param: "trace_id", sql: "trace_id"}, {param: "observation_id", sql: "observation_id"},
			{param: "name", sql: "name"}, {param: "source", sql: "source"}, {param: "data_type", sql: "data_type"}},
	}
	llmCalls = resource{
		name: "llm-calls", table: "llm_calls", timeCol: "timestamp",
		rowKey: "toDate(timestamp), id",
		columns: concat([]column{
			{json: "id", sql: "id"},
			{json: "trace_id", sql: "trace_id"},
			{json: "timestamp", sql: "timestamp", kind: kTime},
			{json: "endpoint", sql: "endpoint"},
			{json: "model_requested", sql: "model_requested"},
			{json: "model_served", sql: "model_served"},
			{json: "provider", sql: "provider"},
			{json: "status", sql: "status"},
			{json: "status_code", sql: "status_code", kind: kUint16},
			{json: "error", sql: "error"},
			{json: "stream", sql: "stream", kind: kBool},
			{json: "attempts", sql: "attempts", kind: kUint16},
			{json: "user_id", sql: "user_id"},
			{json: "prompt_tokens", sql: "prompt_tokens", kind: kUint64},
			{json: "completion_tokens", sql: "completion_tokens", kind: kUint64},
			{json: "total_tokens", sql: "total_tokens", kind: kUint64},
			{json: "input_cost", sql: "input_cost", kind: kFloat},
			{json: "output_cost", sql: "output_cost", kind: kFloat},
			{json: "total_cost", sql: "total_cost", kind: kFloat},
			{json: "latency_ms", sql: "latency_ms", kind: kFloat},
			{json: "gateway_ms", sql: "gateway_ms", kind: kFloat},
			{json: "provider_ms", sql: "provider_ms", kind: kFloat},
			{json: "ttft_ms", sql: "ttft_ms", kind: kFloat},
			{json: "capture", sql: "capture"},
		}, metadataColumns(), ioColumns(column{json: "attempts_json", sql: "attempts_json", group: groupIO})),
		filters: []filter{{param: "trace_id", sql: "trace_id"}, {param: "model", sql: "model_served"},
			{param: "model_requested", sql: "model_requested"}, {param: "provider", sql: "provider"},
			{param: "status", sql: "status"}, {param: "user_id", sql: "user_id"}, {param: "endpoint", sql: "endpoint"}},
	}
	// findings are guard's (migration 0005). A finding has no id column: its key is the
	// scanned entity, the side, the detector and the span, which findingID joins into one.
	findings = resource{
		name: "findings", table: "findings", timeCol: "timestamp",
		rowKey: "toDate(timestamp), source_type, source_id, side, detector, span_start, span_end",
		columns: []column{
			{json: "id", sql: findingID + " AS id"},
			{json: "source_type", sql: "source_type"},
			{json: "source_id", sql: "source_id"},
			{json: "trace_id", sql: "trace_id"},
			{json: "timestamp", sql: "timestamp", kind: kTime},
			{json: "side", sql: "side"},
			{json: "detector", sql: "detector"},
			{json: "category", sql: "category"},
			{json: "entity", sql: "entity"},
			{json: "severity", sql: "severity"},
			{json: "score", sql: "score", kind: kFloat},
			{json: "span_start", sql: "span_start", kind: kUint32},
			{json: "span_end", sql: "span_end", kind: kUint32},
			{json: "preview", sql: "preview"},
			{json: "action", sql: "action"},
			{json: "reasons", sql: "reasons", kind: kStrings},
			{json: "truncated", sql: "truncated", kind: kBool},
		},
		filters: []filter{{param: "trace_id", sql: "trace_id"}, {param: "detector", sql: "detector"},
			{param: "category", sql: "category"}, {param: "severity", sql: "severity"}, {param: "source_type", sql: "source_type"},
			{param: "source_id", sql: "source_id"}, {param: "side", sql: "side"}, {param: "action", sql: "action"}},
	}
	listResources = []*resource{&traces, &observations, &scores, &llmCalls, &findings}
)

// findingID is a finding's key as one string: source type, source id, side, detector, span.
const findingID = "concat(source_type, '/', source_id, '/', side, '/', detector, '/', toString(span_start), '-', toString(span_end))"

func concat(parts ...[]column) []column {
	var out []column
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// selected are the columns a request's field groups pick.
func (r *resource) selected(groups map[string]bool) []column {
	var out []column
	for _, c := range r.columns {
		if c.group == groupCore || groups[c.group] {
			out = append(out, c)
		}
	}
	return out
}

func (r *resource) hasGroup(g string) bool {
	for _, c := range r.columns {
		if c.group == g {
			return true
		}
	}
	return false
}

func (r *resource) filter(param string) (filter, bool) {
	for _, f := range r.filters {
		if f.param == param {
			return f, true
		}
	}
	return filter{}, false
}

// scanTargets makes one row's scan destinations for cols.
func scanTargets(cols []column) []any {
	out := make([]any, len(cols))
	for i, c := range cols {
		switch c.kind {
		case kString:
			out[i] = new(string)
		case kUint64:
			out[i] = new(uint64)
		case kUint16:
			out[i] = new(uint16)
		case kUint32:
			out[i] = new(uint32)
		case kUint8, kBool:
			out[i] = new(uint8)
		case kFloat:
			out[i] = new(float64)
		case kTime:
			out[i] = new(time.Time)
		case kStrings:
			out[i] = new([]string)
		}
	}
	return out
}

// rowJSON turns scanned values into the JSON object of one row. Metadata's parallel arrays
// become one object; a zero time (stored as the Unix epoch: unknown) becomes null.
func rowJSON(cols []column, vals []any) map[string]any {
	row := make(map[string]any, len(cols))
	var keys, values []string
	for i, c := range cols {
		switch v := vals[i].(type) {
		case *string:
			row[c.json] = *v
		case *uint64:
			row[c.json] = *v
		case *uint16:
			row[c.json] = *v
		case *uint32:
			row[c.json] = *v
		case *uint8:
			if c.kind == kBool {
				row[c.json] = *v != 0
			} else {
				row[c.json] = *v
			}
		case *float64:
			row[c.json] = *v
		case *time.Time:
			row[c.json] = formatTime(*v)
		case *[]string:
			switch c.json {
			case "metadata_keys":
				keys = *v
			case "metadata_values":
				values = *v
			default:
				s := *v
				if s == nil {
					s = []string{}
				}
				row[c.json] = s
			}
		}
	}
	if keys != nil || values != nil || hasMetadata(cols) {
		m := make(map[string]string, len(keys))
		for i, k := range keys {
			if i < len(values) {
				m[k] = values[i]
			}
		}
		row["metadata"] = m
	}
	return row
}

func hasMetadata(cols []column) bool {
	for _, c := range cols {
		if c.json == "metadata_keys" {
			return true
		}
	}
	return false
}

// formatTime writes a time as RFC 3339 in UTC with milliseconds; the epoch (unknown) is null.
func formatTime(t time.Time) any {
	if t.IsZero() || t.Unix() <= 0 {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

func columnList(cols []column) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.sql
	}
	return strings.Join(names, ", ")
}

// jsonList names cols as a subquery over columnList(cols) answers them.
func jsonList(cols []column) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.json
	}
	return strings.Join(names, ", ")
}
