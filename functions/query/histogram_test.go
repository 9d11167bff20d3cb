package query

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustplane/trustplane/clickhouse"
)

// wantHistogram is the histogram of group in n equal bins from the minimum to the maximum of
// all, each value counted in the bin whose edges hold it (the last bin holds the maximum);
// one bin when the minimum is the maximum, none when all is empty.
func wantHistogram(all, group []float64, n int) []histBin {
	if len(all) == 0 {
		return []histBin{}
	}
	lo, hi := slices.Min(all), slices.Max(all)
	if lo == hi {
		n = 1
	}
	w := (hi - lo) / float64(n)
	out := make([]histBin, n)
	for i := range out {
		out[i] = histBin{Lower: lo + float64(i)*w, Upper: hi}
		if i > 0 {
			out[i-1].Upper = out[i].Lower
		}
	}
	for _, v := range group {
		for i := n - 1; i >= 0; i-- {
			if v >= out[i].Lower {
				out[i].Count++
				break
			}
		}
	}
	return out
}

// histogramOf is a histogram metric of an answer's row.
func histogramOf(t *testing.T, row map[string]any, alias string) []histBin {
	t.Helper()
	raw, err := json.Marshal(row[alias])
	if err != nil {
		t.Fatal(err)
	}
	var out []histBin
	if err := json.Unmarshal(raw, &out); err != nil || out == nil {
		t.Fatalf("%s: %s is not a list of bins: %v", alias, raw, err)
	}
	return out
}

// histCall is an llm call of the histogram tests: its model, latency and time to first token.
type histCall struct {
	model        string
	latency, tft float64
	at           time.Time
}

// histogramCalls are tenant A's calls of one day: latencies from 0.2 to 100.3 with every edge
// of 10 bins between them, and the values just below and above each edge (for 4 of which
// floor((v - 0.2) / width) alone gives the wrong bin), beside random ones; a third without a
// time to first token; and model "flat", with one latency and no time to first token.
func histogramCalls(rng *rand.Rand, day time.Time) []histCall {
	lo, hi := 0.2, 100.3
	vals := []float64{lo, hi}
	w := (hi - lo) / 10
	for i := 1; i < 10; i++ {
		e := lo + float64(i)*w
		vals = append(vals, e, math.Nextafter(e, math.Inf(-1)), math.Nextafter(e, math.Inf(1)))
	}
	for range 300 {
		vals = append(vals, lo+rng.Float64()*(hi-lo))
	}
	var out []histCall
	for i, v := range vals {
		c := histCall{model: []string{"m1", "m2"}[i%2], latency: v, at: day.Add(time.Duration(rng.Int64N(int64(24 * time.Hour)))).Truncate(time.Second)}
		if i%3 != 0 {
			c.tft = rng.Float64() * 800
		}
		out = append(out, c)
	}
	for i := range 5 {
		out = append(out, histCall{model: "flat", latency: 42.5, at: day.Add(time.Duration(i) * time.Hour)})
	}
	return out
}

func writeHistCalls(t *testing.T, s *clickhouse.Store, tenant string, calls []histCall) {
	t.Helper()
	var b clickhouse.Batch
	for i, c := range calls {
		b.LLMCalls = append(b.LLMCalls, clickhouse.LLMCall{
			Envelope: clickhouse.Envelope{TenantID: tenant, ProjectID: apiProject, ID: fmt.Sprintf("hist-%d", i), EventSource: "/test",
				EventID: fmt.Sprintf("hist-ev-%d", i), Version: 1},
			Timestamp: c.at, Endpoint: "chat.completions", ModelRequested: c.model, ModelServed: c.model, Provider: "mock",
			Status: "success", StatusCode: 200, Attempts: 1, UserID: "u", LatencyMs: c.latency, ProviderMs: c.latency, TTFTMs: c.tft, Capture: "none",
		})
	}
	write(t, s, b)
}

// TestHistogram asks for histograms through HTTP (every answer checked against the OpenAPI
// document) over rows it wrote, and checks every edge and count against the histogram
// computed here from those rows: by model and by hour with one set of edges, from 1 to 100
// bins, with other metrics, one value (one bin), no rows (no bins), and another tenant whose
// rows, at the same times with the same ids and a wider range, change nothing.
func TestHistogram(t *testing.T) {
	a := newAPI(t, defaultLimits(), 6)
	s := store(t)
	day := a.start.Add(72 * time.Hour) // after newAPI's rows
	rng := rand.New(rand.NewPCG(6, 15))
	calls := histogramCalls(rng, day)
	writeHistCalls(t, s, a.tenantA, calls)
	theirs := histogramCalls(rng, day)
	theirs[0].latency, theirs[1].latency, theirs[2].tft = 0.001, 1e6, 5e5
	writeHistCalls(t, s, a.tenB, theirs)

	values := func(keep func(histCall) bool, of func(histCall) float64) []float64 {
		var out []float64
		for _, c := range calls {
			if keep(c) {
				out = append(out, of(c))
			}
		}
		return out
	}
	all := func(histCall) bool { return true }
	latency := func(c histCall) float64 { return c.latency }
	tft := func(c histCall) float64 { return c.tft }
	withTFT := func(c histCall) bool { return c.tft > 0 }
	rng24 := fmt.Sprintf(`"fromTimestamp":%q,"toTimestamp":%q`, day.Format(time.RFC3339), day.Add(24*time.Hour).Format(time.RFC3339))
	ask := func(key, q string) metricsAnswer {
		t.Helper()
		status, body := a.do("POST", "/v1/metrics", key, q)
		if status != 200 {
			t.Fatalf("%s: %d %s", q, status, body)
		}
		var ans metricsAnswer
		if err := json.Unmarshal(body, &ans); err != nil {
			t.Fatal(err)
		}
		return ans
	}
	check := func(q string, row map[string]any, alias string, want []histBin) {
		t.Helper()
		if got := histogramOf(t, row, alias); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %s of %v:\n got  %+v\n want %+v", q, alias, row, got, want)
		}
	}

	// By model: one set of edges from all the rows, each model's counts; with a percentile and
	// a count, read from raw rows, which answer them as the rollup does.
	q := `{"view":"llm_calls",` + rng24 + `,"dimensions":[{"field":"model"}],"metrics":[{"measure":"count","aggregation":"count"},
	 {"measure":"latency","aggregation":"histogram"},{"measure":"ttft","aggregation":"histogram"},{"measure":"latency","aggregation":"p95"}],"config":{"bins":10}}`
	ans := ask(a.keyA, q)
	if ans.Meta.Source != "raw" || !strings.Contains(ans.Meta.Why, "histogram_latency") || len(ans.Data) != 3 {
		t.Fatalf("%s: %+v", q, ans)
	}
	plain := ask(a.keyA, `{"view":"llm_calls",`+rng24+`,"dimensions":[{"field":"model"}],"metrics":[{"measure":"count","aggregation":"count"},{"measure":"latency","aggregation":"p95"}]}`)
	if plain.Meta.Source != "rollup" || len(plain.Data) != len(ans.Data) {
		t.Fatalf("without histograms: %+v", plain)
	}
	for i, row := range ans.Data {
		model := row["model"].(string)
		inModel := func(c histCall) bool { return c.model == model }
		check(q, row, "histogram_latency", wantHistogram(values(all, latency), values(inModel, latency), 10))
		check(q, row, "histogram_ttft", wantHistogram(values(withTFT, tft), values(func(c histCall) bool { return inModel(c) && withTFT(c) }, tft), 10))
		if row["count_count"] != float64(len(values(inModel, latency))) || row["count_count"] != plain.Data[i]["count_count"] || row["p95_latency"] != plain.Data[i]["p95_latency"] {
			t.Fatalf("%s: %v, without the histograms %v", q, row, plain.Data[i])
		}
	}
	// By hour, 7 bins (config without row_limit), in the requested order.
	q = `{"view":"llm_calls",` + rng24 + `,"timeDimension":{"granularity":"hour"},"metrics":[{"measure":"latency","aggregation":"histogram"},
	 {"measure":"count","aggregation":"count"}],"orderBy":[{"field":"count_count","direction":"desc"}],"config":{"bins":7}}`
	ans = ask(a.keyA, q)
	if len(ans.Data) != 24 {
		t.Fatalf("%s: %d hours", q, len(ans.Data))
	}
	for _, row := range ans.Data {
		hour, _ := time.Parse(time.RFC3339, row["time"].(string))
		check(q, row, "histogram_latency", wantHistogram(values(all, latency), values(func(c histCall) bool { return c.at.Truncate(time.Hour).Equal(hour) }, latency), 7))
	}
	// From 1 to 100 bins, without dimensions.
	for _, bins := range []int{1, 2, 10, 33, 100} {
		q = fmt.Sprintf(`{"view":"llm_calls",%s,"metrics":[{"measure":"latency","aggregation":"histogram"}],"config":{"bins":%d,"row_limit":5}}`, rng24, bins)
		ans = ask(a.keyA, q)
		if len(ans.Data) != 1 {
			t.Fatalf("%s: %+v", q, ans)
		}
		check(q, ans.Data[0], "histogram_latency", wantHistogram(values(all, latency), values(all, latency), bins))
	}
	// Default bins: 10.
	q = `{"view":"llm_calls",` + rng24 + `,"metrics":[{"measure":"latency","aggregation":"histogram"}]}`
	check(q, ask(a.keyA, q).Data[0], "histogram_latency", wantHistogram(values(all, latency), values(all, latency), 10))
	// One value: one bin. No time to first token: no bins, though the rows are there.
	q = `{"view":"llm_calls",` + rng24 + `,"filters":[{"column":"model","operator":"=","value":"flat"}],
	 "metrics":[{"measure":"latency","aggregation":"histogram"},{"measure":"ttft","aggregation":"histogram"},{"measure":"count","aggregation":"count"}],"config":{"bins":20}}`
	ans = ask(a.keyA, q)
	check(q, ans.Data[0], "histogram_latency", []histBin{{Lower: 42.5, Upper: 42.5, Count: 5}})
	check(q, ans.Data[0], "histogram_ttft", []histBin{})
	// No rows: no bins; by model, no rows either.
	empty := fmt.Sprintf(`"fromTimestamp":%q,"toTimestamp":%q`, day.Add(48*time.Hour).Format(time.RFC3339), day.Add(50*time.Hour).Format(time.RFC3339))
	q = `{"view":"llm_calls",` + empty + `,"metrics":[{"measure":"count","aggregation":"count"},{"measure":"latency","aggregation":"histogram"}]}`
	ans = ask(a.keyA, q)
	if len(ans.Data) != 1 || ans.Data[0]["count_count"] != 0.0 {
		t.Fatalf("%s: %+v", q, ans)
	}
	check(q, ans.Data[0], "histogram_latency", []histBin{})
	q = `{"view":"llm_calls",` + empty + `,"dimensions":[{"field":"model"}],"metrics":[{"measure":"latency","aggregation":"histogram"}]}`
	if ans = ask(a.keyA, q); len(ans.Data) != 0 {
		t.Fatalf("%s: %+v", q, ans)
	}
	// Values 1/8 apart near 1e15 (where that is one unit in the last place): 100 bins asked,
	// 10 given (half a unit wide, 4 units in the last place), each value in its bin.
	next := day.Add(24 * time.Hour)
	var narrow []histCall
	var narrowVals []float64
	for k := range 41 {
		v := 1e15 + float64(k)*0.125
		narrowVals = append(narrowVals, v)
		narrow = append(narrow, histCall{model: "narrow", latency: v, at: next.Add(time.Duration(k) * time.Minute)})
	}
	writeHistCalls(t, s, a.tenantA, narrow)
	q = fmt.Sprintf(`{"view":"llm_calls","fromTimestamp":%q,"toTimestamp":%q,"metrics":[{"measure":"latency","aggregation":"histogram"}],"config":{"bins":100}}`,
		next.Format(time.RFC3339), next.Add(time.Hour).Format(time.RFC3339))
	check(q, ask(a.keyA, q).Data[0], "histogram_latency", wantHistogram(narrowVals, narrowVals, 10))
	// Tenant B's rows (the same ids and times, a wider range) changed none of the above; B's
	// own histogram spans them, so the checks could tell.
	q = `{"view":"llm_calls",` + rng24 + `,"metrics":[{"measure":"latency","aggregation":"histogram"},{"measure":"ttft","aggregation":"histogram"}],"config":{"bins":4}}`
	ans = ask(a.keyB, q)
	if h := histogramOf(t, ans.Data[0], "histogram_latency"); h[0].Lower != 0.001 || h[3].Upper != 1e6 {
		t.Fatalf("tenant B's histogram: %+v", h)
	}
	if h := histogramOf(t, ans.Data[0], "histogram_ttft"); h[3].Upper != 5e5 {
		t.Fatalf("tenant B's histogram: %+v", h)
	}
}

// TestHistogramProblems: bins out of bounds or not an integer, a histogram of count, and an
// order by a histogram are refused with a 400 saying why.
func TestHistogramProblems(t *testing.T) {
	a := newAPI(t, defaultLimits(), 7)
	r := `"fromTimestamp":"2026-10-05T00:00:00Z","toTimestamp":"2026-10-06T00:00:00Z"`
	hist := `"metrics":[{"measure":"latency","aggregation":"histogram"}]`
	for _, tc := range []struct{ body, mention string }{
		{`{"view":"llm_calls",` + r + `,` + hist + `,"config":{"bins":0}}`, "config.bins"},
		{`{"view":"llm_calls",` + r + `,` + hist + `,"config":{"bins":101}}`, "config.bins"},
		{`{"view":"llm_calls",` + r + `,` + hist + `,"config":{"bins":-3,"row_limit":10}}`, "between 1 and 100"},
		{`{"view":"llm_calls",` + r + `,` + hist + `,"config":{"bins":2.5}}`, "body"},
		{`{"view":"llm_calls",` + r + `,` + hist + `,"config":{"bins":"10"}}`, "body"},
		{`{"view":"llm_calls",` + r + `,"metrics":[{"measure":"count","aggregation":"histogram"}]}`, "only the aggregation count"},
		{`{"view":"traces",` + r + `,"metrics":[{"measure":"duration","aggregation":"histogram"}]}`, "unknown measure"},
		{`{"view":"llm_calls",` + r + `,` + hist + `,"orderBy":[{"field":"histogram_latency"}]}`, "histogram_latency is a histogram"},
		{`{"view":"llm_calls",` + r + `,"metrics":[{"measure":"latency","aggregation":"histogram"},{"measure":"latency","aggregation":"histogram"}]}`, "given twice"},
		{`{"view":"llm_calls",` + r + `,"metrics":[{"measure":"latency","aggregation":"p95"}],"config":{"bins":5}}`, "no metric is a histogram"},
	} {
		status, body := a.do("POST", "/v1/metrics", a.keyA, tc.body)
		if status != 400 || !strings.Contains(string(body), tc.mention) {
			t.Errorf("%s: %d %s, want 400 mentioning %q", tc.body, status, body, tc.mention)
		}
	}
}

// TestHistBins: bins narrower than 4 units in the last place, or over a range wider than the
// largest float, are merged; one value is one bin; no rows, none.
func TestHistBins(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		rows   uint64
		bins   int
		want   int
	}{
		{0, 100, 10, 10, 10},
		{0, 100, 10, 100, 100},
		{5, 5, 3, 10, 1},
		{0, 0, 3, 10, 1},
		{0, 100, 0, 10, 0},
		{1e15, 1e15 + 5, 41, 100, 10},
		{1e16, 1e16 + 8, 2, 100, 1},
		{-math.MaxFloat64, math.MaxFloat64, 2, 10, 1},
		{0, math.MaxFloat64, 2, 10, 10},
	} {
		b := newHistBins(tc.lo, tc.hi, tc.rows, tc.bins)
		if b.n != tc.want {
			t.Errorf("%g..%g (%d rows) in %d bins: %d bins, want %d", tc.lo, tc.hi, tc.rows, tc.bins, b.n, tc.want)
		}
		bins := b.bins(nil)
		for i := 1; i < len(bins); i++ {
			if !(bins[i].Lower > bins[i-1].Lower) || bins[i-1].Upper != bins[i].Lower {
				t.Errorf("%g..%g in %d bins: edges %+v", tc.lo, tc.hi, tc.bins, bins)
			}
		}
		if len(bins) > 0 && (bins[0].Lower != tc.lo || bins[len(bins)-1].Upper != tc.hi) {
			t.Errorf("%g..%g in %d bins: edges %+v", tc.lo, tc.hi, tc.bins, bins)
		}
	}
}
