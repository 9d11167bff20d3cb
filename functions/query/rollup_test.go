package query

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/functions/auth/authclient"
)

// metricQueries are the metrics queries the equality tests ask both ways: every rollup
// dimension, measure and aggregation, each granularity the rollup serves, filters, order and
// limits.
func metricQueries(view string, from, to time.Time) []string {
	r := fmt.Sprintf(`"fromTimestamp":%q,"toTimestamp":%q`, from.Format(time.RFC3339), to.Format(time.RFC3339))
	if view == "findings" {
		return []string{
			`{"view":"findings",` + r + `,"metrics":[{"measure":"count","aggregation":"count"},{"measure":"score","aggregation":"sum"},{"measure":"score","aggregation":"avg"}]}`,
			`{"view":"findings",` + r + `,"dimensions":[{"field":"detector"},{"field":"category"},{"field":"severity"}],"timeDimension":{"granularity":"hour"},
			 "metrics":[{"measure":"count","aggregation":"count"},{"measure":"score","aggregation":"avg"}]}`,
			`{"view":"findings",` + r + `,"dimensions":[{"field":"entity"},{"field":"side"},{"field":"action"},{"field":"source_type"}],"timeDimension":{"granularity":"day"},
			 "metrics":[{"measure":"count","aggregation":"count"},{"measure":"score","aggregation":"sum"}]}`,
			`{"view":"findings",` + r + `,"dimensions":[{"field":"detector"}],"timeDimension":{"granularity":"week"},
			 "filters":[{"column":"side","operator":"!=","value":"output"},{"column":"severity","operator":"in","value":["high","medium"]}],
			 "metrics":[{"measure":"count","aggregation":"count"},{"measure":"score","aggregation":"avg"}],"orderBy":[{"field":"count_count","direction":"desc"}],"config":{"row_limit":3}}`,
		}
	}
	if view == "observations" {
		return []string{
			`{"view":"observations",` + r + `,"metrics":[{"measure":"count","aggregation":"count"}]}`,
			`{"view":"observations",` + r + `,"dimensions":[{"field":"type"},{"field":"model"},{"field":"level"}],"timeDimension":{"granularity":"hour"},
			 "metrics":[{"measure":"count","aggregation":"count"},{"measure":"errors","aggregation":"sum"},{"measure":"cost","aggregation":"sum"},
			 {"measure":"prompt_tokens","aggregation":"avg"},{"measure":"latency","aggregation":"p50"},{"measure":"latency","aggregation":"p99"}]}`,
			`{"view":"observations",` + r + `,"dimensions":[{"field":"level"}],"timeDimension":{"granularity":"day"},"filters":[{"column":"type","operator":"!=","value":"EVENT"}],
			 "metrics":[{"measure":"cost","aggregation":"avg"},{"measure":"total_tokens","aggregation":"sum"}],"orderBy":[{"field":"avg_cost","direction":"desc"}],"config":{"row_limit":5}}`,
		}
	}
	return []string{
		// The dashboard: 24 h, hourly, by model: count, p95 latency, cost.
		`{"view":"llm_calls",` + r + `,"dimensions":[{"field":"model"}],"timeDimension":{"granularity":"hour"},
		 "metrics":[{"measure":"count","aggregation":"count"},{"measure":"latency","aggregation":"p95"},{"measure":"cost","aggregation":"sum"}]}`,
		`{"view":"llm_calls",` + r + `,"metrics":[{"measure":"count","aggregation":"count"},{"measure":"errors","aggregation":"sum"},
		 {"measure":"prompt_tokens","aggregation":"sum"},{"measure":"completion_tokens","aggregation":"sum"},{"measure":"total_tokens","aggregation":"avg"},
		 {"measure":"cost","aggregation":"avg"},{"measure":"latency","aggregation":"avg"},{"measure":"latency","aggregation":"p50"},
		 {"measure":"latency","aggregation":"p75"},{"measure":"latency","aggregation":"p90"},{"measure":"latency","aggregation":"p99"},
		 {"measure":"provider_latency","aggregation":"p95"},{"measure":"gateway_latency","aggregation":"p50"},{"measure":"ttft","aggregation":"p90"}]}`,
		`{"view":"llm_calls",` + r + `,"dimensions":[{"field":"provider"},{"field":"status"},{"field":"user_id"}],"timeDimension":{"granularity":"day"},
		 "metrics":[{"measure":"count","aggregation":"count"},{"measure":"cost","aggregation":"sum"},{"measure":"ttft","aggregation":"p50"}]}`,
		`{"view":"llm_calls",` + r + `,"dimensions":[{"field":"model"}],"timeDimension":{"granularity":"week"},
		 "filters":[{"column":"status","operator":"=","value":"success"},{"column":"provider","operator":"in","value":["openai","mock"]}],
		 "metrics":[{"measure":"latency","aggregation":"p99"},{"measure":"count","aggregation":"count"}]}`,
		`{"view":"llm_calls",` + r + `,"dimensions":[{"field":"user_id"},{"field":"model"}],"filters":[{"column":"model","operator":"not in","value":["llama"]}],
		 "metrics":[{"measure":"count","aggregation":"count"},{"measure":"errors","aggregation":"avg"}],
		 "orderBy":[{"field":"count_count","direction":"desc"}],"config":{"row_limit":7}}`,
		`{"view":"llm_calls",` + r + `,"timeDimension":{"granularity":"month"},"metrics":[{"measure":"count","aggregation":"count"}]}`,
	}
}

// answerBothWays answers q from the rollup and from raw rows (FINAL) and fails unless both
// give the same rows. It returns the rollup answer's meta.
func answerBothWays(t *testing.T, r *reader, p authclient.Principal, q string) metricsMeta {
	t.Helper()
	plan, bad := decodeMetrics([]byte(q), views(r.features), time.Now(), defaultLimits())
	if bad != nil {
		t.Fatalf("%s: %v", q, bad)
	}
	if !plan.rollupFits {
		t.Fatalf("%s: the rollup does not fit: %s", q, plan.rollupWhy)
	}
	ctx := context.Background()
	fromRollup, err := r.metrics(ctx, p, plan, false)
	if err != nil {
		t.Fatalf("%s: rollup: %v", q, err)
	}
	fromRaw, err := r.metrics(ctx, p, plan, true)
	if err != nil {
		t.Fatalf("%s: raw: %v", q, err)
	}
	if fromRollup.Meta.Source != "rollup" || fromRaw.Meta.Source != "raw" {
		t.Fatalf("%s: sources %s and %s", q, fromRollup.Meta.Source, fromRaw.Meta.Source)
	}
	if len(fromRaw.Data) == 0 {
		t.Fatalf("%s: no rows: the query tests nothing", q)
	}
	if !reflect.DeepEqual(fromRollup.Data, fromRaw.Data) || fromRollup.Meta.Truncated != fromRaw.Meta.Truncated {
		a, _ := json.Marshal(fromRollup.Data)
		b, _ := json.Marshal(fromRaw.Data)
		t.Fatalf("%s: the rollup answers\n%s\nraw rows (FINAL) answer\n%s", q, a, b)
	}
	return fromRollup.Meta
}

func write(t *testing.T, s *clickhouse.Store, b clickhouse.Batch) {
	t.Helper()
	if err := s.Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

// TestRollupEqualsFinal writes llm calls, observations and findings, then redelivers, updates
// and moves some of them, and checks after every step that each metrics query answers the same from the
// rollup as from the raw rows under FINAL; and that the rollup serves every clean day itself.
func TestRollupEqualsFinal(t *testing.T) {
	s := store(t)
	r := testReader(t, s)
	rng := rand.New(rand.NewPCG(15, 6))
	p := authclient.Principal{Tenant: "rollup-eq", Project: "p1", Scopes: []authclient.Scope{authclient.ScopeQuery}}
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	const hours = 72
	calls := genCalls(rng, p.Tenant, p.Project, start, hours, 6000)
	obs := genObservations(rng, p.Tenant, p.Project, start, hours, 3000)
	finds := genFindings(rng, p.Tenant, p.Project, start, hours, 3000)
	// The same rows under another project and tenant must change nothing.
	other := genCalls(rand.New(rand.NewPCG(1, 2)), p.Tenant, "p2", start, hours, 500)
	stranger := genCalls(rand.New(rand.NewPCG(3, 4)), "rollup-eq-other", p.Project, start, hours, 500)
	for i := 0; i < len(calls); i += 1000 {
		write(t, s, clickhouse.Batch{LLMCalls: calls[i : i+1000], Observations: obs[i/2 : i/2+500], Findings: finds[i/2 : i/2+500]})
	}
	write(t, s, clickhouse.Batch{LLMCalls: append(other, stranger...)})
	write(t, s, clickhouse.Batch{Findings: genFindings(rand.New(rand.NewPCG(5, 6)), p.Tenant, "p2", start, hours, 300)})
	from, to := start, start.Add(hours*time.Hour)

	check := func(step string, wantRawDays func(int) bool) {
		t.Helper()
		for _, view := range []string{"llm_calls", "observations", "findings"} {
			for _, q := range metricQueries(view, from, to) {
				meta := answerBothWays(t, r, p, q)
				if !wantRawDays(meta.RawDays) {
					t.Fatalf("%s: %s: %d days read from raw rows", step, q, meta.RawDays)
				}
			}
		}
	}
	check("written once", func(n int) bool { return n == 0 })
	// Findings of a project that sees updates and moves only, no redelivery: each must dirty
	// its day on its own.
	pu := p
	pu.Project = "p-upd"
	onlyUpdated := genFindings(rand.New(rand.NewPCG(7, 8)), pu.Tenant, pu.Project, start, hours, 900)
	write(t, s, clickhouse.Batch{Findings: onlyUpdated})
	checkFindings := func(step string, wantRawDays func(int) bool) {
		t.Helper()
		for _, q := range metricQueries("findings", from, to) {
			if meta := answerBothWays(t, r, pu, q); !wantRawDays(meta.RawDays) {
				t.Fatalf("%s: %s: %d days read from raw rows", step, q, meta.RawDays)
			}
		}
	}
	checkFindings("findings written once", func(n int) bool { return n == 0 })

	// Redelivery: the same rows again, same version, in another insert.
	write(t, s, clickhouse.Batch{LLMCalls: calls[100:300], Observations: obs[50:120], Findings: finds[30:90]})
	check("redelivered", func(n int) bool { return n > 0 })
	naiveDiffers(t, r, p, metricQueries("findings", from, to)[0])
	// Without the days check the rollup would count the copies: the test can tell.
	naiveDiffers(t, r, p, metricQueries("llm_calls", from, to)[0])

	// Updates: another status, model and cost, a later version (a client's retry with more
	// fields); moves within the day (another hour: one row) and to the next day (two rows).
	var upd []clickhouse.LLMCall
	for i := 2000; i < 2300; i++ {
		c := calls[i]
		c.Version = 2_000_000
		c.Status, c.ModelServed, c.TotalCost, c.LatencyMs = "success", "gpt-4o", c.TotalCost*3, c.LatencyMs+500
		switch i % 3 {
		case 1:
			day := c.Timestamp.Truncate(24 * time.Hour)
			c.Timestamp = day.Add(time.Duration(rng.Int64N(int64(24 * time.Hour)))).Truncate(time.Second)
		case 2:
			c.Timestamp = c.Timestamp.Add(24 * time.Hour)
		}
		upd = append(upd, c)
	}
	var updObs []clickhouse.Observation
	for i := 1000; i < 1100; i++ {
		o := obs[i]
		o.Version, o.Level, o.Type = 2_000_000, "ERROR", "GENERATION"
		updObs = append(updObs, o)
	}
	// Findings: another action, severity and score at a later version (a policy changed and
	// the event was scanned again), moved within the day and to the next day.
	updateFindings := func(fs []clickhouse.Finding) []clickhouse.Finding {
		var out []clickhouse.Finding
		for i, f := range fs {
			f.Version, f.Action, f.Severity, f.Score = 2_000_000, "block", "critical", 1-f.Score
			switch i % 3 {
			case 1:
				f.Timestamp = f.Timestamp.Truncate(24 * time.Hour).Add(time.Duration(rng.Int64N(int64(24 * time.Hour)))).Truncate(time.Millisecond)
			case 2:
				f.Timestamp = f.Timestamp.Add(24 * time.Hour)
			}
			out = append(out, f)
		}
		return out
	}
	write(t, s, clickhouse.Batch{LLMCalls: upd, Observations: updObs, Findings: updateFindings(finds[1500:1650])})
	// The other project's findings see only updates and moves (a move to the next day is a
	// second row under FINAL too, which the rollup counts alike).
	write(t, s, clickhouse.Batch{Findings: updateFindings(onlyUpdated[300:450])})
	checkFindings("findings updated", func(n int) bool { return n > 0 })
	naiveDiffers(t, r, pu, metricQueries("findings", from, to)[0])
	check("updated", func(n int) bool { return n > 0 })

	// Merges collapse the raw copies; the rollup keeps what it counted, and the answers still
	// agree.
	for _, tbl := range []string{"llm_calls", "observations", "findings", "llm_calls_hourly", "observations_hourly", "findings_hourly",
		"llm_calls_days", "observations_days", "findings_days"} {
		if err := s.Conn().Exec(context.Background(), "OPTIMIZE TABLE trustplane."+tbl+" FINAL"); err != nil {
			t.Fatal(err)
		}
	}
	check("merged", func(n int) bool { return n > 0 })
}

// naiveDiffers fails unless q, read from the rollup without the days check, answers otherwise
// than raw rows under FINAL: after a redelivery, the test would not notice copies otherwise.
func naiveDiffers(t *testing.T, r *reader, p authclient.Principal, q string) {
	t.Helper()
	plan, _ := decodeMetrics([]byte(q), views(r.features), time.Now(), defaultLimits())
	sql, args := r.rollupSQL(p, plan, nil)
	naive, err := r.metricRows(context.Background(), plan, sql, args, nil)
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := r.metrics(context.Background(), p, plan, true); reflect.DeepEqual(naive, raw.Data) {
		t.Fatalf("%s: the rollup read without its days check answers like FINAL after a redelivery", q)
	}
}
