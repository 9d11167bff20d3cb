package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/trustplane/trustplane/eventing/catalog"
)

// TestSecretInAnObservationYieldsOneFindingRow: an observation posted to ingest with an AWS key
// in its input reaches guard by its Trigger; guard's reply, a finding event, reaches persist by
// the persist-findings Trigger, and ClickHouse holds exactly one finding row for it. The same
// event posted again (what a client's retry or a redelivery does: the same event reaches guard
// a second time) is checked again and answered with the same finding event, and the row is
// still one.
func TestSecretInAnObservationYieldsOneFindingRow(t *testing.T) {
	p := startPlane(t)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	const key = "AKIAJ4Q2MZ7XK3P5RTLV"
	event := ce("guard-1", catalog.TypeObservation, `{"id":"obs-secret","trace_id":"trace-secret","type":"GENERATION","start_time":"`+now+`",`+
		`"input":[{"role":"user","content":"deploy it with `+key+` please"}],"output":"done"}`)
	structured := map[string]string{"Content-Type": "application/cloudevents+json"}
	for i := range 2 {
		if code := p.post(t, p.key, structured, event); code != http.StatusAccepted {
			t.Fatalf("post %d: %d", i, code)
		}
	}
	p.eventually(t, "observations", "id", "obs-secret", 1)
	p.eventually(t, "findings", "source_id", "obs-secret", 1)
	// Both deliveries were checked and both replies stored (two observations and two finding
	// events: four deliveries to persist); the bound only ends a hang.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		g, s := metrics(t, p.guard), p.persistMetrics(t)
		if g[`trustplane_guard_events_total{outcome="findings"}`] == 2 && s[`trustplane_persist_events_total{outcome="stored"}`] == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("guard %v, persist %v", g, s)
		}
	}
	if n := p.count(t, "findings", "source_id", "obs-secret"); n != 1 {
		t.Fatalf("%d finding rows after the second delivery, want 1", n)
	}
	var tenant, project, sourceType, side, detector, preview, action, traceID string
	var start, end uint32
	if err := p.db.QueryRow(context.Background(), "SELECT tenant_id, project_id, source_type, trace_id, side, detector, preview, action, span_start, span_end "+
		"FROM trustplane.findings FINAL WHERE source_id = 'obs-secret'").Scan(&tenant, &project, &sourceType, &traceID, &side, &detector, &preview, &action, &start, &end); err != nil {
		t.Fatal(err)
	}
	if tenant != "demo" || project != "demo" || sourceType != catalog.TypeObservation || traceID != "trace-secret" || side != "input" ||
		detector != "secret.aws_access_key" || action != "observe" || preview == key || end-start != uint32(len(key)) {
		t.Errorf("row: %s %s %s %s %s %s %q %s %d-%d", tenant, project, sourceType, traceID, side, detector, preview, action, start, end)
	}
	var leaked uint64
	if err := p.db.QueryRow(context.Background(), "SELECT count() FROM trustplane.findings WHERE position(preview, ?) > 0 OR position(fingerprint, ?) > 0", key, key).Scan(&leaked); err != nil || leaked != 0 {
		t.Errorf("the key is stored in findings: %d, %v", leaked, err)
	}
}
