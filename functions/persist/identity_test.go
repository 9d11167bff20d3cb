package persist

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/clickhouse/chtest/readback"
	"github.com/trustplane/trustplane/eventing/catalog"
)

// An entity's row is keyed by tenant, project, the day of its time and its payload id, not by
// the CloudEvent that wrote it: a re-post replaces the row (an upsert), and of two events
// writing one row the one ingest received last (ingesttime, the row's version) wins, whatever
// their CloudEvents ids and sources and in whatever order persist receives them. An entity
// re-posted with its time on another day is a second row. The README, the catalog's README
// and clickhouse/README.md state these rules; each case here goes through persist's HTTP
// endpoint into ClickHouse and is read back with FINAL, as queries read.
func TestAnEntityIsOneRowPerPayloadIDAndDay(t *testing.T) {
	st := openStore(t)
	g := NewGroupCommit(st, defaultConfig(t).GroupCommit(), nil, nil)
	defer g.Close(context.Background())
	url := serve(t, g)
	post := func(ceID, source, ingestTime, data string) {
		t.Helper()
		h := binaryHeaders(ceID, catalog.TypeTrace)
		h["ce-source"], h["ce-ingesttime"] = source, ingestTime
		if code, body := postBinary(t, url, h, data); code != http.StatusOK {
			t.Fatalf("delivery %s: %d %s", ceID, code, body)
		}
	}
	traces := func(id string) []clickhouse.Trace {
		t.Helper()
		all, err := readback.Traces(context.Background(), st, "acme", "web")
		if err != nil {
			t.Fatal(err)
		}
		var out []clickhouse.Trace
		for _, tr := range all {
			if tr.ID == id {
				out = append(out, tr)
			}
		}
		return out
	}

	t.Run("the same event re-posted", func(t *testing.T) {
		const data = `{"id":"same","timestamp":"2026-11-29T10:00:00Z","name":"first"}`
		for range 3 { // a redelivery carries the event's own ingesttime
			post("e-same", "/app", "2026-11-29T10:00:01Z", data)
		}
		if rows := traces("same"); len(rows) != 1 || rows[0].EventID != "e-same" || rows[0].Name != "first" {
			t.Fatalf("rows %+v, want one", rows)
		}
	})

	t.Run("another event with the same payload id", func(t *testing.T) {
		// The later one (by ingesttime) reaches persist first: it still wins, from another
		// source and with another CloudEvents id.
		post("e-late", "/app-b", "2026-11-29T10:00:09Z", `{"id":"upsert","timestamp":"2026-11-29T10:00:00Z","name":"updated"}`)
		post("e-early", "/app-a", "2026-11-29T10:00:05Z", `{"id":"upsert","timestamp":"2026-11-29T10:00:00Z","name":"original"}`)
		rows := traces("upsert")
		if len(rows) != 1 {
			t.Fatalf("%d rows for one payload id, want 1: %+v", len(rows), rows)
		}
		want := time.Date(2026, 11, 29, 10, 0, 9, 0, time.UTC)
		if r := rows[0]; r.EventID != "e-late" || r.EventSource != "/app-b" || r.Name != "updated" || r.Version != uint64(want.UnixMilli()) {
			t.Fatalf("row %+v, want the event received last by ingesttime (e-late)", r)
		}
		// A still later update replaces it again.
		post("e-later", "/app-a", "2026-11-29T10:00:12Z", `{"id":"upsert","timestamp":"2026-11-29T10:00:00Z","name":"final"}`)
		if rows := traces("upsert"); len(rows) != 1 || rows[0].EventID != "e-later" || rows[0].Name != "final" {
			t.Fatalf("rows %+v, want e-later's alone", rows)
		}
	})

	t.Run("the time moved within its day", func(t *testing.T) {
		post("e-m1", "/app", "2026-11-29T10:00:01Z", `{"id":"moved","timestamp":"2026-11-29T10:00:00Z"}`)
		post("e-m2", "/app", "2026-11-29T10:00:02Z", `{"id":"moved","timestamp":"2026-11-29T23:59:59Z"}`)
		if rows := traces("moved"); len(rows) != 1 || rows[0].EventID != "e-m2" || !rows[0].Timestamp.Equal(time.Date(2026, 11, 29, 23, 59, 59, 0, time.UTC)) {
			t.Fatalf("rows %+v, want one with the new time", rows)
		}
	})

	t.Run("the time moved to another day", func(t *testing.T) {
		post("e-d1", "/app", "2026-11-29T10:00:01Z", `{"id":"other-day","timestamp":"2026-11-29T23:59:59Z"}`)
		post("e-d2", "/app", "2026-11-29T10:00:02Z", `{"id":"other-day","timestamp":"2026-11-30T00:00:00Z"}`)
		rows := traces("other-day")
		if len(rows) != 2 || rows[0].EventID != "e-d1" || rows[1].EventID != "e-d2" {
			t.Fatalf("rows %+v, want two: the day is part of the key", rows)
		}
	})
}
