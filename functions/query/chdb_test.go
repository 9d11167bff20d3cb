package query

import (
	"context"

	"encoding/json"
	"fmt"
	ch "github.com/ClickHouse/clickhouse-go/v2"
	"math"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/clickhouse/chdbtest"
	"github.com/trustplane/trustplane/clickhouse/chtest/gensql"
	"github.com/trustplane/trustplane/functions/auth/authclient"
)

// chdbConn runs the reader's statements on chDB (ClickHouse 26.9): the same statement text,
// its bound arguments written in as literals the way clickhouse-go binds them.
type chdbConn struct {
	e    *chdbtest.Engine
	seen *[]string // every statement run, for the record
}

func literal(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'", nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case float64:
		// As clickhouse-go binds a float (Go's shortest text reads back to the same bits on
		// both servers).
		return "cast(" + strconv.FormatFloat(v, 'g', -1, 64) + ", 'Float64')", nil
	case []string:
		parts := make([]string, len(v))
		for i, s := range v {
			parts[i], _ = literal(s)
		}
		return "[" + strings.Join(parts, ", ") + "]", nil
	case ch.GroupSet:
		parts := make([]string, len(v.Value))
		for i, x := range v.Value {
			var err error
			if parts[i], err = literal(x); err != nil {
				return "", err
			}
		}
		return "(" + strings.Join(parts, ", ") + ")", nil
	case []uint16:
		parts := make([]string, len(v))
		for i, d := range v {
			parts[i] = strconv.Itoa(int(d))
		}
		return "[" + strings.Join(parts, ", ") + "]", nil
	}
	return "", fmt.Errorf("chdbConn: no literal for %T", v)
}

func (c chdbConn) Query(_ context.Context, sql string, args ...any) (rows, error) {
	var b strings.Builder
	for _, part := range strings.SplitAfter(sql, "?") {
		if !strings.HasSuffix(part, "?") {
			b.WriteString(part)
			continue
		}
		if len(args) == 0 {
			return nil, fmt.Errorf("chdbConn: more ? than arguments in %s", sql)
		}
		lit, err := literal(args[0])
		if err != nil {
			return nil, err
		}
		args = args[1:]
		b.WriteString(strings.TrimSuffix(part, "?") + lit)
	}
	if len(args) > 0 {
		return nil, fmt.Errorf("chdbConn: %d arguments left over in %s", len(args), sql)
	}
	*c.seen = append(*c.seen, b.String())
	res, err := c.e.Query(b.String())
	if err != nil {
		return nil, err
	}
	return &chdbRows{res: res, i: -1}, nil
}

type chdbRows struct {
	res chdbtest.Result
	i   int
}

func (r *chdbRows) Next() bool   { r.i++; return r.i < len(r.res.Data) }
func (r *chdbRows) Err() error   { return nil }
func (r *chdbRows) Close() error { return nil }

// Scan converts JSONCompact values into the destinations the reader uses.
func (r *chdbRows) Scan(dest ...any) error {
	row := r.res.Data[r.i]
	if len(row) != len(dest) {
		return fmt.Errorf("chdbRows: %d columns, %d destinations", len(row), len(dest))
	}
	for i, raw := range row {
		var s string
		isString := json.Unmarshal(raw, &s) == nil
		num := func() (string, error) {
			if isString {
				return s, nil
			}
			return string(raw), nil
		}
		switch d := dest[i].(type) {
		case *string:
			if !isString {
				return fmt.Errorf("column %d: %s is not a string", i, raw)
			}
			*d = s
		case *uint64, *uint32, *uint16, *uint8:
			n, _ := num()
			u, err := strconv.ParseUint(n, 10, 64)
			if err != nil {
				return fmt.Errorf("column %d: %w", i, err)
			}
			reflect.ValueOf(d).Elem().SetUint(u)
		case *float64:
			n, _ := num()
			if n == "" || n == "null" {
				n = "nan" // how JSONCompact writes NaN
			}
			f, err := strconv.ParseFloat(n, 64)
			if err != nil {
				return fmt.Errorf("column %d: %w", i, err)
			}
			*d = f
		case *time.Time:
			t, err := time.ParseInLocation("2006-01-02 15:04:05.999999999", s, time.UTC)
			if err != nil {
				return fmt.Errorf("column %d: %w", i, err)
			}
			*d = t
		case *[]string:
			if err := json.Unmarshal(raw, d); err != nil {
				return fmt.Errorf("column %d: %w", i, err)
			}
		case *[]uint64:
			// Numbers, or strings where 64-bit integers are quoted.
			var elems []json.RawMessage
			if err := json.Unmarshal(raw, &elems); err != nil {
				return fmt.Errorf("column %d: %w", i, err)
			}
			*d = make([]uint64, len(elems))
			for j, e := range elems {
				u, err := strconv.ParseUint(strings.Trim(string(e), `"`), 10, 64)
				if err != nil {
					return fmt.Errorf("column %d: %w", i, err)
				}
				(*d)[j] = u
			}
		default:
			return fmt.Errorf("chdbRows: no scan into %T", d)
		}
	}
	return nil
}

// twoVersions has the same rows in ClickHouse 18.16 (the test server) and 26.9 (chDB), and a
// reader on each.
type twoVersions struct {
	old, cur  *reader
	seen      []string
	from, to  time.Time
	principal authclient.Principal
}

func newTwoVersions(t *testing.T, tenant string) *twoVersions {
	t.Helper()
	s := store(t)
	e := chdbtest.Start(t)
	f, err := e.Migrate(clickhouse.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tv := &twoVersions{from: time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC),
		principal: authclient.Principal{KeyID: "k", Tenant: tenant, Project: "p", Scopes: []authclient.Scope{authclient.ScopeQuery}}}
	tv.to = tv.from.Add(72 * time.Hour)
	base := gensql.Spec{Tenant: tenant, Project: "p", Start: tv.from, Span: 72 * time.Hour}
	with := func(first, n, version, salt uint64) gensql.Spec {
		s := base
		s.First, s.N, s.Version, s.Salt = first, n, version, salt
		return s
	}
	stmts := []string{
		gensql.LLMCalls(with(0, 20000, 1, 0)), gensql.Observations(with(0, 10000, 1, 0)),
		gensql.Traces(with(0, 2000, 1, 0)), gensql.Scores(with(0, 3000, 1, 0)),
		// A redelivery (same rows again) and updates (same ids, other values, later version).
		gensql.LLMCalls(with(500, 300, 1, 0)), gensql.Observations(with(200, 100, 1, 0)),
		gensql.LLMCalls(with(4000, 400, 2, 1)), gensql.Observations(with(3000, 200, 2, 1)),
		gensql.Traces(with(10, 50, 2, 1)), gensql.Scores(with(10, 50, 2, 1)),
		gensql.Findings(with(0, 2000, 1, 0)), gensql.Findings(with(100, 50, 1, 0)),
	}
	// The other tenant's rows, which neither reader may count.
	other := base
	other.Tenant, other.N = tenant+"-other", 2000
	stmts = append(stmts, gensql.LLMCalls(other), gensql.Traces(other))
	for _, st := range stmts {
		if err := s.Conn().Exec(context.Background(), st); err != nil {
			t.Fatal(err)
		}
		if err := e.Exec(st); err != nil {
			t.Fatal(err)
		}
	}
	tv.old = testReader(t, s)
	tv.cur = newReaderOn(chdbConn{e: e, seen: &tv.seen}, clickhouse.DefaultDatabase, f, defaultLimits())
	if err := tv.cur.refreshFindings(context.Background()); err != nil {
		t.Fatal(err)
	}
	return tv
}

// sameJSON compares two answers; floats agree to 1e-9 relative (a raw avg or sum of Float64
// may add in another order on another version; rollup-served numbers are integers or
// quantilesTiming and agree exactly, which answerBothWays checks).
func sameJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	var va, vb any
	_ = json.Unmarshal(ja, &va)
	_ = json.Unmarshal(jb, &vb)
	return closeEnough(va, vb)
}

func closeEnough(a, b any) bool {
	switch a := a.(type) {
	case float64:
		b, ok := b.(float64)
		return ok && (a == b || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)))
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !closeEnough(a[i], b[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k := range a {
			if !closeEnough(a[k], b[k]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// TestSameAnswersOnClickHouse18And26 runs every kind of statement the query function issues
// (lists with filters and cursors, trace details, metrics from rollups and from raw rows, the
// days check) on 18.16 and 26.9 over the same rows, and requires the same answers; on 26.9 the
// rollup answers as raw rows do, as on 18.16.
func TestSameAnswersOnClickHouse18And26(t *testing.T) {
	tv := newTwoVersions(t, "xv")
	ctx := context.Background()
	p := tv.principal
	r := fmt.Sprintf(`"fromTimestamp":%q,"toTimestamp":%q`, tv.from.Format(time.RFC3339), tv.to.Format(time.RFC3339))
	vs := views(tv.cur.features)
	rawOnly := []string{
		`{"view":"llm_calls",` + r + `,"dimensions":[{"field":"model_requested"}],"timeDimension":{"granularity":"minute"},"metrics":[{"measure":"count","aggregation":"count"}],"config":{"row_limit":50}}`,
		`{"view":"llm_calls",` + r + `,"dimensions":[{"field":"endpoint"}],"metrics":[{"measure":"cost","aggregation":"max"},{"measure":"latency","aggregation":"min"},{"measure":"cost","aggregation":"p90"},{"measure":"ttft","aggregation":"avg"}]}`,
		`{"view":"observations",` + r + `,"dimensions":[{"field":"name"}],"timeDimension":{"granularity":"auto"},"metrics":[{"measure":"latency","aggregation":"avg"},{"measure":"latency","aggregation":"max"}]}`,
		`{"view":"traces",` + r + `,"dimensions":[{"field":"name"},{"field":"environment"}],"timeDimension":{"granularity":"day"},"metrics":[{"measure":"count","aggregation":"count"}]}`,
		`{"view":"findings",` + r + `,"dimensions":[{"field":"severity"},{"field":"category"}],"timeDimension":{"granularity":"day"},"metrics":[{"measure":"count","aggregation":"count"},{"measure":"score","aggregation":"p90"}]}`,
		`{"view":"scores",` + r + `,"dimensions":[{"field":"name"},{"field":"source"}],"metrics":[{"measure":"value","aggregation":"avg"},{"measure":"value","aggregation":"p50"},{"measure":"count","aggregation":"count"}]}`,
		`{"view":"llm_calls","fromTimestamp":"2026-09-01T00:30:00Z","toTimestamp":"2026-09-02T10:00:00Z","dimensions":[{"field":"model"}],"timeDimension":{"granularity":"hour"},"metrics":[{"measure":"count","aggregation":"count"},{"measure":"latency","aggregation":"p95"}]}`,
		// Histograms: the range statement, then the bins, beside other metrics; one bin (one
		// value), and none (no rows).
		`{"view":"llm_calls",` + r + `,"dimensions":[{"field":"model"}],"timeDimension":{"granularity":"day"},"metrics":[{"measure":"latency","aggregation":"histogram"},{"measure":"ttft","aggregation":"histogram"},{"measure":"cost","aggregation":"histogram"},{"measure":"count","aggregation":"count"},{"measure":"latency","aggregation":"p95"}],"config":{"bins":20}}`,
		`{"view":"observations",` + r + `,"dimensions":[{"field":"type"}],"metrics":[{"measure":"latency","aggregation":"histogram"},{"measure":"prompt_tokens","aggregation":"histogram"}],"config":{"bins":100}}`,
		// The longest statement: every measure's histogram in 100 bins.
		`{"view":"llm_calls",` + r + `,"dimensions":[{"field":"provider"}],"timeDimension":{"granularity":"day"},"metrics":[` + everyHistogram(vs["llm_calls"]) + `],"config":{"bins":100}}`,
		`{"view":"scores",` + r + `,"dimensions":[{"field":"name"}],"metrics":[{"measure":"value","aggregation":"histogram"}],"config":{"bins":1}}`,
		`{"view":"findings",` + r + `,"dimensions":[{"field":"severity"}],"metrics":[{"measure":"score","aggregation":"histogram"}],"orderBy":[{"field":"severity","direction":"desc"}]}`,
		`{"view":"llm_calls",` + r + `,"filters":[{"column":"status","operator":"=","value":"success"}],"metrics":[{"measure":"errors","aggregation":"histogram"}]}`,
		`{"view":"llm_calls","fromTimestamp":"2026-08-01T00:00:00Z","toTimestamp":"2026-08-02T00:00:00Z","metrics":[{"measure":"count","aggregation":"count"},{"measure":"latency","aggregation":"histogram"}]}`,
	}
	rollupServed := append(metricQueries("llm_calls", tv.from, tv.to), metricQueries("observations", tv.from, tv.to)...)
	rollupServed = append(rollupServed, metricQueries("findings", tv.from, tv.to)...)
	for _, q := range append(rollupServed, rawOnly...) {
		plan, bad := decodeMetrics([]byte(q), vs, time.Now(), defaultLimits())
		if bad != nil {
			t.Fatalf("%s: %v", q, bad)
		}
		if plan.rollupFits {
			answerBothWays(t, tv.old, p, q)
			answerBothWays(t, tv.cur, p, q)
		}
		planOld, _ := decodeMetrics([]byte(q), views(tv.old.features), time.Now(), defaultLimits())
		for _, raw := range []bool{false, true} {
			a, err := tv.old.metrics(ctx, p, planOld, raw)
			if err != nil {
				t.Fatalf("18.16: %s: %v", q, err)
			}
			b, err := tv.cur.metrics(ctx, p, plan, raw)
			if err != nil {
				t.Fatalf("26.9: %s: %v", q, err)
			}
			if len(a.Data) == 0 || !sameJSON(a, b) {
				ja, _ := json.Marshal(a)
				jb, _ := json.Marshal(b)
				t.Fatalf("%s (raw %v):\n18.16: %.3000s\n26.9:  %.3000s", q, raw, ja, jb)
			}
		}
	}
	// Lists, every page, with and without filters and field groups.
	for _, tc := range []struct {
		res    *resource
		params string
	}{
		{&traces, "limit=97&fields=io,metadata"},
		{&traces, "limit=50&environment=prod&tag=a"},
		{&observations, "limit=400&fields=metadata"},
		{&observations, "limit=100&type=GENERATION&level=ERROR"},
		{&llmCalls, "limit=500&fields=io"},
		{&llmCalls, "limit=77&status=error&provider=openai"},
		{&scores, "limit=250&name=quality"},
		{&findings, "limit=300"},
		{&findings, "limit=40&severity=high&side=input"},
	} {
		pagesOf := func(rd *reader) []map[string]any {
			var all []map[string]any
			params := tc.params + "&from=" + tv.from.Format(time.RFC3339) + "&to=" + tv.to.Format(time.RFC3339)
			for n := 0; ; n++ {
				q, _ := url.ParseQuery(params)
				req, bad := parseList(tc.res, q, time.Now(), defaultLimits())
				if bad != nil {
					t.Fatalf("%s?%s: %v", tc.res.name, params, bad)
				}
				pg, err := rd.list(ctx, p, tc.res, req)
				if err != nil {
					t.Fatalf("%s?%s: %v", tc.res.name, params, err)
				}
				all = append(all, pg.Data...)
				if pg.NextCursor == "" || n > 500 {
					return all
				}
				params = tc.params + "&from=" + tv.from.Format(time.RFC3339) + "&to=" + tv.to.Format(time.RFC3339) + "&cursor=" + pg.NextCursor
			}
		}
		a, b := pagesOf(tv.old), pagesOf(tv.cur)
		if len(a) != len(b) {
			seen := map[string]int{}
			for _, r := range a {
				seen[fmt.Sprint(r["id"], r[tc.res.timeCol])]++
			}
			for _, r := range b {
				seen[fmt.Sprint(r["id"], r[tc.res.timeCol])]--
			}
			for k, n := range seen {
				if n != 0 {
					t.Logf("%s: %d", k, n)
				}
			}
		}
		if len(a) == 0 || !sameJSON(a, b) {
			t.Fatalf("%s?%s: 18.16 lists %d rows, 26.9 %d, or they differ", tc.res.name, tc.params, len(a), len(b))
		}
	}
	for _, id := range []string{"trace-0", "trace-15", "trace-450", "trace-1999", "no-such-trace"} {
		a, errA := tv.old.detail(ctx, p, id, 1000)
		b, errB := tv.cur.detail(ctx, p, id, 1000)
		if (errA == nil) != (errB == nil) || !sameJSON(a, b) {
			t.Fatalf("trace %s: 18.16 %v %v, 26.9 %v %v", id, a, errA, b, errB)
		}
	}
	t.Logf("%d statements ran on ClickHouse 26.9", len(tv.seen))
}

// everyHistogram is a metrics list with a histogram of each of v's measures.
func everyHistogram(v *view) string {
	var ms []string
	for _, m := range sortedKeys(v.measures) {
		ms = append(ms, `{"measure":"`+m+`","aggregation":"histogram"}`)
	}
	return strings.Join(ms, ",")
}
