package query

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustplane/trustplane/clickhouse"
)

// FuzzCursor: a cursor decodes only if encoding it again gives the same text, and never
// panics.
func FuzzCursor(f *testing.F) {
	f.Add(cursor{TimeMs: 1_700_000_000_000, ID: "trace-1"}.encode())
	f.Add("")
	f.Add("eyJ0IjotMSwiaSI6IngifQ")
	f.Add(strings.Repeat("A", 2000))
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(s)
		if err != nil {
			return
		}
		if c.encode() != s {
			t.Fatalf("%q decodes to %+v, which encodes to %q", s, c, c.encode())
		}
		if c.TimeMs < minTimeMs || c.TimeMs > maxTimeMs || len(c.ID) > maxIDLen {
			t.Fatalf("%q decodes to %+v, out of range", s, c)
		}
	})
}

// FuzzMetricsRequest: any body either is refused with named problems or yields a plan whose
// every name is one of the view's (the SQL is built only from those).
func FuzzMetricsRequest(f *testing.F) {
	for _, q := range metricQueries("llm_calls", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)) {
		f.Add([]byte(q))
	}
	f.Add([]byte(`{"view":"llm_calls","fromTimestamp":"2026-01-01T00:00:00Z","toTimestamp":"2026-01-02T00:00:00Z","filters":[{"column":"model","operator":"in","value":["a'; DROP TABLE x"]}],"metrics":[{"measure":"count","aggregation":"count"}]}`))
	f.Add([]byte(`{"view":"scores","fromTimestamp":"2026-01-01T00:00:00Z","toTimestamp":"2026-01-02T00:00:00Z","metrics":[{"measure":"value","aggregation":"p99"}],"orderBy":[{"field":"p99_value"}]}`))
	f.Add([]byte(`{"view":"llm_calls","fromTimestamp":"2026-01-01T00:00:00Z","toTimestamp":"2026-01-02T00:00:00Z","dimensions":[{"field":"model"}],"metrics":[{"measure":"ttft","aggregation":"histogram"},{"measure":"count","aggregation":"count"}],"orderBy":[{"field":"count_count"}],"config":{"bins":25,"row_limit":3}}`))
	vs := views(clickhouse.Features{})
	now := time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		p, bad := decodeMetrics(body, vs, now, defaultLimits())
		if bad != nil {
			if len(bad.errs) == 0 || bad.Error() == "" {
				t.Fatal("refused without a reason")
			}
			return
		}
		if vs[p.view.name] != p.view {
			t.Fatalf("view %q", p.view.name)
		}
		for _, d := range p.dims {
			if _, ok := p.view.dims[d]; !ok || p.view.dims[d].highCard {
				t.Fatalf("dimension %q", d)
			}
		}
		for _, f := range p.filters {
			if _, ok := p.view.dims[f.column]; !ok {
				t.Fatalf("filter column %q", f.column)
			}
		}
		if !p.from.Before(p.to) || p.limit < 1 || p.limit > defaultLimits().MaxMetricRows || p.bins < 1 || p.bins > maxBins {
			t.Fatalf("range %s..%s, limit %d, bins %d", p.from, p.to, p.limit, p.bins)
		}
		for _, m := range p.metrics {
			if m.expr.hist != nil && (p.rollupFits || slices.ContainsFunc(p.orderBy, func(o string) bool { return strings.HasPrefix(o, m.alias+" ") })) {
				t.Fatalf("histogram %s: rollup %v, order %v", m.alias, p.rollupFits, p.orderBy)
			}
		}
	})
}

// FuzzListQuery: any query string either is refused or yields only known filters, a bounded
// limit and a range within the bounds.
func FuzzListQuery(f *testing.F) {
	f.Add("limit=5&name=x&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z")
	f.Add("tag=a&tag=b")
	f.Add("cursor=" + cursor{TimeMs: 5, ID: "x"}.encode() + "&fields=io,metadata")
	l := defaultLimits()
	now := time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		req, bad := parseList(&traces, q, now, l)
		if bad != nil {
			return
		}
		if req.limit < 1 || req.limit > l.MaxPageSize || !req.from.Before(req.to) || req.to.Sub(req.from) > l.MaxRange {
			t.Fatalf("%q: limit %d, range %s..%s", raw, req.limit, req.from, req.to)
		}
		for _, fv := range req.filters {
			if _, ok := traces.filter(fv.f.param); !ok {
				t.Fatalf("%q: filter %q", raw, fv.f.param)
			}
		}
	})
}
