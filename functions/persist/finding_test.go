package persist

import (
	"context"
	"net/http"
	"os"
	"testing"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/clickhouse/chtest/readback"
	"github.com/trustplane/trustplane/eventing/catalog"
)

// A finding event writes one row per finding; delivered again it writes the same rows.
func TestFindingsAreStoredOneRowPerFinding(t *testing.T) {
	data, err := os.ReadFile("../../eventing/catalog/testdata/finding.json")
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	g := NewGroupCommit(st, defaultConfig(t).GroupCommit(), nil, nil)
	defer g.Close(context.Background())
	url := serve(t, g)
	e := telemetry("evt-1-findings", catalog.TypeFinding, string(data))
	e.SetExtension(catalog.ExtIngestTime, "2026-11-29T10:00:01Z")
	for i := range 2 {
		if code, body := deliver(t, url, e); code != http.StatusOK {
			t.Fatalf("delivery %d: %d %s", i, code, body)
		}
	}
	rows, err := readback.Findings(context.Background(), st, "acme", "web")
	if err != nil || len(rows) != 2 {
		t.Fatalf("rows %+v, %v", rows, err)
	}
	a, b := rows[0], rows[1]
	if a.SourceType != catalog.TypeObservation || a.SourceID != "obs-1" || a.SourceEventID != "evt-1" || a.TraceID != "trace-1" ||
		a.Side != catalog.SideInput || a.Detector != "secret.aws_access_key" || a.SpanStart != 12 || a.SpanEnd != 32 ||
		a.Preview != "AKIA****************" || len(a.Reasons) != 2 || a.EventID != "evt-1-findings" || a.Version != 1795946401000 {
		t.Errorf("first row %+v", a)
	}
	if b.Detector != "pii.email" || b.Side != catalog.SideOutput || !b.Truncated || b.Fingerprint != "" {
		t.Errorf("second row %+v", b)
	}
}

// An LLM call's inline findings are stored as finding rows of the call.
func TestLLMCallGuardFindingsAreStored(t *testing.T) {
	data, err := os.ReadFile("../../eventing/catalog/testdata/llmcall-guard.json")
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	g := NewGroupCommit(st, defaultConfig(t).GroupCommit(), nil, nil)
	defer g.Close(context.Background())
	url := serve(t, g)
	if code, body := deliver(t, url, telemetry("call-2", catalog.TypeLLMCall, string(data))); code != http.StatusOK {
		t.Fatalf("%d %s", code, body)
	}
	rows, err := readback.Findings(context.Background(), st, "acme", "web")
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows %+v, %v", rows, err)
	}
	if f := rows[0]; f.SourceType != catalog.TypeLLMCall || f.SourceID != "call-2" || f.Side != catalog.SideRequest || f.Action != catalog.ActionMask {
		t.Errorf("row %+v", f)
	}
	if n, err := readback.CountRows(context.Background(), st, clickhouse.TableLLMCalls, "acme"); err != nil || n != 1 {
		t.Errorf("llm_calls rows %d, %v", n, err)
	}
}
