package clickhouse_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/clickhouse/chtest/readback"
)

// sampleBatch fills every column with a distinct value.
func sampleBatch(tenant string) clickhouse.Batch {
	ts := time.Date(2026, 11, 3, 10, 20, 30, 123_000_000, time.UTC)
	env := func(id string, v uint64) clickhouse.Envelope {
		return clickhouse.Envelope{TenantID: tenant, ProjectID: "proj-1", ID: id, EventSource: "/apps/chat", EventID: "evt-" + id,
			Version: v, Metadata: map[string]string{"env": "prod", "region": "eu-1", "quote": `it's "x"`}}
	}
	return clickhouse.Batch{
		Traces: []clickhouse.Trace{{
			Envelope: env("trace-1", 1700000000001), Timestamp: ts, Name: "chat", UserID: "user-7", SessionID: "sess-3",
			Release: "v1.2.3", AppVersion: "2.0", Environment: "production", Tags: []string{"a", "b"},
			Input: `{"q":"hello"}`, Output: `{"a":"héllo ✓"}`,
		}, {
			Envelope:  clickhouse.Envelope{TenantID: tenant, ProjectID: "proj-1", ID: "trace-2", Version: 1700000000002},
			Timestamp: ts.Add(time.Hour), Name: "bare",
		}},
		Observations: []clickhouse.Observation{{
			Envelope: env("obs-1", 1700000000003), TraceID: "trace-1", ParentObservationID: "obs-0", Type: clickhouse.TypeGeneration,
			Name: "llm", StartTime: ts, EndTime: ts.Add(1500 * time.Millisecond), CompletionStartTime: ts.Add(400 * time.Millisecond),
			Model: "gpt-x", ModelParameters: `{"temperature":0.2}`, Input: `[{"role":"user"}]`, Output: `{"role":"assistant"}`,
			Usage: clickhouse.Usage{PromptTokens: 11, CompletionTokens: 22, TotalTokens: 33, InputCost: 0.00011, OutputCost: 0.00044, TotalCost: 0.00055},
			Level: clickhouse.LevelWarning, StatusMessage: "slow",
		}, {
			Envelope: env("obs-2", 1700000000004), TraceID: "trace-1", Type: clickhouse.TypeSpan, Name: "retrieve", StartTime: ts.Add(time.Second),
			Level: clickhouse.LevelDefault,
		}},
		Scores: []clickhouse.Score{{
			Envelope: env("score-1", 1700000000005), TraceID: "trace-1", ObservationID: "obs-1", Name: "helpfulness",
			Value: 0.75, StringValue: "good", DataType: clickhouse.DataTypeNumeric, Source: clickhouse.SourceEval, Comment: "judge said so", Timestamp: ts,
		}},
	}
}

// stored is what reading b back should return from a server with features f.
func stored(b clickhouse.Batch, f clickhouse.Features) clickhouse.Batch {
	trunc := func(t time.Time) time.Time {
		if f.DateTime64 {
			return t.Truncate(time.Millisecond)
		}
		return t.Truncate(time.Second)
	}
	var out clickhouse.Batch
	for _, t := range b.Traces {
		t.Timestamp = trunc(t.Timestamp)
		out.Traces = append(out.Traces, t)
	}
	for _, o := range b.Observations {
		o.StartTime, o.EndTime, o.CompletionStartTime = trunc(o.StartTime), trunc(o.EndTime), trunc(o.CompletionStartTime)
		out.Observations = append(out.Observations, o)
	}
	for _, s := range b.Scores {
		s.Timestamp = trunc(s.Timestamp)
		out.Scores = append(out.Scores, s)
	}
	return out
}

func readAll(t *testing.T, st *clickhouse.Store, tenant string) clickhouse.Batch {
	t.Helper()
	ctx := context.Background()
	var b clickhouse.Batch
	var err error
	if b.Traces, err = readback.Traces(ctx, st, tenant, "proj-1"); err != nil {
		t.Fatal(err)
	}
	if b.Observations, err = readback.Observations(ctx, st, tenant, "proj-1"); err != nil {
		t.Fatal(err)
	}
	if b.Scores, err = readback.Scores(ctx, st, tenant, "proj-1"); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWriteReadsBackEveryColumn(t *testing.T) {
	st := clickhouse.OpenMigrated(t)
	in := sampleBatch("tenant-a")
	if in.Len() != 5 {
		t.Fatalf("Len = %d, want 5", in.Len())
	}
	if err := st.Write(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	got, want := readAll(t, st, "tenant-a"), stored(in, st.Features())
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read back differs (server %s)\n got: %+v\nwant: %+v", st.ServerVersion(), got, want)
	}
	// Another tenant sees nothing.
	if other := readAll(t, st, "tenant-b"); other.Len() != 0 {
		t.Fatalf("tenant-b sees %d rows of tenant-a", other.Len())
	}
}

func TestDuplicatesCollapse(t *testing.T) {
	ctx := context.Background()
	st := clickhouse.OpenMigrated(t)
	first := sampleBatch("tenant-a")
	if err := st.Write(ctx, first); err != nil {
		t.Fatal(err)
	}
	// A redelivery: same keys, later ingestion, one changed field.
	again := sampleBatch("tenant-a")
	again.Observations[0].Version++
	again.Observations[0].Output = `{"redelivered":true}`
	if err := st.Write(ctx, again); err != nil {
		t.Fatal(err)
	}
	for table, want := range map[clickhouse.Table]uint64{clickhouse.TableTraces: 2, clickhouse.TableObservations: 2, clickhouse.TableScores: 1} {
		n, err := readback.CountRows(ctx, st, table, "tenant-a")
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("%s: %d rows after writing the batch twice, want %d", table, n, want)
		}
	}
	obs, err := readback.Observations(ctx, st, "tenant-a", "proj-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(obs) != 2 || obs[0].Output != `{"redelivered":true}` {
		t.Fatalf("FINAL did not keep the highest version: %+v", obs)
	}
}

func TestWriteFillsMissingVersion(t *testing.T) {
	st := clickhouse.OpenMigrated(t)
	b := clickhouse.Batch{Traces: sampleBatch("tenant-a").Traces[:1]}
	b.Traces[0].Version = 0
	before := uint64(time.Now().UnixMilli())
	if err := st.Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	got, err := readback.Traces(context.Background(), st, "tenant-a", "proj-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Version < before {
		t.Fatalf("version = %+v, want ingestion time >= %d", got, before)
	}
}

func TestWriteFails(t *testing.T) {
	st := clickhouse.OpenMigrated(t)
	good := sampleBatch("tenant-a")

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := st.Write(canceled, good); err == nil {
		t.Error("Write with a canceled context succeeded")
	}

	bad := sampleBatch("tenant-a")
	bad.Observations[1].Type = "SPANX"
	bad.Scores[0].TenantID = ""
	err := st.Write(context.Background(), bad)
	if err == nil {
		t.Fatal("Write accepted an invalid batch")
	}
	for _, s := range []string{`observations[1]: type must be one of`, `"SPANX"`, "scores[0]: tenant_id is required"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	if n, err := readback.CountRows(context.Background(), st, clickhouse.TableTraces, "tenant-a"); err != nil || n != 0 {
		t.Fatalf("after failed writes: %d traces stored, err %v; want none", n, err)
	}

	st.Close()
	if err := st.Write(context.Background(), good); err == nil {
		t.Error("Write on a closed store succeeded")
	}
}

// A database that was never migrated makes the INSERT fail on the server.
func TestWriteToMissingTableFails(t *testing.T) {
	st, err := clickhouse.Open(context.Background(), clickhouse.Config{Addr: clickhouse.ServerAddr(), Database: "never_migrated"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Write(context.Background(), sampleBatch("tenant-a")); err == nil || !strings.Contains(err.Error(), "traces") {
		t.Fatalf("Write into a missing table: err = %v, want an error naming traces", err)
	}
}

func TestCountRowsRejectsUnknownTable(t *testing.T) {
	st := clickhouse.OpenMigrated(t)
	if _, err := readback.CountRows(context.Background(), st, clickhouse.Table("system.users; --"), "x"); err == nil {
		t.Fatal("CountRows accepted a table outside the allow-list")
	}
}

func TestConfigValidate(t *testing.T) {
	err := clickhouse.Config{Database: "bad-name", DialTimeout: -1}.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, s := range []string{"address is required", "database", "dial timeout"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	if _, err := clickhouse.Open(context.Background(), clickhouse.Config{Addr: clickhouse.ServerAddr(), Cluster: "no such"}); err == nil {
		t.Error("Open accepted a bad cluster name")
	}
}

// A closed port makes Open fail rather than return a store that fails later.
func TestOpenUnreachable(t *testing.T) {
	if _, err := clickhouse.Open(context.Background(), clickhouse.Config{Addr: "127.0.0.1:1", DialTimeout: time.Second}); err == nil {
		t.Fatal("Open on a closed port succeeded")
	}
}

// A time the time columns cannot hold must be refused, not stored as another time: DateTime
// is an unsigned count of seconds, so the driver wraps 1969 to 2106 and 2200 to 2069.
func TestWriteRefusesTimesOutsideColumnRange(t *testing.T) {
	ctx := context.Background()
	st := clickhouse.OpenMigrated(t)
	for _, ts := range []time.Time{
		time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		b := clickhouse.Batch{Traces: sampleBatch("tenant-a").Traces[:1]}
		b.Traces[0].Timestamp = ts
		o := sampleBatch("tenant-a").Observations[0]
		o.EndTime = ts
		b.Observations = []clickhouse.Observation{o}
		err := st.Write(ctx, b)
		if err == nil {
			got, _ := readback.Traces(ctx, st, "tenant-a", "proj-1")
			t.Fatalf("Write accepted timestamp %s; read back %+v", ts, got)
		}
		for _, s := range []string{"traces[0]: timestamp", "observations[0]: end_time"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not mention %q", err, s)
			}
		}
	}
	if n, err := readback.CountRows(ctx, st, clickhouse.TableTraces, "tenant-a"); err != nil || n != 0 {
		t.Fatalf("%d traces stored, err %v; want none", n, err)
	}
}

// Rows spread over more months than current ClickHouse takes in one insert
// (max_partitions_per_insert_block, 100) are sent in several inserts, each within the limit, so
// that one tenant's far-flung times cannot fail the rows of everyone sharing the insert.
func TestRowsOverManyMonthsAreSplitByPartition(t *testing.T) {
	ctx := context.Background()
	st := clickhouse.OpenMigrated(t)
	base := sampleBatch("tenant-a").Traces[1]
	var traces []clickhouse.Trace
	for m := 0; m < 250; m++ {
		tr := base
		tr.ID = fmt.Sprintf("trace-m%03d", m)
		tr.Timestamp = time.Date(2000, time.Month(1+m), 15, 0, 0, 0, 0, time.UTC)
		traces = append(traces, tr, tr) // two rows a month: a month is never cut in two
	}
	inserts := func() uint64 {
		var n uint64
		if err := st.Conn().QueryRow(ctx, "SELECT value FROM system.events WHERE event = 'InsertQuery'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := inserts()
	if err := st.Write(ctx, clickhouse.Batch{Traces: traces}); err != nil {
		t.Fatal(err)
	}
	if got := inserts() - before; got != 3 {
		t.Errorf("%d inserts for 250 months, want 3 (100 months each at most)", got)
	}
	if n, err := readback.CountRows(ctx, st, clickhouse.TableTraces, "tenant-a"); err != nil || n != 250 {
		t.Fatalf("%d traces stored, err %v; want 250", n, err)
	}

	// The usual batch, within a month or two, is one insert.
	before = inserts()
	if err := st.Write(ctx, clickhouse.Batch{Traces: sampleBatch("tenant-b").Traces}); err != nil {
		t.Fatal(err)
	}
	if got := inserts() - before; got != 1 {
		t.Errorf("%d inserts for one month's rows, want 1", got)
	}
}
