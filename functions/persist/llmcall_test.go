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

func TestLLMCallsAreStored(t *testing.T) {
	data, err := os.ReadFile("../../eventing/catalog/testdata/llmcall.json")
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	g := NewGroupCommit(st, defaultConfig(t).GroupCommit(), nil, nil)
	defer g.Close(context.Background())
	url := serve(t, g)
	e := telemetry("call-1", catalog.TypeLLMCall, string(data))
	// Delivered twice, stored once.
	for i := range 2 {
		if code, body := deliver(t, url, e); code != http.StatusOK {
			t.Fatalf("delivery %d: %d %s", i, code, body)
		}
	}
	calls, err := readback.LLMCalls(context.Background(), st, "acme", "web")
	if err != nil || len(calls) != 1 {
		t.Fatalf("calls %+v, %v", calls, err)
	}
	c := calls[0]
	if c.ID != "call-1" || c.EventSource != "/test" || c.TraceID != "trace-1" || c.ModelRequested != "gpt-4o" || c.ModelServed != "claude-sonnet-4-5" ||
		c.Provider != "anthropic" || c.Status != catalog.LLMCallSuccess || c.StatusCode != 200 || !c.Stream || c.Attempts != 2 ||
		c.TotalTokens != 42 || c.TotalCost != 0.000486 || c.GatewayMs != 0.4 || c.TTFTMs != 210 || c.Capture != "full" ||
		c.Input != `[{"role": "user", "content": "hi"}]` ||
		c.AttemptsJSON != `[{"provider":"openai","model":"gpt-4o","status":"error","status_code":429,"error":"rate limited","latency_ms":12.5},{"provider":"anthropic","model":"claude-sonnet-4-5","status":"success","status_code":200,"latency_ms":840}]` {
		t.Errorf("stored %+v", c)
	}

	// A refusal without attempts or usage is stored too.
	refused := telemetry("call-2", catalog.TypeLLMCall, `{"id":"call-2","timestamp":"2026-11-29T10:00:00Z","endpoint":"chat.completions","model_requested":"gpt","status":"rate_limited","status_code":429,"latency":{"total_ms":0.2,"gateway_ms":0.2,"provider_ms":0}}`)
	if code, body := deliver(t, url, refused); code != http.StatusOK {
		t.Fatalf("refusal: %d %s", code, body)
	}
	if n, err := readback.CountRows(context.Background(), st, clickhouse.TableLLMCalls, "acme"); err != nil || n != 2 {
		t.Errorf("llm_calls rows %d, %v", n, err)
	}
}
