package batch

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/clickhouse/chdbtest"
	"github.com/trustplane/trustplane/clickhouse/chtest/gensql"
	"github.com/trustplane/trustplane/internal/testsupport"
)

// chdbRunner runs retention's statements on ClickHouse 26.9 (chDB), which has no native
// protocol; it takes no bound parameters, as the TTL path binds none. It counts the ALTERs.
type chdbRunner struct {
	e      *chdbtest.Engine
	alters []string
}

func (c *chdbRunner) Exec(_ context.Context, q string, args ...any) error {
	if len(args) > 0 {
		return fmt.Errorf("chdbRunner: bound parameters in %s", q)
	}
	if strings.HasPrefix(q, "ALTER") {
		c.alters = append(c.alters, q)
	}
	_, err := c.e.Query(q)
	return err
}

func (c *chdbRunner) Strings(_ context.Context, q string, args ...any) ([][]string, error) {
	if len(args) > 0 {
		return nil, fmt.Errorf("chdbRunner: bound parameters in %s", q)
	}
	r, err := c.e.Query(q)
	if err != nil {
		return nil, err
	}
	out := make([][]string, len(r.Data))
	for i, row := range r.Data {
		out[i] = make([]string, len(row))
		for j, v := range row {
			if err := json.Unmarshal(v, &out[i][j]); err != nil {
				return nil, fmt.Errorf("chdbRunner: %s: column %d is not a String: %s", q, j, v)
			}
		}
	}
	return out, nil
}

func (c *chdbRunner) count(t *testing.T, q string) uint64 {
	t.Helper()
	rows, err := c.Strings(context.Background(), "SELECT toString(("+q+"))")
	if err != nil || len(rows) != 1 {
		t.Fatalf("%s: %v %v", q, rows, err)
	}
	n, err := strconv.ParseUint(rows[0][0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (c *chdbRunner) engine(t *testing.T, table string) string {
	t.Helper()
	rows, err := c.Strings(context.Background(), "SELECT engine_full FROM system.tables WHERE database = 'trustplane' AND name = "+quote(table))
	if err != nil || len(rows) != 1 {
		t.Fatalf("engine of %s: %v %v", table, rows, err)
	}
	return rows[0][0]
}

// modernSchema creates the modern single-node schema on e, with the migrations' table-wide
// TTL of retentionDays on the raw tables.
func modernSchema(t *testing.T, e *chdbtest.Engine, retentionDays int) clickhouse.Features {
	t.Helper()
	f, err := e.Migrate(clickhouse.Options{RetentionDays: retentionDays})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestQuoteRoundTripsOnClickHouse26: what quote writes, ClickHouse reads back byte for byte,
// for ids with quotes, backslashes, control bytes, invalid UTF-8 and SQL (seeded).
func TestQuoteRoundTripsOnClickHouse26(t *testing.T) {
	c := &chdbRunner{e: chdbtest.Start(t)}
	rng := rand.New(rand.NewSource(15))
	inputs := []string{"", "acme", "it's", `\`, `\'`, "'; DROP TABLE x; --", "\x00\n\r\t", "\xff\xfe", "é✓", "{p:String}", "?"}
	for i := 0; i < 50; i++ {
		b := make([]byte, rng.Intn(24))
		rng.Read(b)
		inputs = append(inputs, string(b))
	}
	var sel []string
	for _, s := range inputs {
		sel = append(sel, "hex("+quote(s)+")")
	}
	rows, err := c.Strings(context.Background(), "SELECT "+strings.Join(sel, ", "))
	if err != nil || len(rows) != 1 || len(rows[0]) != len(inputs) {
		t.Fatalf("%v %v", rows, err)
	}
	for i, s := range inputs {
		if want := strings.ToUpper(hex.EncodeToString([]byte(s))); rows[0][i] != want {
			t.Errorf("quote(%q) = %s reads back as %s, want %s", s, quote(s), rows[0][i], want)
		}
	}
}

// TestRetentionTTLOnClickHouse26 runs the TTL path on ClickHouse 26.9: the modern schema with
// the migrations' table-wide TTL, 90 days of two projects' rows, a 30-day retention for one.
// After the run and merges (OPTIMIZE FINAL) the project's older days are gone from every
// table, rollups, days tables and trace index included, the other project and the newer days
// are whole, and the rollups still count what the raw rows hold. A second run changes
// nothing; rows of old days written later are counted as expired until a merge deletes them;
// removing the rule removes it and keeps the table-wide TTL.
//
// The rows leave a gap of five days around the first day kept, so a run that crosses
// midnight UTC (the day boundary moves by one) expects the same rows.
func TestRetentionTTLOnClickHouse26(t *testing.T) {
	e := chdbtest.Start(t)
	c := &chdbRunner{e: e}
	if f := modernSchema(t, e, 365); !f.TTLRules {
		t.Fatalf("ClickHouse 26.9 without TTL rules: %+v", f)
	}
	ctx := context.Background()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	day := 24 * time.Hour
	for _, p := range []string{"short", "forever"} {
		old := gensql.Spec{Tenant: "ret", Project: p, Start: today.Add(-90 * day), Span: 57 * day, N: 6000}
		recent := gensql.Spec{Tenant: "ret", Project: p, Start: today.Add(-27 * day), Span: 27 * day, First: 6000, N: 3000}
		for _, s := range []gensql.Spec{old, recent} {
			if err := e.Exec(gensql.LLMCalls(s), gensql.Observations(s), gensql.Traces(s), gensql.Scores(s), gensql.Findings(s)); err != nil {
				t.Fatal(err)
			}
		}
	}
	keep := today.Add(-30 * day).Format("2006-01-02")
	rows := func(tb table, project, cmp string) uint64 {
		return c.count(t, fmt.Sprintf("SELECT count() FROM trustplane.%s WHERE tenant_id = 'ret' AND project_id = '%s' AND %s %s toDate('%s')",
			tb.name, project, tb.day, cmp, keep))
	}
	type counts struct{ shortNew, forever uint64 }
	before := map[string]counts{}
	for _, tb := range tables {
		before[tb.name] = counts{rows(tb, "short", ">="), rows(tb, "forever", "<") + rows(tb, "forever", ">=")}
		if rows(tb, "short", "<") == 0 || before[tb.name].shortNew == 0 {
			t.Fatalf("%s: the rows do not test retention", tb.name)
		}
	}

	logs := &testsupport.Log{}
	ret := newRetention(c, "trustplane", "", []Rule{{Tenant: "ret", Project: "short", Days: 30}}, time.Minute, logs.Logger(), prometheus.NewRegistry())
	rep, err := ret.Run(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mode != "ttl" || len(rep.TTLChanges) != len(tables) || len(c.alters) != len(tables) || len(rep.Deletions) != 0 {
		t.Fatalf("mode %s, %d TTL changes, %d ALTERs, %d deletions; want ttl and one per table", rep.Mode, len(rep.TTLChanges), len(c.alters), len(rep.Deletions))
	}
	if n := logs.Count("retention ttl changed"); n != len(tables) {
		t.Fatalf("%d TTL changes logged", n)
	}
	for _, tb := range tables {
		if got := testutil.ToFloat64(ret.changes.WithLabelValues(tb.name)); got != 1 {
			t.Errorf("ttl_changes_total{table=%s} = %g", tb.name, got)
		}
		if got := testutil.ToFloat64(ret.ttlRule.WithLabelValues(tb.name)); got != 1 {
			t.Errorf("ttl_rules{table=%s} = %g", tb.name, got)
		}
	}
	rule := "toDateTime(toDate(timestamp), 'UTC') + toIntervalDay(31) WHERE (tenant_id = 'ret') AND (project_id = 'short')"
	if en := c.engine(t, "llm_calls"); !strings.Contains(en, "TTL toDateTime(timestamp) + toIntervalDay(365), "+rule+" SETTINGS") {
		t.Fatalf("llm_calls: the table-wide TTL and the rule are not both there:\n%s", en)
	}

	optimize := func() {
		t.Helper()
		for _, tb := range tables {
			if err := e.Exec("OPTIMIZE TABLE trustplane." + tb.name + " FINAL"); err != nil {
				t.Fatal(err)
			}
		}
	}
	optimize()
	for _, tb := range tables {
		if n := rows(tb, "short", "<"); n != 0 {
			t.Errorf("%s: %d rows of the project's old days left", tb.name, n)
		}
		after := counts{rows(tb, "short", ">="), rows(tb, "forever", "<") + rows(tb, "forever", ">=")}
		if after != before[tb.name] {
			t.Errorf("%s: newer days and the other project %+v, want %+v", tb.name, after, before[tb.name])
		}
	}
	rollupEqualsRaw := func() {
		t.Helper()
		raw := c.count(t, "SELECT count() FROM trustplane.llm_calls FINAL WHERE tenant_id = 'ret' AND project_id = 'short'")
		rolled := c.count(t, "SELECT countMerge(calls) FROM trustplane.llm_calls_hourly WHERE tenant_id = 'ret' AND project_id = 'short'")
		days := c.count(t, "SELECT countMerge(rows) FROM trustplane.llm_calls_days WHERE tenant_id = 'ret' AND project_id = 'short'")
		obs := c.count(t, "SELECT count() FROM trustplane.observations FINAL WHERE tenant_id = 'ret' AND project_id = 'short'")
		obsRolled := c.count(t, "SELECT countMerge(observations) FROM trustplane.observations_hourly WHERE tenant_id = 'ret' AND project_id = 'short'")
		finds := c.count(t, "SELECT count() FROM trustplane.findings FINAL WHERE tenant_id = 'ret' AND project_id = 'short'")
		findsRolled := c.count(t, "SELECT countMerge(findings) FROM trustplane.findings_hourly WHERE tenant_id = 'ret' AND project_id = 'short'")
		if raw != before["llm_calls"].shortNew || rolled != raw || days != raw || obsRolled != obs || findsRolled != finds {
			t.Fatalf("left: %d llm calls, %d in the rollup, %d in the days table (want %d); %d observations, %d in the rollup; %d findings, %d in the rollup",
				raw, rolled, days, before["llm_calls"].shortNew, obs, obsRolled, finds, findsRolled)
		}
	}
	rollupEqualsRaw()

	// Again: the TTL is right, nothing to change, nothing past retention.
	c.alters = nil
	rep, err = ret.Run(ctx, time.Now())
	if err != nil || len(c.alters) != 0 || len(rep.TTLChanges) != 0 {
		t.Fatalf("second run: %v, ALTERs %q", err, c.alters)
	}
	for _, tb := range tables {
		if rep.Expired[tb.name] != 0 || testutil.ToFloat64(ret.expired.WithLabelValues(tb.name)) != 0 {
			t.Errorf("%s: %d rows past retention after the merges", tb.name, rep.Expired[tb.name])
		}
	}

	// Rows of old days that arrive later (a delayed delivery) stay until a merge deletes them,
	// and the run counts them meanwhile. Merges are stopped so that none runs before the count.
	if err := e.Exec("SYSTEM STOP MERGES trustplane.llm_calls"); err != nil {
		t.Fatal(err)
	}
	late := gensql.Spec{Tenant: "ret", Project: "short", Start: today.Add(-80 * day), Span: 20 * day, First: 100000, N: 700}
	if err := e.Exec(gensql.LLMCalls(late)); err != nil {
		t.Fatal(err)
	}
	rep, err = ret.Run(ctx, time.Now())
	if err != nil || len(c.alters) != 0 {
		t.Fatalf("third run: %v, ALTERs %q", err, c.alters)
	}
	if rep.Expired["llm_calls"] != 700 || testutil.ToFloat64(ret.expired.WithLabelValues("llm_calls")) != 700 {
		t.Fatalf("expired_rows{table=llm_calls} = %g, report %d, want the 700 late rows", testutil.ToFloat64(ret.expired.WithLabelValues("llm_calls")), rep.Expired["llm_calls"])
	}
	if logs.Count("retention rows past retention still stored") == 0 {
		t.Fatal("no log line names the rows past retention")
	}
	if err := e.Exec("SYSTEM START MERGES trustplane.llm_calls"); err != nil {
		t.Fatal(err)
	}
	optimize()
	if rep, err = ret.Run(ctx, time.Now()); err != nil || rep.Expired["llm_calls"] != 0 {
		t.Fatalf("after the merge: %v, %d rows past retention", err, rep.Expired["llm_calls"])
	}
	rollupEqualsRaw()

	// The project leaves BATCH_RETENTION: its rule goes, the table-wide TTL stays, the
	// rollups (which have no other TTL) lose theirs.
	c.alters = nil
	none := newRetention(c, "trustplane", "", nil, time.Minute, logs.Logger(), prometheus.NewRegistry())
	if rep, err = none.Run(ctx, time.Now()); err != nil || len(rep.TTLChanges) != len(tables) {
		t.Fatalf("removing the rule: %v, %d changes", err, len(rep.TTLChanges))
	}
	if en := c.engine(t, "observations"); !strings.Contains(en, "TTL toDateTime(start_time) + toIntervalDay(365) SETTINGS") || strings.Contains(en, "tenant_id = ") {
		t.Fatalf("observations after the rule went:\n%s", en)
	}
	if en := c.engine(t, "llm_calls_hourly"); strings.Contains(en, "TTL") {
		t.Fatalf("llm_calls_hourly keeps a TTL:\n%s", en)
	}
	if !strings.Contains(strings.Join(c.alters, "\n"), "ALTER TABLE trustplane.trace_index REMOVE TTL") {
		t.Fatalf("no REMOVE TTL on the trace index: %q", c.alters)
	}
	c.alters = nil
	if _, err := none.Run(ctx, time.Now()); err != nil || len(c.alters) != 0 {
		t.Fatalf("again without rules: %v, ALTERs %q", err, c.alters)
	}
}

// TestRetentionTTLKeepsTheSameDaysAsTheMutations: at the edge of a 30-day retention the TTL
// deletes the last instant of day today-31 and keeps the first instant of day today-30 (UTC),
// the days the mutation path deletes and keeps, and the gauge agrees. The expectation is
// taken from the day the merge ran in: should midnight UTC pass during it, the merge is run
// again until a whole merge ran within one day.
func TestRetentionTTLKeepsTheSameDaysAsTheMutations(t *testing.T) {
	e := chdbtest.Start(t)
	c := &chdbRunner{e: e}
	modernSchema(t, e, 0)
	day := 24 * time.Hour
	start := time.Now().UTC().Truncate(day)
	var values []string
	for d := 28; d <= 33; d++ {
		for _, at := range []time.Duration{0, day - time.Millisecond} {
			ts := start.Add(-time.Duration(d)*day + at).Format("2006-01-02 15:04:05.000")
			values = append(values, fmt.Sprintf("('ret', 'edge', '%d-%d', '%s', 1)", d, at/time.Millisecond, ts))
		}
	}
	if err := e.Exec("INSERT INTO trustplane.llm_calls (tenant_id, project_id, id, timestamp, version) VALUES " + strings.Join(values, ", ")); err != nil {
		t.Fatal(err)
	}
	ret := newRetention(c, "trustplane", "", []Rule{{Tenant: "ret", Project: "edge", Days: 30}}, time.Minute, slog.New(slog.DiscardHandler), nil)
	for {
		before := time.Now().UTC().Truncate(day)
		if _, err := ret.Run(context.Background(), time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := e.Exec("OPTIMIZE TABLE trustplane.llm_calls FINAL", "OPTIMIZE TABLE trustplane.llm_calls_days FINAL"); err != nil {
			t.Fatal(err)
		}
		today := time.Now().UTC().Truncate(day)
		if today != before {
			continue
		}
		first := today.Add(-30 * day).Format("2006-01-02 15:04:05.000")
		kept := c.count(t, "SELECT count() FROM trustplane.llm_calls")
		gone := c.count(t, "SELECT count() FROM trustplane.llm_calls WHERE timestamp < toDateTime64('"+first+"', 3, 'UTC')")
		edge := c.count(t, "SELECT count() FROM trustplane.llm_calls WHERE timestamp = toDateTime64('"+first+"', 3, 'UTC')")
		keptDays := c.count(t, "SELECT countMerge(rows) FROM trustplane.llm_calls_days")
		wantKept := uint64(2 * (30 - 28 + 1 + int(start.Sub(today)/day))) // days today-30 to today-28, both ends
		if gone != 0 || edge != 1 || kept != wantKept || keptDays != kept {
			t.Fatalf("today %s: %d rows kept (want %d), %d before %s (want 0), %d at it (want 1), %d in the days table",
				today.Format("2006-01-02"), kept, wantKept, gone, first, edge, keptDays)
		}
		// The TTL already deleted the days; the mutation path's condition finds nothing left.
		if rep, err := ret.Run(context.Background(), today.Add(time.Hour)); err != nil || rep.Expired["llm_calls"] != 0 {
			t.Fatalf("after the merge: %v, %d rows past retention by the mutations' days", err, rep.Expired["llm_calls"])
		}
		return
	}
}
