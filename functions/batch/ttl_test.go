package batch

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestQuoteEscapesEveryByteThatIsNotPlainText(t *testing.T) {
	for in, want := range map[string]string{
		"acme":       `'acme'`,
		"it's":       `'it\'s'`,
		`back\slash`: `'back\\slash'`,
		"new\nline":  `'new\x0Aline'`,
		"\x00\x7f":   `'\x00\x7F'`,
		"é":          `'\xC3\xA9'`,
		`'); DROP`:   `'\'); DROP'`,
		"":           `''`,
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestTTLClauseAndElements(t *testing.T) {
	engine := `ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/tp/traces', '{replica}', version) PARTITION BY toYYYYMM(timestamp) ` +
		`ORDER BY (tenant_id, project_id, toDate(timestamp), id) TTL toDateTime(timestamp) + toIntervalDay(365), ` +
		`toDateTime(toDate(timestamp), 'UTC') + toIntervalDay(31) WHERE (tenant_id = 'a') AND (project_id = 'p'), ` +
		`toDateTime(x) + toIntervalDay(2) WHERE s IN ('TTL , SETTINGS ', 'b') SETTINGS index_granularity = 8192`
	clause := ttlClause(engine)
	want := []string{"toDateTime(timestamp) + toIntervalDay(365)",
		"toDateTime(toDate(timestamp), 'UTC') + toIntervalDay(31) WHERE (tenant_id = 'a') AND (project_id = 'p')",
		"toDateTime(x) + toIntervalDay(2) WHERE s IN ('TTL , SETTINGS ', 'b')"}
	if got := splitElements(clause); !reflect.DeepEqual(got, want) {
		t.Fatalf("elements %q, want %q", got, want)
	}
	for _, e := range []string{"AggregatingMergeTree PARTITION BY toYYYYMM(hour) ORDER BY (tenant_id, hour) SETTINGS index_granularity = 8192",
		"MergeTree ORDER BY ttl", ""} {
		if c := ttlClause(e); c != "" {
			t.Errorf("ttlClause(%q) = %q, want none", e, c)
		}
	}
	if c := ttlClause("MergeTree ORDER BY a TTL d + toIntervalDay(1)"); c != "d + toIntervalDay(1)" {
		t.Errorf("TTL at the end: %q", c)
	}
}

func TestParseRuleElementReadsWhatRuleElementWrites(t *testing.T) {
	tb := table{"traces", "toDate(timestamp)"}
	r := Rule{Tenant: "acme-1", Project: "web_2", Days: 30}
	for _, e := range []string{
		ruleElement(tb, r), // as batch writes it
		"toDateTime(toDate(timestamp), 'UTC') + toIntervalDay(31) WHERE (tenant_id = 'acme-1') AND (project_id = 'web_2')", // as 26.9 shows it
	} {
		got, ok, err := parseRuleElement(e)
		if err != nil || !ok || got.Rule != r || got.day != tb.day {
			t.Errorf("%s: %+v %v %v", e, got, ok, err)
		}
	}
	if _, ok, err := parseRuleElement("toDateTime(timestamp) + toIntervalDay(365)"); ok || err != nil {
		t.Errorf("the table-wide TTL read as batch's: %v %v", ok, err)
	}
	for _, e := range []string{
		"toDateTime(day, 'UTC') + toIntervalDay(31) WHERE tenant_id = 'Acme' AND project_id = 'p'",
		"toDateTime(day, 'UTC') + toIntervalDay(8) WHERE tenant_id IN ('a', 'b')",
		"toDateTime(day, 'UTC') + toIntervalDay(1) WHERE (tenant_id = 'a') AND (project_id = 'p')",
	} {
		if _, _, err := parseRuleElement(e); err == nil {
			t.Errorf("%s: no error", e)
		}
	}
}

func TestPlanTTL(t *testing.T) {
	tb := table{"llm_calls", "toDate(timestamp)"}
	rules := []Rule{{"b", "q", 7}, {"a", "p", 30}}
	engine := "ReplacingMergeTree(version) PARTITION BY toYYYYMM(timestamp) ORDER BY (tenant_id, project_id, toDate(timestamp), id) TTL toDateTime(timestamp) + toIntervalDay(365) SETTINGS index_granularity = 8192"
	p, err := planTTL("tp", "", tb, engine, rules)
	if err != nil {
		t.Fatal(err)
	}
	want := "ALTER TABLE tp.llm_calls MODIFY TTL toDateTime(timestamp) + toIntervalDay(365), " +
		"toDateTime(toDate(timestamp), 'UTC') + toIntervalDay(31) DELETE WHERE tenant_id = 'a' AND project_id = 'p', " +
		"toDateTime(toDate(timestamp), 'UTC') + toIntervalDay(8) DELETE WHERE tenant_id = 'b' AND project_id = 'q'"
	if p.Statement != want || len(p.Before) != 0 || len(p.After) != 2 {
		t.Fatalf("%+v\nwant %s", p, want)
	}
	// As the server shows it after that statement, in any order: nothing to do.
	now := "ReplacingMergeTree(version) ORDER BY id TTL toDateTime(toDate(timestamp), 'UTC') + toIntervalDay(8) WHERE (tenant_id = 'b') AND (project_id = 'q'), " +
		"toDateTime(timestamp) + toIntervalDay(365), toDateTime(toDate(timestamp), 'UTC') + toIntervalDay(31) WHERE (tenant_id = 'a') AND (project_id = 'p') SETTINGS index_granularity = 8192"
	if p, err := planTTL("tp", "", tb, now, rules); err != nil || p.Statement != "" || len(p.Before) != 2 {
		t.Fatalf("a TTL already right: %+v %v", p, err)
	}
	// One rule fewer, another retention: rewritten, the table-wide TTL kept.
	p, err = planTTL("tp", "main", tb, now, []Rule{{"a", "p", 10}})
	if err != nil || p.Statement != "ALTER TABLE tp.llm_calls_local ON CLUSTER main MODIFY TTL toDateTime(timestamp) + toIntervalDay(365), "+
		"toDateTime(toDate(timestamp), 'UTC') + toIntervalDay(11) DELETE WHERE tenant_id = 'a' AND project_id = 'p'" {
		t.Fatalf("%+v %v", p, err)
	}
	// No rules left and nothing else: REMOVE TTL; no rules and no TTL: nothing.
	only := "AggregatingMergeTree ORDER BY tenant_id TTL toDateTime(day, 'UTC') + toIntervalDay(31) WHERE (tenant_id = 'a') AND (project_id = 'p') SETTINGS index_granularity = 8192"
	if p, err := planTTL("tp", "", table{"llm_calls_days", "day"}, only, nil); err != nil || p.Statement != "ALTER TABLE tp.llm_calls_days REMOVE TTL" {
		t.Fatalf("%+v %v", p, err)
	}
	if p, err := planTTL("tp", "", table{"llm_calls_days", "day"}, "AggregatingMergeTree ORDER BY tenant_id", nil); err != nil || p.Statement != "" {
		t.Fatalf("%+v %v", p, err)
	}
	// A rule written for another day expression is rewritten.
	if p, err := planTTL("tp", "", tb, strings.ReplaceAll(now, "toDate(timestamp)", "toDate(ts)"), rules); err != nil || p.Statement == "" {
		t.Fatalf("%+v %v", p, err)
	}
	// A tenant filter batch did not write stops the run rather than being lost.
	if _, err := planTTL("tp", "", tb, "MergeTree ORDER BY id TTL toDateTime(timestamp) + toIntervalDay(3) WHERE tenant_id != 'a'", rules); err == nil ||
		!strings.Contains(err.Error(), "llm_calls") {
		t.Fatalf("error %v", err)
	}
}

func TestExpiredQuery(t *testing.T) {
	now := time.Date(2026, 12, 3, 23, 59, 0, 0, time.FixedZone("x", -5*3600)) // 2026-12-04 in UTC
	got := expiredQuery("tp", table{"trace_index", "day"}, []Rule{{"a", "p", 30}, {"b", "q", 1}}, now)
	want := "SELECT toString(count()) FROM tp.trace_index WHERE (tenant_id = 'a' AND project_id = 'p' AND day < toDate('2026-11-04')) OR " +
		"(tenant_id = 'b' AND project_id = 'q' AND day < toDate('2026-12-03'))"
	if got != want {
		t.Fatalf("%s\nwant %s", got, want)
	}
}

// FuzzParseRetention: whatever BATCH_RETENTION holds, ParseRetention does not panic, and
// what it accepts are unique projects with ids in auth's charset and days in range, written
// back and parsed again to the same rules, whose TTL elements read back as themselves.
func FuzzParseRetention(f *testing.F) {
	for _, s := range []string{"", "acme/web=30", " acme/web=30, acme/batch=7 ,", "a/b=0", "a/b/c=1", "x/y=1,x/y=2",
		"acme/it's=3", "a/b=+5", "a/b=036500", "a/b=36501", "é/b=1", "a\x00/b=1", "a/b=1\n"} {
		f.Add(s)
	}
	tb := table{"observations", "toDate(start_time)"}
	f.Fuzz(func(t *testing.T, s string) {
		rules, err := ParseRetention(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "BATCH_RETENTION: ") {
				t.Fatalf("error %q does not name the variable", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, r := range rules {
			key := r.Tenant + "/" + r.Project
			if !nameRE.MatchString(r.Tenant) || !nameRE.MatchString(r.Project) || r.Days < 1 || r.Days > maxRetentionDays || seen[key] {
				t.Fatalf("accepted %+v from %q", r, s)
			}
			seen[key] = true
			got, ok, err := parseRuleElement(ruleElement(tb, r))
			if err != nil || !ok || got.Rule != r || got.day != tb.day {
				t.Fatalf("%+v: element read back as %+v %v %v", r, got, ok, err)
			}
		}
		again, err := ParseRetention(strings.Join(ruleNames(rules), ","))
		if err != nil || !reflect.DeepEqual(again, rules) {
			t.Fatalf("%q: %+v written back parsed as %+v, %v", s, rules, again, err)
		}
	})
}
