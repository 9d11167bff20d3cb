package batch

import (
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/clickhouse/chtest"
	"github.com/trustplane/trustplane/clickhouse/chtest/gensql"
	"github.com/trustplane/trustplane/functions/runtime"
	"github.com/trustplane/trustplane/internal/testsupport"
)

var server *chtest.Server

func TestMain(m *testing.M) { os.Exit(chtest.RunMain(m, &server)) }

func count(t *testing.T, s *clickhouse.Store, q string, args ...any) uint64 {
	t.Helper()
	var n uint64
	if err := s.Conn().QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestParseRetention(t *testing.T) {
	rules, err := ParseRetention(" acme/web=30, acme/batch=7 ,")
	if err != nil || len(rules) != 2 || rules[1] != (Rule{"acme", "batch", 7}) {
		t.Fatalf("%v %v", rules, err)
	}
	if rules, err := ParseRetention(""); err != nil || rules != nil {
		t.Fatalf("empty: %v %v", rules, err)
	}
	_, err = ParseRetention("acme=3,a/b=0,a/b/c=1,x/y=1,x/y=2,p/q=forever,Acme/web=3,acme/it's=3,acme/_web=3,-a/b=3,a/b c=3")
	for _, want := range []string{`"acme=3" is not`, `"a/b=0": days`, `"a/b/c=1" is not`, "x/y is given twice", `"p/q=forever"`,
		`"Acme/web=3": tenant must match`, `"acme/it's=3": project must match`, `"acme/_web=3": project must match`,
		`"-a/b=3": tenant must match`, `"a/b c=3": project must match`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %s", err, want)
		}
	}
}

// TestRetentionDeletesOldDaysOfItsProjectOnly writes 90 days of rows to two projects, keeps
// 30 days of one, and checks that exactly that project's older days are gone from the raw
// tables, the rollups and the days tables alike, that the metrics and log say how many, and
// that a second run deletes nothing.
func TestRetentionDeletesOldDaysOfItsProjectOnly(t *testing.T) {
	s, err := clickhouse.Open(context.Background(), clickhouse.Config{Addr: server.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := clickhouse.Migrate(context.Background(), s.Conn(), s.MigrateOptions()); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	now := start.Add(90*24*time.Hour + 5*time.Hour)
	for _, p := range []string{"short", "forever"} {
		spec := gensql.Spec{Tenant: "ret", Project: p, Start: start, Span: 90 * 24 * time.Hour, N: 9000}
		for _, st := range []string{gensql.LLMCalls(spec), gensql.Observations(spec), gensql.Traces(spec), gensql.Scores(spec), gensql.Findings(spec)} {
			if err := s.Conn().Exec(context.Background(), st); err != nil {
				t.Fatal(err)
			}
		}
	}
	keep := time.Date(2026, 7, 31, 0, 0, 0, 0, time.UTC) // 30 days before now's day
	old := func(table, day, project string) uint64 {
		return count(t, s, "SELECT count() FROM trustplane."+table+" WHERE tenant_id = 'ret' AND project_id = ? AND "+day+" < toDate(?)", project, keep.Format("2006-01-02"))
	}
	wantOld := old("llm_calls", "toDate(timestamp)", "short")
	if wantOld < 5000 || old("llm_calls", "toDate(timestamp)", "forever") != wantOld {
		t.Fatalf("%d old calls: the data does not test retention", wantOld)
	}
	logs := &testsupport.Log{}
	reg := prometheus.NewRegistry()
	ret := NewRetention(s.Conn(), "trustplane", "", []Rule{{Tenant: "ret", Project: "short", Days: 30}}, time.Minute, logs.Logger(), reg)
	srv := httptest.NewServer(runtime.CloudEventsHandler(ret.Handler(func() time.Time { return now })))
	defer srv.Close()
	send := func() {
		t.Helper()
		c, err := cloudevents.NewClientHTTP(cloudevents.WithTarget(srv.URL))
		if err != nil {
			t.Fatal(err)
		}
		e := cloudevents.NewEvent()
		e.SetID("ping-1")
		e.SetSource("/apis/v1/namespaces/trustplane/pingsources/batch")
		e.SetType(PingType)
		_ = e.SetData(cloudevents.ApplicationJSON, map[string]string{"job": "retention"})
		if res := c.Send(context.Background(), e); !cloudevents.IsACK(res) {
			t.Fatalf("ping: %v", res)
		}
	}
	send()
	for _, tc := range []struct{ table, day string }{
		{"llm_calls", "toDate(timestamp)"}, {"observations", "toDate(start_time)"}, {"traces", "toDate(timestamp)"},
		{"scores", "toDate(timestamp)"}, {"llm_calls_hourly", "toDate(hour)"}, {"llm_calls_days", "day"},
		{"observations_hourly", "toDate(hour)"}, {"observations_days", "day"},
		{"llm_calls_models_hourly", "toDate(hour)"}, {"llm_calls_models_days", "day"}, {"trace_index", "day"},
		{"findings", "toDate(timestamp)"}, {"findings_hourly", "toDate(hour)"}, {"findings_days", "day"},
	} {
		if n := old(tc.table, tc.day, "short"); n != 0 {
			t.Errorf("%s: %d old rows of the project left", tc.table, n)
		}
		if n := old(tc.table, tc.day, "forever"); n == 0 {
			t.Errorf("%s: the other project lost its old rows", tc.table)
		}
	}
	// What is left agrees between the rollup and the raw rows.
	raw := count(t, s, "SELECT count() FROM trustplane.llm_calls WHERE tenant_id = 'ret' AND project_id = 'short'")
	rolled := count(t, s, "SELECT countMerge(calls) FROM trustplane.llm_calls_hourly WHERE tenant_id = 'ret' AND project_id = 'short'")
	days := count(t, s, "SELECT countMerge(rows) FROM trustplane.llm_calls_days WHERE tenant_id = 'ret' AND project_id = 'short'")
	if raw == 0 || raw != rolled || raw != days || raw != 9000-wantOld {
		t.Fatalf("left: %d raw, %d in the rollup, %d in the days table, want %d", raw, rolled, days, 9000-wantOld)
	}
	rawF := count(t, s, "SELECT count() FROM trustplane.findings WHERE tenant_id = 'ret' AND project_id = 'short'")
	rolledF := count(t, s, "SELECT countMerge(findings) FROM trustplane.findings_hourly WHERE tenant_id = 'ret' AND project_id = 'short'")
	daysF := count(t, s, "SELECT countMerge(rows) FROM trustplane.findings_days WHERE tenant_id = 'ret' AND project_id = 'short'")
	if rawF == 0 || rawF != rolledF || rawF != daysF || rawF >= 9000 {
		t.Fatalf("findings left: %d raw, %d in the rollup, %d in the days table", rawF, rolledF, daysF)
	}
	if got := testutil.ToFloat64(ret.deleted.WithLabelValues("llm_calls")); got != float64(wantOld) {
		t.Fatalf("deleted_rows_total{table=llm_calls} = %g, want %d", got, wantOld)
	}
	if n := logs.Count("retention deleted rows"); n != len(tables) {
		t.Fatalf("%d lines say what was deleted, want one per table: %v", n, logs.Lines())
	}
	// Again: nothing left to delete.
	before := testutil.ToFloat64(ret.deleted.WithLabelValues("llm_calls"))
	send()
	if got := testutil.ToFloat64(ret.deleted.WithLabelValues("llm_calls")); got != before {
		t.Fatalf("the second run deleted %g more", got-before)
	}
	if got := testutil.ToFloat64(ret.runs.WithLabelValues("ok")); got != 2 {
		t.Fatalf("runs_total{ok} = %g", got)
	}
	// 18.16 has no TTL rules: nothing of the TTL path ran, and no row past retention is left.
	for _, tc := range []string{"llm_calls", "trace_index", "observations_days"} {
		if got := testutil.ToFloat64(ret.expired.WithLabelValues(tc)); got != 0 {
			t.Errorf("expired_rows{table=%s} = %g after the deletions", tc, got)
		}
	}
	if n := testutil.CollectAndCount(ret.changes); n != 0 {
		t.Errorf("ttl_changes_total has %d series on 18.16", n)
	}
	if n := logs.Count("retention ttl changed"); n != 0 {
		t.Errorf("%d TTL changes logged on 18.16", n)
	}
}
