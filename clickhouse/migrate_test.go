package clickhouse

import (
	"context"
	"strings"
	"testing"
)

func TestMigrateAppliesOnceAndIsIdempotent(t *testing.T) {
	ctx := context.Background()
	st := openMigrated(t)
	if err := Migrate(ctx, st.Conn(), st.MigrateOptions()); err != nil {
		t.Fatalf("second run: %v", err)
	}
	plan, err := Render(st.Features(), st.MigrateOptions())
	if err != nil {
		t.Fatal(err)
	}
	rows, err := st.Conn().Query(ctx, "SELECT version, count() FROM "+st.db+".schema_migrations GROUP BY version ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []uint32
	for rows.Next() {
		var v uint32
		var n uint64
		if err := rows.Scan(&v, &n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("version %d recorded %d times", v, n)
		}
		got = append(got, v)
	}
	if len(got) != len(plan.Migrations) {
		t.Fatalf("schema_migrations has versions %v, want %d migrations", got, len(plan.Migrations))
	}
	for i, m := range plan.Migrations {
		if got[i] != m.Version {
			t.Errorf("schema_migrations[%d] = %d, want %d", i, got[i], m.Version)
		}
	}
}

// The server in the tests is 18.16 with LowCardinality switched on in its profile.
func TestMigrateUsesDetectedColumnTypes(t *testing.T) {
	ctx := context.Background()
	st := openMigrated(t)
	want := map[string]string{
		"start_time": "DateTime('UTC')",
		"level":      "LowCardinality(String)",
		"input":      "String",
	}
	if st.Features().DateTime64 {
		want["start_time"] = "DateTime64(3, 'UTC')"
	}
	if !st.Features().LowCardinality {
		t.Fatalf("features %+v on %s: LowCardinality not detected although the test profile enables it", st.Features(), st.ServerVersion())
	}
	for col, typ := range want {
		var got string
		err := st.Conn().QueryRow(ctx, "SELECT type FROM system.columns WHERE database = ? AND table = 'observations' AND name = ?", st.db, col).Scan(&got)
		if err != nil {
			t.Fatalf("%s: %v", col, err)
		}
		if got != typ {
			t.Errorf("observations.%s is %s, want %s (server %s)", col, got, typ, st.ServerVersion())
		}
	}
}

func TestRenderFor1816And24(t *testing.T) {
	old, err := FeaturesFor("18.16.1")
	if err != nil {
		t.Fatal(err)
	}
	if old != (Features{}) {
		t.Fatalf("18.16.1 features = %+v, want none", old)
	}
	sql := renderAll(t, old, Options{})
	for _, s := range []string{"DateTime64", "CODEC", "LowCardinality", "TTL", "ON CLUSTER", "Distributed"} {
		if strings.Contains(sql, s) {
			t.Errorf("18.16 single-node schema contains %s:\n%s", s, sql)
		}
	}
	for _, s := range []string{"timestamp DateTime('UTC')", "ENGINE = ReplacingMergeTree(version)", "PARTITION BY toYYYYMM(start_time)",
		"ORDER BY (tenant_id, project_id, toDate(start_time), id)", "CREATE TABLE IF NOT EXISTS trustplane.scores (",
		"CREATE TABLE IF NOT EXISTS trustplane.findings (",
		"ORDER BY (tenant_id, project_id, toDate(timestamp), source_type, source_id, side, detector, span_start, span_end)"} {
		if !strings.Contains(sql, s) {
			t.Errorf("18.16 schema lacks %q:\n%s", s, sql)
		}
	}
	if _, err := Render(old, Options{RetentionDays: 30}); err == nil {
		t.Error("retention on 18.16 rendered without error; it has no TTL")
	}

	current, err := FeaturesFor("24.3.2.23")
	if err != nil {
		t.Fatal(err)
	}
	if current != (Features{DateTime64: true, Codecs: true, LowCardinality: true, TTL: true, TTLRules: true}) {
		t.Fatalf("24.3 features = %+v, want all", current)
	}
	sql = renderAll(t, current, Options{RetentionDays: 30})
	for _, s := range []string{"start_time DateTime64(3, 'UTC')", "input String CODEC(ZSTD(3))", "level LowCardinality(String)",
		"TTL toDateTime(start_time) + toIntervalDay(30)", "detector LowCardinality(String)"} {
		if !strings.Contains(sql, s) {
			t.Errorf("24.3 schema lacks %q:\n%s", s, sql)
		}
	}
	if _, err := FeaturesFor("banana"); err == nil {
		t.Error("FeaturesFor accepted a bad version")
	}
}

func TestRenderClusterMode(t *testing.T) {
	f, _ := FeaturesFor("23.8.1.1")
	sql := renderAll(t, f, Options{Database: "tp", Cluster: "main"})
	for _, s := range []string{
		"CREATE DATABASE IF NOT EXISTS tp ON CLUSTER main",
		"CREATE TABLE IF NOT EXISTS tp.observations_local ON CLUSTER main (",
		"ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/tp/observations', '{replica}', version)",
		"ENGINE = Distributed(main, tp, observations_local, cityHash64(tenant_id, trace_id))",
		"ENGINE = Distributed(main, tp, traces_local, cityHash64(tenant_id, id))",
		"ENGINE = Distributed(main, tp, scores_local, cityHash64(tenant_id, trace_id))",
		"'/clickhouse/tables/all/tp/schema_migrations', '{shard}-{replica}'",
		"CREATE TABLE IF NOT EXISTS tp.findings_local ON CLUSTER main (",
		"ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/tp/findings', '{replica}', version)",
		"ENGINE = Distributed(main, tp, findings_local, cityHash64(tenant_id, source_id))",
		"ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/tp/findings_hourly', '{replica}')",
		"CREATE MATERIALIZED VIEW IF NOT EXISTS tp.findings_days_mv ON CLUSTER main\nTO tp.findings_days_local AS",
		"ENGINE = Distributed(main, tp, findings_days_local, rand())",
		"INSERT INTO tp.findings_hourly\nSELECT",
	} {
		if !strings.Contains(sql, s) {
			t.Errorf("cluster schema lacks %q:\n%s", s, sql)
		}
	}
}

func TestOptionsRejectUnsafeNames(t *testing.T) {
	for _, o := range []Options{{Database: "x; DROP TABLE y"}, {Cluster: "a b"}, {RetentionDays: -1}} {
		if _, err := Render(Features{}, o); err == nil {
			t.Errorf("Render accepted %+v", o)
		}
	}
}

func renderAll(t *testing.T, f Features, o Options) string {
	t.Helper()
	p, err := Render(f, o)
	if err != nil {
		t.Fatal(err)
	}
	all := append([]string(nil), p.Bootstrap...)
	for _, m := range p.Migrations {
		all = append(all, m.Statements...)
	}
	return strings.Join(all, ";\n")
}

// LowCardinality became usable without allow_experimental_low_cardinality_type in 19.3 (the
// release that removed the setting); on 19.1 and 19.2 it still needs the setting, which
// Detect reads from the session.
func TestFeaturesForLowCardinalityFrom193(t *testing.T) {
	for v, want := range map[string]bool{"18.16.1": false, "19.1.6": false, "19.2.1.1": false, "19.3.3": true, "23.8.2.7": true} {
		f, err := FeaturesFor(v)
		if err != nil {
			t.Fatal(err)
		}
		if f.LowCardinality != want {
			t.Errorf("FeaturesFor(%q).LowCardinality = %v, want %v", v, f.LowCardinality, want)
		}
	}
}

// TTLRules (per-project DELETE WHERE rules kept by batch) are assumed from 21.8; before it,
// batch deletes with mutations.
func TestFeaturesForTTLRulesFrom218(t *testing.T) {
	for v, want := range map[string]bool{"18.16.1": false, "20.5.2.7": false, "21.3.20.1": false, "21.8.15.7": true, "23.8.2.7": true, "26.9.2.1": true} {
		f, err := FeaturesFor(v)
		if err != nil {
			t.Fatal(err)
		}
		if f.TTLRules != want {
			t.Errorf("FeaturesFor(%q).TTLRules = %v, want %v", v, f.TTLRules, want)
		}
	}
}
