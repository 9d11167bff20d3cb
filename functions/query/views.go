package query

import (
	"fmt"

	"github.com/trustplane/trustplane/clickhouse"
)

// The metrics views: what each can be grouped by, measured and filtered on, and, for the views
// with rollup tables, how a query maps onto them. Every name a request may use is a key here;
// the SQL beside it is a constant.

// dimension is a field a metrics query can group and filter by.
type dimension struct {
	raw      string // expression over the source table
	rollup   string // column of the rollup table; empty when the rollup does not keep it
	highCard bool   // one group per entity: refused as a dimension, allowed as a filter
}

// measure is a numeric field and how each aggregation of it is computed.
type measure struct {
	// raw is the value per source row, for min, max, avg, exact percentiles and histograms
	// over raw rows.
	raw string
	// sumInt is an integer per row that sums the same in any order, divided by scale after
	// summing (cost in nano-USD, latency in microseconds); sumState is its rollup column.
	sumInt, sumState string
	scale            float64
	// avgFromSum: avg is sum / count from the same integers (rollup-served when sumState is).
	avgFromSum bool
	// timing: percentiles are quantilesTiming over timingArg (rows where timingCond holds,
	// when set), the rollup keeping their states in timingState.
	timingArg, timingCond, timingState string
}

// view is one metrics view.
type view struct {
	name       string
	table      string
	timeCol    string
	dims       map[string]dimension
	measures   map[string]measure
	columns    string // the source columns its dimensions and measures read
	countState string // the rollup's count state column; empty: no rollup
	rollup     string // the hourly rollup table
	days       string // its days table
	// narrow is a smaller rollup (with its days table) without some of the rollup's
	// dimensions; a query that uses none of those reads it instead.
	narrow *narrowRollup
}

type narrowRollup struct {
	rollup, days string
	without      []string // the dimensions it lacks
}

func (v *view) hasRollup() bool { return v.rollup != "" }

// countMeasure is the measure every view has: the number of rows.
const countMeasure = "count"

// percentileLevel maps a percentile aggregation to its level and its index in
// clickhouse.RollupQuantiles (1-based, as ClickHouse arrays are).
func percentileLevel(agg string) (float64, int, bool) {
	want := map[string]float64{"p50": 0.5, "p75": 0.75, "p90": 0.9, "p95": 0.95, "p99": 0.99}[agg]
	for i, q := range clickhouse.RollupQuantiles {
		if q == want && want != 0 {
			return q, i + 1, true
		}
	}
	return 0, 0, false
}

const quantileLevels = "0.5, 0.75, 0.9, 0.95, 0.99"

func nanos(col string) string  { return "toUInt64(round(" + col + " * 1000000000))" }
func micros(col string) string { return "toUInt64(round(" + col + " * 1000))" }

func views(f clickhouse.Features) map[string]*view {
	durationMs := "toFloat64((toInt64(toUInt32(end_time)) - toInt64(toUInt32(start_time))) * 1000)"
	if f.DateTime64 {
		durationMs = "toFloat64(toUnixTimestamp64Milli(end_time) - toUnixTimestamp64Milli(start_time))"
	}
	tokens := func(col string) measure {
		return measure{raw: "toFloat64(" + col + ")", sumInt: col, sumState: col, scale: 1, avgFromSum: true}
	}
	return map[string]*view{
		"llm_calls": {
			name: "llm_calls", table: "llm_calls", timeCol: "timestamp",
			columns: "timestamp, id, trace_id, model_served, model_requested, provider, status, user_id, endpoint, prompt_tokens, completion_tokens, total_tokens, total_cost, latency_ms, gateway_ms, provider_ms, ttft_ms",
			rollup:  "llm_calls_hourly", days: "llm_calls_days", countState: "calls",
			narrow: &narrowRollup{rollup: "llm_calls_models_hourly", days: "llm_calls_models_days", without: []string{"user_id"}},
			dims: map[string]dimension{
				"model":           {raw: "model_served", rollup: "model"},
				"provider":        {raw: "provider", rollup: "provider"},
				"status":          {raw: "status", rollup: "status"},
				"user_id":         {raw: "user_id", rollup: "user_id"},
				"model_requested": {raw: "model_requested"},
				"endpoint":        {raw: "endpoint"},
				"trace_id":        {raw: "trace_id", highCard: true},
				"id":              {raw: "id", highCard: true},
			},
			measures: map[string]measure{
				"errors":            {raw: "toFloat64(status != 'success')", sumInt: "toUInt64(status != 'success')", sumState: "errors", scale: 1, avgFromSum: true},
				"prompt_tokens":     tokens("prompt_tokens"),
				"completion_tokens": tokens("completion_tokens"),
				"total_tokens":      tokens("total_tokens"),
				"cost":              {raw: "total_cost", sumInt: nanos("total_cost"), sumState: "cost_nanos", scale: 1e9, avgFromSum: true},
				"latency":           {raw: "latency_ms", sumInt: micros("latency_ms"), sumState: "latency_us", scale: 1e3, avgFromSum: true, timingArg: "latency_ms", timingState: "latency_q"},
				"provider_latency":  {raw: "provider_ms", timingArg: "provider_ms", timingState: "provider_q"},
				"gateway_latency":   {raw: "gateway_ms", timingArg: "gateway_ms", timingState: "gateway_q"},
				"ttft":              {raw: "ttft_ms", timingArg: "ttft_ms", timingCond: "toUInt8(ttft_ms > 0)", timingState: "ttft_q"},
			},
		},
		"observations": {
			name: "observations", table: "observations", timeCol: "start_time",
			columns: "start_time, end_time, id, trace_id, type, model, level, name, prompt_tokens, completion_tokens, total_tokens, total_cost",
			rollup:  "observations_hourly", days: "observations_days", countState: "observations",
			dims: map[string]dimension{
				"type":     {raw: "type", rollup: "type"},
				"model":    {raw: "model", rollup: "model"},
				"level":    {raw: "level", rollup: "level"},
				"name":     {raw: "name"},
				"trace_id": {raw: "trace_id", highCard: true},
				"id":       {raw: "id", highCard: true},
			},
			measures: map[string]measure{
				"errors":            {raw: "toFloat64(level = 'ERROR')", sumInt: "toUInt64(level = 'ERROR')", sumState: "errors", scale: 1, avgFromSum: true},
				"prompt_tokens":     tokens("prompt_tokens"),
				"completion_tokens": tokens("completion_tokens"),
				"total_tokens":      tokens("total_tokens"),
				"cost":              {raw: "total_cost", sumInt: nanos("total_cost"), sumState: "cost_nanos", scale: 1e9, avgFromSum: true},
				"latency":           {raw: durationMs, timingArg: durationMs, timingCond: "toUInt8(end_time > start_time)", timingState: "latency_q"},
			},
		},
		"traces": {
			name: "traces", table: "traces", timeCol: "timestamp",
			columns: "timestamp, id, name, user_id, environment, release, session_id",
			dims: map[string]dimension{
				"name":        {raw: "name"},
				"user_id":     {raw: "user_id"},
				"environment": {raw: "environment"},
				"release":     {raw: "release"},
				"session_id":  {raw: "session_id", highCard: true},
				"id":          {raw: "id", highCard: true},
			},
			measures: map[string]measure{},
		},
		"scores": {
			name: "scores", table: "scores", timeCol: "timestamp",
			columns: "timestamp, id, trace_id, name, source, data_type, value",
			dims: map[string]dimension{
				"name":      {raw: "name"},
				"source":    {raw: "source"},
				"data_type": {raw: "data_type"},
				"trace_id":  {raw: "trace_id", highCard: true},
				"id":        {raw: "id", highCard: true},
			},
			measures: map[string]measure{
				"value": {raw: "value"},
			},
		},
		"findings": {
			name: "findings", table: "findings", timeCol: "timestamp",
			columns: "timestamp, trace_id, source_id, source_type, detector, category, severity, entity, side, action, score",
			rollup:  "findings_hourly", days: "findings_days", countState: "findings",
			dims: map[string]dimension{
				"detector":    {raw: "detector", rollup: "detector"},
				"category":    {raw: "category", rollup: "category"},
				"severity":    {raw: "severity", rollup: "severity"},
				"entity":      {raw: "entity", rollup: "entity"},
				"side":        {raw: "side", rollup: "side"},
				"action":      {raw: "action", rollup: "action"},
				"source_type": {raw: "source_type", rollup: "source_type"},
				"trace_id":    {raw: "trace_id", highCard: true},
				"source_id":   {raw: "source_id", highCard: true},
			},
			measures: map[string]measure{
				// Scores lie in [0, 1]; sums and averages add them in millionths.
				"score": {raw: "score", sumInt: "toUInt64(round(score * 1000000))", sumState: "score_millionths", scale: 1e6, avgFromSum: true},
			},
		},
	}
}

// metricExpr is how one metric is computed on each path: over raw rows (raw), as an aggregate
// state over raw rows for the union with the rollup (state, with its rollup column), and as
// the merge of states (merge). rollupOK says whether the rollup can serve it.
type metricExpr struct {
	raw, state, stateCol, merge string
	rollupOK                    bool
	// hist is set for a histogram, whose SQL depends on the answer's bins (see histogram).
	hist *histogram
}

func (v *view) metricSQL(measureName, agg string) (metricExpr, error) {
	if measureName == countMeasure {
		if agg != "count" {
			return metricExpr{}, fmt.Errorf("the measure count takes only the aggregation count")
		}
		return metricExpr{raw: "toFloat64(count())", state: "countState()", stateCol: v.countState,
			merge: "toFloat64(countMerge(" + v.countState + "))", rollupOK: v.hasRollup()}, nil
	}
	m, ok := v.measures[measureName]
	if !ok {
		return metricExpr{}, fmt.Errorf("unknown measure %.64q for view %s", measureName, v.name)
	}
	scale := func(s string, sc float64) string {
		if sc == 1 {
			return s
		}
		return fmt.Sprintf("%s / %g", s, sc)
	}
	switch agg {
	case "count":
		return metricExpr{}, fmt.Errorf("the aggregation count goes with the measure count")
	case "sum":
		if m.sumInt != "" {
			return metricExpr{raw: scale("toFloat64(sum("+m.sumInt+"))", m.scale), state: "sumState(" + m.sumInt + ")", stateCol: m.sumState,
				merge: scale("toFloat64(sumMerge("+m.sumState+"))", m.scale), rollupOK: v.hasRollup() && m.sumState != ""}, nil
		}
		return metricExpr{raw: "toFloat64(sum(" + m.raw + "))"}, nil
	case "avg":
		if m.avgFromSum {
			return metricExpr{raw: scale("toFloat64(sum("+m.sumInt+")) / toFloat64(count())", m.scale), state: "sumState(" + m.sumInt + ")", stateCol: m.sumState,
				merge: scale("toFloat64(sumMerge("+m.sumState+")) / toFloat64(countMerge("+v.countState+"))", m.scale), rollupOK: v.hasRollup() && m.sumState != ""}, nil
		}
		if m.timingCond != "" {
			return metricExpr{raw: "avgIf(toFloat64(" + m.raw + "), " + m.timingCond + ")"}, nil
		}
		return metricExpr{raw: "avg(toFloat64(" + m.raw + "))"}, nil
	case "histogram":
		return metricExpr{hist: &histogram{value: "toFloat64(" + m.raw + ")", cond: m.timingCond}}, nil
	case "min", "max":
		if m.timingCond != "" {
			return metricExpr{raw: agg + "If(toFloat64(" + m.raw + "), " + m.timingCond + ")"}, nil
		}
		return metricExpr{raw: agg + "(toFloat64(" + m.raw + "))"}, nil
	}
	level, idx, ok := percentileLevel(agg)
	if !ok {
		return metricExpr{}, fmt.Errorf("unknown aggregation %.32q (known: count, sum, avg, min, max, p50, p75, p90, p95, p99, histogram)", agg)
	}
	if m.timingArg != "" {
		fn, args := "quantilesTiming", m.timingArg
		if m.timingCond != "" {
			fn, args = "quantilesTimingIf", m.timingArg+", "+m.timingCond
		}
		return metricExpr{
			raw:      fmt.Sprintf("toFloat64(%s(%s)(%s)[%d])", fn, quantileLevels, args, idx),
			state:    fmt.Sprintf("%sState(%s)(%s)", fn, quantileLevels, args),
			stateCol: m.timingState,
			merge:    fmt.Sprintf("toFloat64(%sMerge(%s)(%s)[%d])", fn, quantileLevels, m.timingState, idx),
			rollupOK: v.hasRollup() && m.timingState != "",
		}, nil
	}
	return metricExpr{raw: fmt.Sprintf("toFloat64(quantileExact(%g)(%s))", level, m.raw)}, nil
}
