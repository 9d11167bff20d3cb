package main

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/trustplane/trustplane/internal/otlptest"
)

// An application instrumented with the official OpenTelemetry Go SDK, its OTLP/HTTP exporter
// pointed at ingest's /v1/traces with the key in a header, protobuf and JSON, gzip on and
// off: its trace and both spans are rows in ClickHouse, each exactly once, and an export sent
// again (as an exporter's retry does) still counts once.
func TestOTLPExportsReachClickHouseExactlyOnce(t *testing.T) {
	p := startPlane(t)
	ctx := context.Background()
	type sent struct {
		name                   string
		traceID, rootID, genID string
		relay                  *otlptest.Relay
	}
	var all []sent
	for _, c := range []struct {
		name       string
		json, gzip bool
	}{{"protobuf", false, false}, {"protobuf+gzip", false, true}, {"json", true, false}, {"json+gzip", true, true}} {
		relay := otlptest.NewRelay(p.ingest+"/v1/traces", c.json)
		t.Cleanup(relay.Close)
		exp, err := otlptest.Exporter(ctx, relay.URL+"/v1/traces", p.key, c.gzip)
		if err != nil {
			t.Fatal(err)
		}
		traceID, rootID, genID, err := otlptest.Export(ctx, exp, "e2e-"+c.name, time.Now().UTC())
		if err != nil {
			t.Fatalf("%s: export: %v", c.name, err)
		}
		if n := len(relay.Bodies()); n != 1 {
			t.Fatalf("%s: the exporter sent %d exports, want 1", c.name, n)
		}
		all = append(all, sent{c.name, traceID, rootID, genID, relay})
	}
	for _, s := range all {
		p.eventually(t, "traces", "id", s.traceID, 1)
		p.eventually(t, "observations", "id", s.rootID, 1)
		p.eventually(t, "observations", "id", s.genID, 1)
		var typ, model, tenant string
		var prompt, completion uint64
		err := p.db.QueryRow(ctx, "SELECT type, model, tenant_id, prompt_tokens, completion_tokens FROM trustplane.observations FINAL WHERE id = ?", s.genID).
			Scan(&typ, &model, &tenant, &prompt, &completion)
		if err != nil || typ != "GENERATION" || model != "gpt-4o-mini-2024-07-18" || tenant != "demo" || prompt != 1000 || completion != 500 {
			t.Errorf("%s: generation row %s %s %s %d %d (%v)", s.name, typ, model, tenant, prompt, completion, err)
		}
	}

	// Each export sent again, as it was: persist stores the deliveries, and every entity is
	// still one row.
	stored := func() float64 { return p.persistMetrics(t)[`trustplane_persist_events_total{outcome="stored"}`] }
	before := stored()
	for _, s := range all {
		b := s.relay.Bodies()[0]
		req, err := http.NewRequest(http.MethodPost, p.ingest+"/v1/traces", bytes.NewReader(b.Bytes))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+p.key)
		req.Header.Set("Content-Type", b.ContentType)
		if b.ContentEncoding != "" {
			req.Header.Set("Content-Encoding", b.ContentEncoding)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: re-sent export: status %d", s.name, resp.StatusCode)
		}
	}
	want := before + float64(3*len(all))
	for deadline := time.Now().Add(60 * time.Second); stored() < want; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("persist stored %v deliveries, want %v: the re-sent exports' events", stored(), want)
		}
	}
	for _, s := range all {
		for table, id := range map[string]string{"traces": s.traceID} {
			if n := p.count(t, table, "id", id); n != 1 {
				t.Errorf("%s: %s %s: %d rows after the re-send, want 1", s.name, table, id, n)
			}
		}
		for _, id := range []string{s.rootID, s.genID} {
			if n := p.count(t, "observations", "id", id); n != 1 {
				t.Errorf("%s: observation %s: %d rows after the re-send, want 1", s.name, id, n)
			}
		}
	}
}
