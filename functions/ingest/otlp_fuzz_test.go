package ingest

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/trustplane/trustplane/eventing/catalog"
)

// checkMapped holds Map's promises for any input: every span is either mapped or rejected;
// every event is a catalog event persist decodes, stamped with the key's tenant, with an id
// derived from its trace and span ids; a rejection says why.
func checkMapped(t *testing.T, td ptrace.Traces, m Mapped) {
	t.Helper()
	if m.Spans+m.Rejected != td.SpanCount() {
		t.Fatalf("%d spans mapped and %d rejected of %d", m.Spans, m.Rejected, td.SpanCount())
	}
	if (m.Rejected > 0) != (m.Message != "") {
		t.Fatalf("%d rejected with message %q", m.Rejected, m.Message)
	}
	observations := 0
	for _, e := range m.Events {
		typ, ok := catalog.Lookup(e.Type())
		if !ok {
			t.Fatalf("event of unknown type %s", e.Type())
		}
		p, err := typ.Unmarshal(e.Data())
		if err != nil {
			t.Fatalf("persist cannot decode %s: %v\n%s", e.Type(), err, e.Data())
		}
		if e.Extensions()[catalog.ExtTenant] != "acme" || e.Extensions()[catalog.ExtPartitionKey] != p.PartitionKey() {
			t.Fatalf("event %s: extensions %v", e.ID(), e.Extensions())
		}
		switch v := p.(type) {
		case *catalog.Observation:
			observations++
			if e.ID() != "otlp-span-"+v.TraceID+"-"+v.ID {
				t.Fatalf("observation event id %s for span %s of trace %s", e.ID(), v.ID, v.TraceID)
			}
		case *catalog.Trace:
			if e.ID() != "otlp-trace-"+v.ID {
				t.Fatalf("trace event id %s for trace %s", e.ID(), v.ID)
			}
		default:
			t.Fatalf("event of type %s", e.Type())
		}
	}
	if observations != m.Spans {
		t.Fatalf("%d observations for %d mapped spans", observations, m.Spans)
	}
}

func seedExport() ptrace.Traces {
	td := ptrace.NewTraces()
	s := span(td, 1, 1)
	a := s.Attributes()
	a.PutStr("gen_ai.operation.name", "chat")
	a.PutStr("gen_ai.request.model", "gpt-4o-mini")
	a.PutInt("gen_ai.usage.input_tokens", 10)
	a.PutStr("gen_ai.prompt.0.role", "user")
	a.PutStr("gen_ai.prompt.0.content", "hi")
	a.PutStr("llm.input_messages.0.message.content", "hi")
	ev := s.Events().AppendEmpty()
	ev.SetName("gen_ai.choice")
	ev.Attributes().PutStr("message", `{"content":"hello"}`)
	child := span(td, 1, 2)
	child.SetParentSpanID(s.SpanID())
	child.Attributes().PutStr("openinference.span.kind", "LLM")
	child.Attributes().PutDouble("llm.token_count.prompt", 3)
	return td
}

// FuzzOTLPDecode feeds arbitrary bytes to both OTLP decoders and maps whatever decodes.
func FuzzOTLPDecode(f *testing.F) {
	td := seedExport()
	req := ptraceotlp.NewExportRequestFromTraces(td)
	pb, _ := req.MarshalProto()
	js, _ := req.MarshalJSON()
	f.Add(pb, false)
	f.Add(js, true)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","startTimeUnixNano":"1764410400000000000","attributes":[{"key":"gen_ai.request.model","value":{"stringValue":"m"}}]}]}]}]}`), true)
	f.Add([]byte{0x0a, 0x00}, false)
	m := &Mapper{Prices: testPrices, MaxEventBytes: 1 << 16}
	f.Fuzz(func(t *testing.T, body []byte, json bool) {
		req := ptraceotlp.NewExportRequest()
		var err error
		if json {
			err = req.UnmarshalJSON(body)
		} else {
			err = req.UnmarshalProto(body)
		}
		if err != nil {
			return
		}
		checkMapped(t, req.Traces(), checkSameAsValidated(t, *m, req.Traces()))
	})
}

// FuzzOTLPMapping builds spans from fuzzed names, attribute keys and values of every type,
// times and flags, so that the mapper meets what decoders rarely produce.
func FuzzOTLPMapping(f *testing.F) {
	f.Add("chat", "gen_ai.usage.input_tokens", "12", int64(5), 1.5, uint64(1764410400000000000), uint64(1764410401000000000), uint32(0x300), "gen_ai.user.message")
	f.Add("x", "gen_ai.prompt.1.content", `{"a":[1,2]}`, int64(-1), 0.0, uint64(1), uint64(0), uint32(0), "gen_ai.choice")
	f.Add("", "llm.invocation_parameters", `{"temperature":0.5}`, int64(1<<62), -1.0, uint64(0), uint64(5), uint32(0x100), "")
	f.Add("y", "input.value", "[", int64(0), 1e300, uint64(1<<63), uint64(1<<63), uint32(0xffffffff), "gen_ai.client.inference.operation.details")
	m := &Mapper{Prices: testPrices, MaxEventBytes: 1 << 16}
	keys := []string{"gen_ai.operation.name", "gen_ai.request.model", "gen_ai.response.model", "gen_ai.usage.output_tokens",
		"llm.token_count.total", "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
		"llm.output_messages.0.message.role", "gen_ai.completion.0.content", "gen_ai.request.temperature", "openinference.span.kind"}
	f.Fuzz(func(t *testing.T, name, key, val string, n int64, d float64, start, end uint64, flags uint32, event string) {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr(key, val)
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName(name)
		for i, k := range append([]string{key}, keys...) {
			s := ss.Spans().AppendEmpty()
			s.SetName(name)
			s.SetTraceID(pcommon.TraceID{byte(n), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, byte(i)})
			s.SetSpanID(pcommon.SpanID{byte(i + 1), byte(n >> 8), 3, 4, 5, 6, 7, 8})
			if i%2 == 1 {
				s.SetParentSpanID(pcommon.SpanID{1})
			}
			s.SetFlags(flags)
			s.SetStartTimestamp(pcommon.Timestamp(start))
			s.SetEndTimestamp(pcommon.Timestamp(end))
			a := s.Attributes()
			a.PutStr("gen_ai.operation.name", []string{"chat", "execute_tool", "", name}[i%4])
			switch i % 5 {
			case 0:
				a.PutStr(k, val)
			case 1:
				a.PutInt(k, n)
			case 2:
				a.PutDouble(k, d)
			case 3:
				sl := a.PutEmptySlice(k)
				sl.AppendEmpty().SetStr(val)
				sl.AppendEmpty().SetDouble(d)
			case 4:
				mp := a.PutEmptyMap(k)
				mp.PutStr(val, name)
				mp.PutDouble("d", d)
			}
			if event != "" {
				e := s.Events().AppendEmpty()
				e.SetName(event)
				e.SetTimestamp(pcommon.NewTimestampFromTime(time.Unix(0, int64(start))))
				e.Attributes().PutStr(strings.TrimPrefix(k, "gen_ai."), val)
				e.Attributes().PutStr(key, val)
			}
		}
		checkMapped(t, td, checkSameAsValidated(t, *m, td))
	})
}
