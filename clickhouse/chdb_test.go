package clickhouse_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/clickhouse/chdbtest"
	"github.com/trustplane/trustplane/clickhouse/chtest/gensql"
)

// TestModernSchemaOnClickHouse26 runs every migration's single-node modern variant
// (DateTime64, CODEC, LowCardinality, and a TTL when a retention is set) on ClickHouse 26.9
// (chDB), twice (the second run applies nothing new), then writes rows and checks that the
// rollup views saw each of them.
func TestModernSchemaOnClickHouse26(t *testing.T) {
	e := chdbtest.Start(t)
	v, err := e.Version()
	if err != nil {
		t.Fatal(err)
	}
	f, err := e.Features()
	if err != nil {
		t.Fatal(err)
	}
	if !f.DateTime64 || !f.Codecs || !f.LowCardinality || !f.TTL || !f.TTLRules {
		t.Fatalf("ClickHouse %s: features %+v", v, f)
	}
	for _, opts := range []clickhouse.Options{{}, {Database: "retained", RetentionDays: 30}} {
		plan, err := clickhouse.Render(f, opts)
		if err != nil {
			t.Fatal(err)
		}
		for run := 0; run < 2; run++ {
			if err := e.Exec(plan.Bootstrap...); err != nil {
				t.Fatal(err)
			}
			for _, m := range plan.Migrations {
				if run == 1 && m.Name == "rollups" {
					continue // its backfill is not idempotent; Migrate never runs it twice
				}
				if err := e.Exec(m.Statements...); err != nil {
					t.Fatalf("migration %04d_%s on %s: %v", m.Version, m.Name, v, err)
				}
			}
		}
	}
	// A finding delivered twice is one row under FINAL.
	finding := "INSERT INTO trustplane.findings (tenant_id, project_id, source_type, source_id, timestamp, side, detector, category, span_start, span_end, action, reasons, version) " +
		"VALUES ('t', 'p', 'io.trustplane.telemetry.observation.v1', 'obs-1', '2026-11-01 10:00:00.250', 'input', 'secret.aws_access_key', 'secret', 12, 32, 'observe', ['AWS access key id'], 1)"
	if err := e.Exec(finding, finding); err != nil {
		t.Fatal(err)
	}
	if r, err := e.Query("SELECT toUInt64(count()) FROM trustplane.findings FINAL"); err != nil || len(r.Data) != 1 || string(r.Data[0][0]) != `"1"` && string(r.Data[0][0]) != "1" {
		t.Fatalf("findings FINAL: %+v, %v", r, err)
	}
	spec := gensql.Spec{Tenant: "t", Project: "p", Start: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Span: 72 * time.Hour, N: 5000}
	// Findings of another tenant, so that the two above do not count.
	fspec := spec
	fspec.Tenant = "tf"
	if err := e.Exec(gensql.LLMCalls(spec), gensql.Observations(spec), gensql.Traces(spec), gensql.Findings(fspec)); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"SELECT toUInt64(count()) FROM trustplane.llm_calls",
		"SELECT toUInt64(countMerge(calls)) FROM trustplane.llm_calls_hourly",
		"SELECT toUInt64(countMerge(rows)) FROM trustplane.llm_calls_days",
		"SELECT toUInt64(uniqExactMerge(ids)) FROM trustplane.llm_calls_days",
		"SELECT toUInt64(count()) FROM trustplane.observations",
		"SELECT toUInt64(countMerge(observations)) FROM trustplane.observations_hourly",
		"SELECT toUInt64(countMerge(rows)) FROM trustplane.observations_days",
		"SELECT toUInt64(count()) FROM trustplane.traces FINAL",
		"SELECT toUInt64(count()) FROM trustplane.findings FINAL WHERE tenant_id = 'tf'",
		"SELECT toUInt64(countMerge(findings)) FROM trustplane.findings_hourly WHERE tenant_id = 'tf'",
		"SELECT toUInt64(countMerge(rows)) FROM trustplane.findings_days WHERE tenant_id = 'tf'",
		"SELECT toUInt64(uniqExactMerge(ids)) FROM trustplane.findings_days WHERE tenant_id = 'tf'",
	} {
		r, err := e.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		var n json.Number
		if len(r.Data) != 1 || json.Unmarshal(r.Data[0][0], &n) != nil {
			var s string
			if json.Unmarshal(r.Data[0][0], &s) != nil {
				t.Fatalf("%s: %+v", q, r)
			}
			n = json.Number(s)
		}
		if n != "5000" {
			t.Fatalf("%s: %s, want 5000", q, n)
		}
	}
}
