package clickhouse_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/clickhouse/chtest/readback"
	"github.com/trustplane/trustplane/eventing/catalog"
)

func TestLLMCallsRoundTrip(t *testing.T) {
	s := clickhouse.OpenMigrated(t)
	ctx := context.Background()
	ts := time.Date(2026, 11, 3, 10, 20, 30, 0, time.UTC)
	call := clickhouse.LLMCall{
		Envelope: clickhouse.Envelope{TenantID: "acme", ProjectID: "proj-1", ID: "call-1", EventSource: "/trustplane/router", EventID: "call-1",
			Version: 1700000000001, Metadata: map[string]string{"k": "v"}},
		TraceID: "trace-1", Timestamp: ts, Endpoint: "chat.completions", ModelRequested: "gpt", ModelServed: "claude-sonnet-4-5",
		Provider: "anthropic", Status: catalog.LLMCallSuccess, StatusCode: 200, Stream: true, Attempts: 2,
		AttemptsJSON: `[{"provider":"openai","status":"error"},{"provider":"anthropic","status":"success"}]`, UserID: "u-1",
		Usage:     clickhouse.Usage{PromptTokens: 12, CompletionTokens: 30, TotalTokens: 42, InputCost: 0.1, OutputCost: 0.2, TotalCost: 0.30000000000000004},
		LatencyMs: 860.25, GatewayMs: 0.375, ProviderMs: 852.5, TTFTMs: 210, Capture: "truncated",
		Input: `[{"role":"user","content":"hi"}]`, Output: `{"role":"assistant","content":"héllo ✓"}`,
	}
	refused := clickhouse.LLMCall{Envelope: clickhouse.Envelope{TenantID: "acme", ProjectID: "proj-1", ID: "call-2", Version: 1700000000002},
		Timestamp: ts.Add(time.Minute), Endpoint: "embeddings", ModelRequested: "emb", Status: catalog.LLMCallRateLimited, StatusCode: 429,
		Error: "rate limit reached"}
	if err := s.Write(ctx, clickhouse.Batch{LLMCalls: []clickhouse.LLMCall{call, refused}}); err != nil {
		t.Fatal(err)
	}
	// A redelivery of the same call with a later version replaces it.
	again := call
	again.Version++
	if err := s.Write(ctx, clickhouse.Batch{LLMCalls: []clickhouse.LLMCall{again}}); err != nil {
		t.Fatal(err)
	}
	got, err := readback.LLMCalls(ctx, s, "acme", "proj-1")
	if err != nil {
		t.Fatal(err)
	}
	want := []clickhouse.LLMCall{again, refused}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back\n%+v\nwant\n%+v", got, want)
	}
	if n, err := readback.CountRows(ctx, s, clickhouse.TableLLMCalls, "acme"); err != nil || n != 2 {
		t.Errorf("count = %d, %v", n, err)
	}
}

func TestLLMCallsAreValidated(t *testing.T) {
	err := clickhouse.Batch{LLMCalls: []clickhouse.LLMCall{{Envelope: clickhouse.Envelope{TenantID: "a", ProjectID: "p", ID: "c"}, Endpoint: "chat.completions", Status: "ok"}}}.Validate()
	if err == nil || !strings.Contains(err.Error(), "llm_calls[0]: timestamp is required") || !strings.Contains(err.Error(), `got "ok"`) {
		t.Errorf("err = %v", err)
	}
}
