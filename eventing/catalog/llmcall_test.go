package catalog

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestDecodeLLMCall(t *testing.T) {
	c := mustDecode(t, TypeLLMCall, "testdata/llmcall.json").(*LLMCall)
	if c.PartitionKey() != "trace-1" || len(c.Attempts) != 2 || c.Attempts[0].StatusCode != 429 || c.Usage.TotalTokens != 42 ||
		c.Latency.TTFTMs != 210 || c.Status != LLMCallSuccess || !c.Stream || string(c.Output) != `{"role": "assistant", "content": "hello"}` {
		t.Errorf("llm call decoded wrongly: %+v", c)
	}
	if (&LLMCall{ID: "call-2"}).PartitionKey() != "call-2" {
		t.Error("a call outside a trace must be partitioned by its own id")
	}
	ct, _ := Lookup(TypeLLMCall)
	for name, data := range map[string]string{
		"bad status":     `{"id":"c","timestamp":"2026-11-29T10:00:00Z","endpoint":"chat.completions","model_requested":"m","status":"ok","status_code":200,"latency":{"total_ms":1,"gateway_ms":0,"provider_ms":1}}`,
		"no latency":     `{"id":"c","timestamp":"2026-11-29T10:00:00Z","endpoint":"chat.completions","model_requested":"m","status":"success","status_code":200}`,
		"bad endpoint":   `{"id":"c","timestamp":"2026-11-29T10:00:00Z","endpoint":"completions","model_requested":"m","status":"success","status_code":200,"latency":{"total_ms":1,"gateway_ms":0,"provider_ms":1}}`,
		"negative usage": `{"id":"c","timestamp":"2026-11-29T10:00:00Z","endpoint":"embeddings","model_requested":"m","status":"success","status_code":200,"usage":{"prompt_tokens":-1},"latency":{"total_ms":1,"gateway_ms":0,"provider_ms":1}}`,
	} {
		if _, problems := ct.Decode([]byte(data)); len(problems) == 0 {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The schema's status enum and LLMCallStatuses name the same values, in the same order.
func TestLLMCallStatusesAreTheSchemas(t *testing.T) {
	ct, _ := Lookup(TypeLLMCall)
	var schema struct {
		Properties struct {
			Status struct {
				Enum []string `json:"enum"`
			} `json:"status"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(ct.Schema(), &schema); err != nil {
		t.Fatal(err)
	}
	if got, want := schema.Properties.Status.Enum, LLMCallStatuses(); !slices.Equal(got, want) {
		t.Fatalf("schema status enum %v, LLMCallStatuses %v", got, want)
	}
}
