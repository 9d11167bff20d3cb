package query

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/trustplane/trustplane/functions/auth/authclient"
)

// metricsRequest is a metrics query, in the spirit of Langfuse's Metrics API v2.
type metricsRequest struct {
	View          string           `json:"view"`
	Dimensions    []metricsDim     `json:"dimensions"`
	Metrics       []metricsMetric  `json:"metrics"`
	Filters       []metricsFilter  `json:"filters"`
	TimeDimension *metricsTimeDim  `json:"timeDimension"`
	FromTimestamp string           `json:"fromTimestamp"`
	ToTimestamp   string           `json:"toTimestamp"`
	OrderBy       []metricsOrderBy `json:"orderBy"`
	Config        *metricsConfig   `json:"config"`
}

type metricsDim struct {
	Field string `json:"field"`
}

type metricsMetric struct {
	Measure     string `json:"measure"`
	Aggregation string `json:"aggregation"`
}

type metricsFilter struct {
	Column   string          `json:"column"`
	Operator string          `json:"operator"`
	Value    json.RawMessage `json:"value"`
}

type metricsTimeDim struct {
	Granularity string `json:"granularity"`
}

type metricsOrderBy struct {
	Field     string `json:"field"`
	Direction string `json:"direction"`
}

type metricsConfig struct {
	RowLimit *int `json:"row_limit"`
	Bins     *int `json:"bins"`
}

// Bounds of a metrics query beyond the configured ones.
const (
	maxMetricsBody    = 64 << 10
	maxDimensions     = 5
	maxMetrics        = 20
	maxFilters        = 20
	maxFilterValues   = 100
	maxBuckets        = 10000
	defaultMetricRows = 1000
)

var granularities = map[string]time.Duration{
	"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour,
	"week": 7 * 24 * time.Hour, "month": 31 * 24 * time.Hour,
}

// bucketSQL is the start of a time bucket of t (a DateTime('UTC') expression).
func bucketSQL(granularity, t string) string {
	switch granularity {
	case "minute":
		return "toStartOfMinute(" + t + ")"
	case "hour":
		return "toStartOfHour(" + t + ")"
	case "day":
		return "toStartOfDay(" + t + ")"
	case "week":
		return "toDateTime(toMonday(" + t + "), 'UTC')"
	case "month":
		return "toDateTime(toStartOfMonth(" + t + "), 'UTC')"
	}
	return ""
}

// metricsPlan is a checked metrics query, ready to run.
type metricsPlan struct {
	view        *view
	from, to    time.Time
	granularity string // empty: no time dimension
	dims        []string
	metrics     []plannedMetric
	filters     []plannedFilter
	orderBy     []string // SQL ORDER BY terms, over aliases
	limit       int
	bins        int // of each histogram metric
	rollupFits  bool
	rollupWhy   string // why not, when it does not
	// rollup and days are the rollup tables the plan reads when it fits: the view's, or its
	// narrow one when the query uses none of the dimensions that one lacks.
	rollup, days string
}

type plannedMetric struct {
	alias string
	expr  metricExpr
}

type plannedFilter struct {
	column string
	dim    dimension
	op     string
	values []string
}

// strictUnmarshal decodes JSON refusing unknown fields and trailing data.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON value")
	}
	return nil
}

// decodeMetrics decodes and checks a metrics query body. now is the default end of the range.
func decodeMetrics(body []byte, vs map[string]*view, now time.Time, l Limits) (*metricsPlan, *badRequest) {
	b := &badRequest{}
	var req metricsRequest
	if err := strictUnmarshal(body, &req); err != nil {
		b.add("body", "must be a JSON metrics query with only the documented fields: %s", jsonError(err))
		return nil, b
	}
	v, ok := vs[req.View]
	if !ok {
		b.add("view", "unknown view %.64q (known: %s)", req.View, strings.Join(sortedKeys(vs), ", "))
		return nil, b
	}
	p := &metricsPlan{view: v, limit: defaultMetricRows, bins: defaultBins, rollupFits: v.hasRollup()}
	if !v.hasRollup() {
		p.rollupWhy = "the view has no rollup"
	}
	noRollup := func(why string) {
		if p.rollupFits {
			p.rollupFits, p.rollupWhy = false, why
		}
	}
	if req.FromTimestamp == "" || req.ToTimestamp == "" {
		b.add("fromTimestamp", "fromTimestamp and toTimestamp are both required")
	} else {
		p.from, p.to = parseRange(b, req.FromTimestamp, req.ToTimestamp, now, l)
	}
	if len(req.Dimensions) > maxDimensions {
		b.add("dimensions", "at most %d, got %d", maxDimensions, len(req.Dimensions))
	}
	for i, d := range req.Dimensions {
		dim, ok := v.dims[d.Field]
		field := fmt.Sprintf("dimensions[%d].field", i)
		switch {
		case !ok:
			b.add(field, "unknown dimension %.64q for view %s (known: %s)", d.Field, v.name, strings.Join(sortedKeys(v.dims), ", "))
		case dim.highCard:
			b.add(field, "%s has one value per entity (high cardinality) and cannot be a dimension; filter on it, or list the rows instead", d.Field)
		case slices.Contains(p.dims, d.Field):
			b.add(field, "dimension %s given twice", d.Field)
		default:
			p.dims = append(p.dims, d.Field)
			if dim.rollup == "" {
				noRollup("dimension " + d.Field + " is not in the rollup")
			}
		}
	}
	if len(req.Metrics) == 0 || len(req.Metrics) > maxMetrics {
		b.add("metrics", "between 1 and %d metrics, got %d", maxMetrics, len(req.Metrics))
	}
	for i, m := range req.Metrics {
		expr, err := v.metricSQL(m.Measure, m.Aggregation)
		if err != nil {
			b.add(fmt.Sprintf("metrics[%d]", i), "%v", err)
			continue
		}
		alias := m.Aggregation + "_" + m.Measure
		if slices.ContainsFunc(p.metrics, func(pm plannedMetric) bool { return pm.alias == alias }) {
			b.add(fmt.Sprintf("metrics[%d]", i), "metric %s given twice", alias)
			continue
		}
		p.metrics = append(p.metrics, plannedMetric{alias: alias, expr: expr})
		switch {
		case expr.hist != nil:
			noRollup("metric " + alias + " is not in the rollup (a histogram needs each row's value, which the rollup does not keep)")
		case !expr.rollupOK:
			noRollup("metric " + alias + " is not in the rollup")
		}
	}
	if len(req.Filters) > maxFilters {
		b.add("filters", "at most %d, got %d", maxFilters, len(req.Filters))
	}
	for i, f := range req.Filters {
		pf, err := checkFilter(v, f)
		if err != nil {
			b.add(fmt.Sprintf("filters[%d]", i), "%v", err)
			continue
		}
		p.filters = append(p.filters, pf)
		if pf.dim.rollup == "" {
			noRollup("filter column " + pf.column + " is not in the rollup")
		}
	}
	if req.TimeDimension != nil {
		g := req.TimeDimension.Granularity
		if g == "auto" {
			g = autoGranularity(p.to.Sub(p.from))
		}
		step, ok := granularities[g]
		switch {
		case !ok:
			b.add("timeDimension.granularity", "unknown granularity %.32q (known: minute, hour, day, week, month, auto)", req.TimeDimension.Granularity)
		case b.ok() && p.to.Sub(p.from)/step > maxBuckets:
			b.add("timeDimension.granularity", "%s buckets over %s are more than %d; choose a coarser granularity or a shorter range", g, p.to.Sub(p.from), maxBuckets)
		default:
			p.granularity = g
			if g == "minute" {
				noRollup("the rollup is hourly")
			}
		}
	}
	if !p.from.Equal(p.from.Truncate(time.Hour)) || !p.to.Equal(p.to.Truncate(time.Hour)) {
		noRollup("the range does not start and end on whole hours")
	}
	if c := req.Config; c != nil && c.RowLimit != nil {
		if *c.RowLimit < 1 || *c.RowLimit > l.MaxMetricRows {
			b.add("config.row_limit", "must be between 1 and %d, got %d", l.MaxMetricRows, *c.RowLimit)
		} else {
			p.limit = *c.RowLimit
		}
	}
	if c := req.Config; c != nil && c.Bins != nil {
		switch {
		case !slices.ContainsFunc(p.metrics, func(m plannedMetric) bool { return m.expr.hist != nil }):
			b.add("config.bins", "sets a histogram's number of bins, and no metric is a histogram")
		case *c.Bins < 1 || *c.Bins > maxBins:
			b.add("config.bins", "a histogram's number of bins must be between 1 and %d, got %d", maxBins, *c.Bins)
		default:
			p.bins = *c.Bins
		}
	}
	for i, o := range req.OrderBy {
		field := fmt.Sprintf("orderBy[%d]", i)
		dir := strings.ToUpper(o.Direction)
		if dir == "" {
			dir = "ASC"
		}
		if dir != "ASC" && dir != "DESC" {
			b.add(field+".direction", "must be asc or desc, got %.16q", o.Direction)
			continue
		}
		m := slices.IndexFunc(p.metrics, func(pm plannedMetric) bool { return pm.alias == o.Field })
		switch {
		case o.Field == "time" && p.granularity != "":
		case slices.Contains(p.dims, o.Field):
		case m >= 0 && p.metrics[m].expr.hist != nil:
			b.add(field+".field", "%s is a histogram (a list of bins), which has no order; order by another metric", o.Field)
			continue
		case m >= 0:
		default:
			b.add(field+".field", "%.64q is neither time (with a timeDimension), a requested dimension, nor a requested metric (<aggregation>_<measure>)", o.Field)
			continue
		}
		p.orderBy = append(p.orderBy, o.Field+" "+dir)
	}
	if !b.ok() {
		return nil, b
	}
	p.rollup, p.days = v.rollup, v.days
	if n := v.narrow; n != nil && !slices.ContainsFunc(n.without, func(d string) bool {
		return slices.Contains(p.dims, d) || slices.ContainsFunc(p.filters, func(f plannedFilter) bool { return f.column == d })
	}) {
		p.rollup, p.days = n.rollup, n.days
	}
	// Ties are broken by time and every dimension, so that a row limit cuts the same rows on
	// either path.
	if p.granularity != "" {
		p.orderBy = append(p.orderBy, "time ASC")
	}
	for _, d := range p.dims {
		p.orderBy = append(p.orderBy, d+" ASC")
	}
	return p, nil
}

func autoGranularity(d time.Duration) string {
	switch {
	case d <= 6*time.Hour:
		return "minute"
	case d <= 14*24*time.Hour:
		return "hour"
	case d <= 180*24*time.Hour:
		return "day"
	case d <= 3*365*24*time.Hour:
		return "week"
	}
	return "month"
}

func checkFilter(v *view, f metricsFilter) (plannedFilter, error) {
	dim, ok := v.dims[f.Column]
	if !ok {
		return plannedFilter{}, fmt.Errorf("unknown column %.64q for view %s (known: %s)", f.Column, v.name, strings.Join(sortedKeys(v.dims), ", "))
	}
	pf := plannedFilter{column: f.Column, dim: dim, op: strings.ToLower(f.Operator)}
	switch pf.op {
	case "=", "!=":
		var s string
		if err := json.Unmarshal(f.Value, &s); err != nil {
			return plannedFilter{}, fmt.Errorf("operator %s takes a string value", pf.op)
		}
		pf.values = []string{s}
	case "in", "not in":
		if err := json.Unmarshal(f.Value, &pf.values); err != nil || len(pf.values) == 0 || len(pf.values) > maxFilterValues {
			return plannedFilter{}, fmt.Errorf("operator %s takes an array of 1 to %d strings", pf.op, maxFilterValues)
		}
	default:
		return plannedFilter{}, fmt.Errorf("unknown operator %.16q (known: =, !=, in, not in)", f.Operator)
	}
	for _, s := range pf.values {
		if len(s) > maxParamLen || !utf8.ValidString(s) {
			return plannedFilter{}, fmt.Errorf("values must be valid UTF-8 of at most %d bytes", maxParamLen)
		}
	}
	return pf, nil
}

func jsonError(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// metricsAnswer is a metrics query's answer.
type metricsAnswer struct {
	Data []map[string]any `json:"data"`
	Meta metricsMeta      `json:"meta"`
}

type metricsMeta struct {
	// Source is rollup or raw: where the numbers came from (the same numbers either way).
	Source string `json:"source"`
	// RawDays counts the days read from raw rows on the rollup path: days whose rows include
	// a redelivered or updated copy.
	RawDays     int    `json:"raw_days"`
	Granularity string `json:"granularity,omitempty"`
	Truncated   bool   `json:"truncated"`
	Why         string `json:"why,omitempty"`
}

// filterSQL adds p's filters to w, over the raw columns or the rollup's.
func (p *metricsPlan) filterSQL(w *where, rollup bool) {
	for _, f := range p.filters {
		col := f.dim.raw
		if rollup {
			col = f.dim.rollup
		}
		switch f.op {
		case "=":
			w.add(col+" = ?", f.values[0])
		case "!=":
			w.add(col+" != ?", f.values[0])
		case "in":
			w.add("has(?, "+col+")", f.values)
		case "not in":
			w.add("NOT has(?, "+col+")", f.values)
		}
	}
}

// metrics answers a plan, from the rollup when it fits (and raw is false), else from raw rows.
func (r *reader) metrics(ctx context.Context, pr authclient.Principal, p *metricsPlan, raw bool) (metricsAnswer, error) {
	if p.view == nil || (p.view.name == "findings" && !r.findings.Load()) {
		return metricsAnswer{}, errNotFound
	}
	var (
		sql   string
		args  []any
		hists map[string]histBins
		err   error
		meta  = metricsMeta{Granularity: p.granularity}
	)
	if p.rollupFits && !raw {
		dirty, err := r.rawDays(ctx, pr, p)
		if err != nil {
			return metricsAnswer{}, err
		}
		sql, args = r.rollupSQL(pr, p, dirty)
		meta.Source, meta.RawDays = "rollup", len(dirty)
	} else {
		if hists, err = r.histograms(ctx, pr, p); err != nil {
			return metricsAnswer{}, err
		}
		sql, args = r.rawSQL(pr, p, hists)
		meta.Source, meta.Why = "raw", p.rollupWhy
		if raw && p.rollupFits {
			meta.Why = "asked for raw rows"
		}
	}
	rows, err := r.metricRows(ctx, p, sql, args, hists)
	if err != nil {
		return metricsAnswer{}, err
	}
	if len(rows) > p.limit {
		rows, meta.Truncated = rows[:p.limit], true
	}
	return metricsAnswer{Data: rows, Meta: meta}, nil
}

// rawDays are the days of the range whose rows include copies (more rows inserted than
// distinct ids): on those days the rollup counted a row more than once, so they are read from
// raw rows with FINAL instead. Counting a day's distinct ids merges every id it has, which
// costs far more than the rest of a dashboard; so a day's verdict is kept, with the number of
// rows it was reached for, and reused while the day's count of rows is unchanged (rows only
// add up: an unchanged count means nothing was inserted) and for at most dayVerdictTTL, which
// bounds how long a day emptied by retention and filled again to the same count could keep an
// old verdict.
func (r *reader) rawDays(ctx context.Context, pr authclient.Principal, p *metricsPlan) ([]uint16, error) {
	fromSQL, fromArg := r.timeParam(p.from)
	toSQL, toArg := r.timeParam(p.to)
	where := "tenant_id = ? AND project_id = ? AND day >= toDate(" + fromSQL + ") AND day <= toDate(" + toSQL + ")"
	args := []any{pr.Tenant, pr.Project, fromArg, toArg}
	counts, err := r.dayRows(ctx, "SELECT toUInt16(day), countMerge(rows), toUInt8(0) FROM "+r.table(p.days)+" WHERE "+where+" GROUP BY day", args)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var dirty, unknown []uint16
	r.mu.Lock()
	for day, c := range counts {
		k := dayKey{p.days, pr.Tenant, pr.Project, day}
		if v, ok := r.verdicts[k]; ok && v.rows == c.rows && now.Sub(v.at) < dayVerdictTTL {
			if v.dirty {
				dirty = append(dirty, day)
			}
			continue
		}
		unknown = append(unknown, day)
	}
	r.mu.Unlock()
	if len(unknown) > 0 {
		checked, err := r.dayRows(ctx, "SELECT toUInt16(day), countMerge(rows), toUInt8(countMerge(rows) != uniqExactMerge(ids)) FROM "+r.table(p.days)+
			" WHERE "+where+" AND has(?, toUInt16(day)) GROUP BY day", append(args, unknown))
		if err != nil {
			return nil, err
		}
		r.mu.Lock()
		if len(r.verdicts) > maxDayVerdicts {
			clear(r.verdicts)
		}
		for day, c := range checked {
			r.verdicts[dayKey{p.days, pr.Tenant, pr.Project, day}] = dayVerdict{rows: c.rows, dirty: c.dirty, at: now}
			if c.dirty {
				dirty = append(dirty, day)
			}
		}
		r.mu.Unlock()
	}
	slices.Sort(dirty)
	return dirty, nil
}

const (
	dayVerdictTTL  = time.Minute
	maxDayVerdicts = 100_000
)

type dayKey struct {
	days, tenant, project string
	day                   uint16
}

type dayVerdict struct {
	rows  uint64
	dirty bool
	at    time.Time
}

type dayCount struct {
	rows  uint64
	dirty bool
}

func (r *reader) dayRows(ctx context.Context, sql string, args []any) (map[uint16]dayCount, error) {
	rs, err := r.conn.Query(r.ctx(ctx), sql, args...)
	if err != nil {
		return nil, classify(err)
	}
	defer rs.Close()
	out := map[uint16]dayCount{}
	for rs.Next() {
		var d uint16
		var n uint64
		var dirty uint8
		if err := rs.Scan(&d, &n, &dirty); err != nil {
			return nil, err
		}
		out[d] = dayCount{rows: n, dirty: dirty != 0}
	}
	return out, classify(rs.Err())
}

func (p *metricsPlan) selectList(bucket string, dimCol func(string) string, metric func(plannedMetric) string) []string {
	var out []string
	if p.granularity != "" {
		out = append(out, bucketSQL(p.granularity, bucket)+" AS time")
	}
	for _, d := range p.dims {
		out = append(out, dimCol(d))
	}
	for _, m := range p.metrics {
		out = append(out, metric(m)+" AS "+m.alias)
	}
	return out
}

func (p *metricsPlan) groupBy() string {
	var g []string
	if p.granularity != "" {
		g = append(g, "time")
	}
	g = append(g, p.dims...)
	if len(g) == 0 {
		return ""
	}
	return " GROUP BY " + strings.Join(g, ", ")
}

func (p *metricsPlan) tail() string {
	return " ORDER BY " + strings.Join(p.orderBy, ", ") + " LIMIT ?"
}

func (p *metricsPlan) orderTail() string {
	if len(p.orderBy) == 0 {
		return " LIMIT ?"
	}
	return p.tail()
}

// rawFrom is the source table's rows for a plan: FINAL over the key's own columns (tenant and
// project from the key, the range's days; see list for why nothing else goes under FINAL),
// then the exact range and the filters. It returns the FROM ... WHERE text and its arguments.
func (r *reader) rawFrom(pr authclient.Principal, p *metricsPlan, onlyDays []uint16) (string, []any) {
	fromSQL, fromArg := r.timeParam(p.from)
	toSQL, toArg := r.timeParam(p.to)
	inner := &where{}
	inner.add("tenant_id = ?", pr.Tenant)
	inner.add("project_id = ?", pr.Project)
	inner.add("toDate("+p.view.timeCol+") >= toDate("+fromSQL+")", fromArg)
	inner.add("toDate("+p.view.timeCol+") <= toDate("+toSQL+")", toArg)
	if onlyDays != nil {
		inner.add("toUInt16(toDate("+p.view.timeCol+")) IN ?", daySet(onlyDays))
	}
	w := &where{}
	w.add(p.view.timeCol+" >= "+fromSQL, fromArg)
	w.add(p.view.timeCol+" < "+toSQL, toArg)
	p.filterSQL(w, false)
	return fmt.Sprintf("(SELECT %s FROM %s FINAL WHERE %s) WHERE %s", p.view.columns, r.table(p.view.table), inner, w),
		append(inner.args, w.args...)
}

func dimAs(expr, name string) string {
	if expr == name {
		return name
	}
	return expr + " AS " + name
}

// rawSQL reads a plan from raw rows; hists are the bins of its histogram metrics.
func (r *reader) rawSQL(pr authclient.Principal, p *metricsPlan, hists map[string]histBins) (string, []any) {
	var args []any
	sel := p.selectList("toDateTime("+p.view.timeCol+", 'UTC')",
		func(d string) string { return dimAs(p.view.dims[d].raw, d) },
		func(m plannedMetric) string {
			if m.expr.hist == nil {
				return m.expr.raw
			}
			sql, binArgs := m.expr.hist.countsSQL(m.alias, hists[m.alias])
			args = append(args, binArgs...)
			return sql
		})
	from, fromArgs := r.rawFrom(pr, p, nil)
	sql := "SELECT " + strings.Join(sel, ", ") + " FROM " + from + p.groupBy() + p.orderTail()
	return sql, append(append(args, fromArgs...), p.limit+1)
}

// rollupSQL reads the hourly rollup for the clean days of the range and the raw rows (FINAL)
// of the days in dirty, as aggregate states, and merges them.
func (r *reader) rollupSQL(pr authclient.Principal, p *metricsPlan, dirty []uint16) (string, []any) {
	states := map[string]string{}
	for _, m := range p.metrics {
		states[m.expr.stateCol] = m.expr.state
		if strings.Contains(m.expr.merge, "countMerge("+p.view.countState+")") {
			states[p.view.countState] = "countState()"
		}
	}
	cols := sortedKeys(states)
	var dimsRollup, dimsRaw []string
	for _, d := range p.dims {
		dimsRollup = append(dimsRollup, dimAs(p.view.dims[d].rollup, d))
		dimsRaw = append(dimsRaw, dimAs(p.view.dims[d].raw, d))
	}
	fromSQL, fromArg := r.timeParam(p.from)
	toSQL, toArg := r.timeParam(p.to)
	w := &where{}
	w.add("tenant_id = ?", pr.Tenant)
	w.add("project_id = ?", pr.Project)
	w.add("hour >= "+fromSQL, fromArg)
	w.add("hour < "+toSQL, toArg)
	p.filterSQL(w, true)
	if len(dirty) > 0 {
		w.add("NOT has(?, toUInt16(toDate(hour)))", dirty)
	}
	inner := "SELECT " + strings.Join(append(append([]string{"hour"}, dimsRollup...), cols...), ", ") +
		" FROM " + r.table(p.rollup) + " WHERE " + w.String()
	args := w.args
	if len(dirty) > 0 {
		from, rawArgs := r.rawFrom(pr, p, dirty)
		var stateSel []string
		for _, c := range cols {
			stateSel = append(stateSel, states[c]+" AS "+c)
		}
		group := append([]string{"hour"}, p.dims...)
		inner += " UNION ALL SELECT " + strings.Join(append(append([]string{"toStartOfHour(toDateTime(" + p.view.timeCol + ", 'UTC')) AS hour"}, dimsRaw...), stateSel...), ", ") +
			" FROM " + from + " GROUP BY " + strings.Join(group, ", ")
		args = append(args, rawArgs...)
	}
	sel := p.selectList("hour", func(d string) string { return d }, func(m plannedMetric) string { return m.expr.merge })
	sql := "SELECT " + strings.Join(sel, ", ") + " FROM (" + inner + ")" + p.groupBy() + p.orderTail()
	return sql, append(args, p.limit+1)
}

// daySet binds day numbers as a tuple, for IN over the sorting key's day.
func daySet(days []uint16) ch.GroupSet {
	g := ch.GroupSet{Value: make([]any, len(days))}
	for i, d := range days {
		g.Value[i] = int(d)
	}
	return g
}

// metricRows scans a metrics statement: time, dimensions (strings), metrics (Float64, or for a
// histogram its counts per bin of hists, Array(UInt64)).
func (r *reader) metricRows(ctx context.Context, p *metricsPlan, sql string, args []any, hists map[string]histBins) ([]map[string]any, error) {
	rs, err := r.conn.Query(r.ctx(ctx), sql, args...)
	if err != nil {
		return nil, classify(err)
	}
	defer rs.Close()
	out := []map[string]any{}
	for rs.Next() {
		var t time.Time
		var targets []any
		if p.granularity != "" {
			targets = append(targets, &t)
		}
		dims := make([]string, len(p.dims))
		for i := range dims {
			targets = append(targets, &dims[i])
		}
		vals := make([]float64, len(p.metrics))
		counts := make([][]uint64, len(p.metrics))
		for i, m := range p.metrics {
			if m.expr.hist != nil {
				targets = append(targets, &counts[i])
			} else {
				targets = append(targets, &vals[i])
			}
		}
		if err := rs.Scan(targets...); err != nil {
			return nil, err
		}
		row := make(map[string]any, len(targets))
		if p.granularity != "" {
			row["time"] = t.UTC().Format(time.RFC3339)
		}
		for i, d := range p.dims {
			row[d] = dims[i]
		}
		for i, m := range p.metrics {
			if m.expr.hist != nil {
				row[m.alias] = hists[m.alias].bins(counts[i])
				continue
			}
			if math.IsNaN(vals[i]) || math.IsInf(vals[i], 0) {
				row[m.alias] = nil
			} else {
				row[m.alias] = vals[i]
			}
		}
		out = append(out, row)
	}
	return out, classify(rs.Err())
}
