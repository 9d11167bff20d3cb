package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/trustplane/trustplane/functions/router"
)

// routerCall posts a chat completion to router and returns the status, the recorded call's id
// and the body.
func (p plane) routerCall(t *testing.T, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.router+router.PathChat, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+p.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get(router.HeaderCallID), string(b)
}

// TestRouterCallsReachClickHouse: a call through router (its built-in mock models, as `make
// run` starts it) becomes an llm-call event that the dispatcher delivers to persist and that
// lands in ClickHouse with the key's tenant, its tokens, cost and latency.
func TestRouterCallsReachClickHouse(t *testing.T) {
	p := startPlane(t)
	code, id, body := p.routerCall(t, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}]}`)
	if code != http.StatusOK || id == "" || !strings.Contains(body, "mock reply to: hello there") {
		t.Fatalf("chat: %d %s", code, body)
	}
	code, streamID, body := p.routerCall(t, `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"stream please"}]}`)
	if code != http.StatusOK || !strings.HasSuffix(body, "data: [DONE]\n\n") {
		t.Fatalf("stream: %d %s", code, body)
	}
	code, unknownID, _ := p.routerCall(t, `{"model":"no-such-model","messages":[{"role":"user","content":"x"}]}`)
	if code != http.StatusNotFound {
		t.Fatalf("unknown model: %d", code)
	}
	for _, callID := range []string{id, streamID, unknownID} {
		p.eventually(t, "llm_calls", "id", callID, 1)
	}
	var tenant, status, served string
	var tokens uint64
	var cost, providerMs float64
	if err := p.db.QueryRow(context.Background(), "SELECT tenant_id, status, model_served, total_tokens, total_cost, provider_ms FROM trustplane.llm_calls FINAL WHERE id = ?", id).
		Scan(&tenant, &status, &served, &tokens, &cost, &providerMs); err != nil {
		t.Fatal(err)
	}
	if tenant != "demo" || status != "success" || served != "mock-gpt-4o-mini" || tokens == 0 || cost <= 0 {
		t.Errorf("stored call: tenant %s status %s model %s tokens %d cost %v", tenant, status, served, tokens, cost)
	}
	var stream uint8
	var ttft float64
	if err := p.db.QueryRow(context.Background(), "SELECT stream, ttft_ms, status FROM trustplane.llm_calls FINAL WHERE id = ?", streamID).Scan(&stream, &ttft, &status); err != nil {
		t.Fatal(err)
	}
	if stream != 1 || ttft <= 0 || status != "success" {
		t.Errorf("stored stream: stream %d ttft %v status %s", stream, ttft, status)
	}
	if err := p.db.QueryRow(context.Background(), "SELECT status FROM trustplane.llm_calls FINAL WHERE id = ?", unknownID).Scan(&status); err != nil || status != "invalid" {
		t.Errorf("stored refusal: %s %v", status, err)
	}
}
