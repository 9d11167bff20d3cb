package ingest

import (
	"encoding/json"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trustplane/trustplane/eventing/catalog"
)

// mapOne maps an export of one span and returns its observation (and the trace, if any).
func mapOne(t *testing.T, td ptrace.Traces) (catalog.Observation, *catalog.Trace) {
	t.Helper()
	m := (&Mapper{Prices: testPrices, MaxEventBytes: 1 << 18}).Map(td, fuzzPrincipal)
	if m.Rejected > 0 {
		t.Fatalf("rejected: %s", m.Message)
	}
	var obs catalog.Observation
	var tr *catalog.Trace
	for _, e := range m.Events {
		switch e.Type() {
		case catalog.TypeObservation:
			if err := json.Unmarshal(e.Data(), &obs); err != nil {
				t.Fatal(err)
			}
		case catalog.TypeTrace:
			tr = new(catalog.Trace)
			if err := json.Unmarshal(e.Data(), tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	return obs, tr
}

func TestMappingOpenLLMetry(t *testing.T) {
	td := ptrace.NewTraces()
	a := span(td, 1, 1).Attributes()
	a.PutStr("gen_ai.system", "OpenAI")
	a.PutStr("llm.request.type", "chat")
	a.PutStr("gen_ai.request.model", "gpt-4o-mini")
	a.PutStr("gen_ai.prompt.1.role", "user")
	a.PutStr("gen_ai.prompt.1.content", "question")
	a.PutStr("gen_ai.prompt.0.role", "system")
	a.PutStr("gen_ai.prompt.0.content", "be brief")
	a.PutStr("gen_ai.completion.0.role", "assistant")
	a.PutStr("gen_ai.completion.0.content", "answer")
	a.PutStr("gen_ai.completion.0.finish_reason", "stop")
	a.PutInt("gen_ai.usage.prompt_tokens", 20)
	a.PutInt("gen_ai.usage.completion_tokens", 5)
	a.PutInt("llm.usage.total_tokens", 25)
	a.PutStr("traceloop.workflow.name", "qa")
	o, tr := mapOne(t, td)
	if o.Type != "GENERATION" || o.Model != "gpt-4o-mini" || o.Usage != (catalog.Usage{PromptTokens: 20, CompletionTokens: 5, TotalTokens: 25}) ||
		string(o.Input) != `[{"content":"be brief","role":"system"},{"content":"question","role":"user"}]` ||
		string(o.Output) != `[{"content":"answer","finish_reason":"stop","role":"assistant"}]` ||
		o.Metadata["gen_ai.provider.name"] != "OpenAI" || o.Metadata["gen_ai.operation.name"] != "chat" || o.Metadata["traceloop.workflow.name"] != "qa" {
		t.Errorf("observation %+v\ninput %s\noutput %s", o, o.Input, o.Output)
	}
	if o.Cost != testPrices.Cost(20, 5, "gpt-4o-mini") || o.Cost.Total == 0 {
		t.Errorf("cost %+v", o.Cost)
	}
	for k := range o.Metadata {
		if strings.HasPrefix(k, "gen_ai.prompt.") || strings.HasPrefix(k, "gen_ai.completion.") || strings.Contains(k, "tokens") || k == "gen_ai.system" || k == "llm.request.type" {
			t.Errorf("metadata holds %s", k)
		}
	}
	if tr == nil || tr.Name != "op" || tr.Metadata["resource.service.name"] != "svc" {
		t.Errorf("trace %+v", tr)
	}
}

func TestMappingOpenInference(t *testing.T) {
	td := ptrace.NewTraces()
	a := span(td, 1, 1).Attributes()
	a.PutStr("openinference.span.kind", "LLM")
	a.PutStr("llm.model_name", "gpt-4o-mini")
	a.PutStr("llm.provider", "openai")
	a.PutStr("llm.invocation_parameters", `{"temperature":0.1}`)
	a.PutStr("llm.input_messages.0.message.role", "user")
	a.PutStr("llm.input_messages.0.message.content", "q")
	a.PutStr("llm.output_messages.0.message.role", "assistant")
	a.PutStr("llm.output_messages.0.message.content", "a")
	a.PutInt("llm.token_count.prompt", 7)
	a.PutInt("llm.token_count.completion", 3)
	a.PutInt("llm.token_count.total", 10)
	a.PutStr("input.value", `{"question":"q"}`)
	a.PutStr("session.id", "s-9")
	o, tr := mapOne(t, td)
	if o.Type != "GENERATION" || o.Model != "gpt-4o-mini" || o.Usage != (catalog.Usage{PromptTokens: 7, CompletionTokens: 3, TotalTokens: 10}) ||
		string(o.Input) != `[{"content":"q","role":"user"}]` || string(o.Output) != `[{"content":"a","role":"assistant"}]` ||
		string(o.ModelParameters) != `{"temperature":0.1}` || o.Metadata["gen_ai.provider.name"] != "openai" || o.Metadata["gen_ai.operation.name"] != "llm" {
		t.Errorf("observation %+v\ninput %s\noutput %s\nparams %s", o, o.Input, o.Output, o.ModelParameters)
	}
	if tr == nil || tr.SessionID != "s-9" {
		t.Errorf("trace %+v", tr)
	}
}

// The GenAI conventions' message events (older instrumentations), errors, and a tool span.
func TestMappingEventsToolsAndErrors(t *testing.T) {
	td := ptrace.NewTraces()
	s := span(td, 1, 1)
	s.Attributes().PutStr("gen_ai.operation.name", "chat")
	s.Attributes().PutStr("gen_ai.request.model", "m")
	for _, e := range []struct{ name, attr, val string }{
		{"gen_ai.system.message", "content", "sys"}, {"gen_ai.user.message", "content", "hi"}, {"gen_ai.choice", "message", `{"content":"yo"}`},
	} {
		ev := s.Events().AppendEmpty()
		ev.SetName(e.name)
		ev.Attributes().PutStr(e.attr, e.val)
	}
	ev := s.Events().AppendEmpty()
	ev.SetName("gen_ai.choice")
	ev.Attributes().PutStr("finish_reason", "stop")
	s.Status().SetCode(ptrace.StatusCodeError)
	s.Status().SetMessage("rate limited")
	o, _ := mapOne(t, td)
	if string(o.Input) != `[{"content":"sys","role":"system"},{"content":"hi","role":"user"}]` ||
		string(o.Output) != `[{"message":{"content":"yo"}},{"finish_reason":"stop"}]` || o.Level != "ERROR" || o.StatusMessage != "rate limited" || o.Cost.Total != 0 {
		t.Errorf("observation %+v\ninput %s\noutput %s", o, o.Input, o.Output)
	}

	td = ptrace.NewTraces()
	tool := span(td, 2, 2)
	tool.SetParentSpanID([8]byte{9})
	tool.Attributes().PutStr("gen_ai.operation.name", "execute_tool")
	tool.Attributes().PutStr("gen_ai.request.model", "m")
	tool.Attributes().PutStr("gen_ai.tool.name", "search")
	o, tr := mapOne(t, td)
	if o.Type != "SPAN" || o.Model != "" || o.Metadata["gen_ai.request.model"] != "m" || o.Metadata["gen_ai.tool.name"] != "search" || o.ParentObservationID != "0900000000000000" {
		t.Errorf("tool span %+v", o)
	}
	if tr != nil {
		t.Errorf("a span with a local parent made trace %+v", tr)
	}
	// A span whose parent is remote starts the trace here.
	tool.SetFlags(0x300)
	if _, tr := mapOne(t, td); tr == nil {
		t.Error("a span with a remote parent made no trace")
	}
}
