package ingest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/trustplane/trustplane/eventing/catalog"
)

// checkSameAsValidated maps td twice, once skipping the validator for what provenValid proves
// valid and once validating every event, and requires the same outcome: the same events (but
// for their ingest time), the same rejections with the same messages. An event provenValid
// passed that the validator refuses would show as a difference. The validator lists a span's
// several problems in no fixed order, so a message naming several is only required to be
// there.
func checkSameAsValidated(t *testing.T, m Mapper, td ptrace.Traces) Mapped {
	t.Helper()
	fast := m.Map(td, fuzzPrincipal)
	m.validateAll = true
	slow := m.Map(td, fuzzPrincipal)
	sameMessage := fast.Message == slow.Message ||
		strings.Contains(slow.Message, " more problems)") && fast.Message != ""
	if fast.Spans != slow.Spans || fast.Rejected != slow.Rejected || !sameMessage || len(fast.Events) != len(slow.Events) {
		t.Fatalf("skipping the validator: %d spans, %d rejected (%q), %d events; validating all: %d, %d (%q), %d",
			fast.Spans, fast.Rejected, fast.Message, len(fast.Events), slow.Spans, slow.Rejected, slow.Message, len(slow.Events))
	}
	for i := range fast.Events {
		f, s := fast.Events[i], slow.Events[i]
		fe, se := f.Extensions(), s.Extensions()
		if f.ID() != s.ID() || f.Type() != s.Type() || f.Source() != s.Source() || f.DataContentType() != s.DataContentType() ||
			string(f.Data()) != string(s.Data()) || len(fe) != len(se) {
			t.Fatalf("event %d differs:\n%s\n%s", i, f, s)
		}
		for k, v := range se {
			if k != catalog.ExtIngestTime && fe[k] != v {
				t.Fatalf("event %d: extension %s is %v, validated %v", i, k, fe[k], v)
			}
		}
		if _, ok := fe[catalog.ExtIngestTime]; !ok {
			t.Fatalf("event %d has no ingest time", i)
		}
	}
	return fast
}

// TestMappedEventsSkipOnlyWhatTheValidatorAccepts builds spans whose values sit on both sides
// of every bound of the catalog's schemas (lengths, counts, times, nesting, numbers) and
// checks that skipping the validator changes nothing: what it would refuse is still refused,
// with the same message. The generator is seeded.
func TestMappedEventsSkipOnlyWhatTheValidatorAccepts(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 1))
	m := Mapper{Prices: testPrices, MaxEventBytes: 1 << 20}
	text := func(n int) string {
		// Multi-byte characters, so that bytes and characters differ, and now and then
		// invalid UTF-8.
		var b strings.Builder
		for b.Len() < n {
			switch rng.IntN(8) {
			case 0:
				b.WriteString("é")
			case 1:
				b.WriteByte(0xff)
			case 2:
				b.WriteString("<&>\u2028")
			default:
				b.WriteByte(byte('a' + rng.IntN(26)))
			}
		}
		return b.String()
	}
	// near is a length or count around a bound, now and then; most values are well inside,
	// so that some spans cross no bound at all.
	near := func(bound int) int {
		if rng.IntN(6) != 0 {
			return rng.IntN(min(bound, 16))
		}
		return max(0, bound-3+rng.IntN(7))
	}
	nested := func(depth int) string {
		return strings.Repeat(`{"a":[`, depth/2) + "1" + strings.Repeat("]}", depth/2)
	}
	values := []func() string{
		func() string { return text(near(512)) },
		func() string { return text(near(4096)) },
		func() string { return text(near(128)) },
		func() string { return nested(near(10000)) },
		func() string { return `[1e100000, 1` + strings.Repeat("0", near(1000)) + `]` },
		func() string { return `{"temperature":0.5,"x":` + nested(near(10000)) + `}` },
		func() string {
			var b strings.Builder
			b.WriteString("{")
			for i := range near(64) {
				fmt.Fprintf(&b, `"p%d":%d,`, i, i)
			}
			b.WriteString(`"last":true}`)
			return b.String()
		},
		func() string { return fmt.Sprint(near(1_000_000_000_000)) },
		func() string { return "" },
	}
	keys := []string{"gen_ai.request.model", "gen_ai.response.model", "gen_ai.usage.input_tokens",
		"gen_ai.usage.output_tokens", "llm.usage.total_tokens", "gen_ai.input.messages", "gen_ai.output.messages",
		"gen_ai.system_instructions", "input.value", "output.value", "llm.invocation_parameters",
		"gen_ai.prompt.0.content", "llm.output_messages.0.message.content", "user.id", "session.id", "x"}
	times := []uint64{0, 1, 999_999_999, 1_000_000_000, math.MaxUint32 * 1_000_000_000,
		(math.MaxUint32 + 1) * 1_000_000_000, math.MaxUint64}
	time := func() uint64 {
		if rng.IntN(4) == 0 {
			return times[rng.IntN(len(times))]
		}
		return 1_764_410_400_000_000_000 + rng.Uint64N(1e12)
	}
	var proven, unproven, rejected int
	for round := range 300 {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		for i := range near(60) {
			rs.Resource().Attributes().PutStr(fmt.Sprintf("r%d", i), "v")
		}
		rs.Resource().Attributes().PutStr("service.version", values[rng.IntN(len(values))]())
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName(text(rng.IntN(40)))
		for j := range 4 {
			s := ss.Spans().AppendEmpty()
			s.SetTraceID(pcommon.TraceID{byte(round), byte(round >> 8), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, byte(j / 2)})
			s.SetSpanID(pcommon.SpanID{byte(j + 1), byte(round), 3, 4, 5, 6, 7, 8})
			if j%2 == 1 {
				s.SetParentSpanID(pcommon.SpanID{1, byte(round), 3, 4, 5, 6, 7, 8})
			}
			s.SetName(text(near(512)))
			start := time()
			s.SetStartTimestamp(pcommon.Timestamp(start))
			s.SetEndTimestamp(pcommon.Timestamp(max(start, time())))
			if rng.IntN(3) == 0 {
				s.Status().SetCode(ptrace.StatusCodeError)
				s.Status().SetMessage(text(near(4096)))
			}
			a := s.Attributes()
			a.PutStr("gen_ai.operation.name", []string{"chat", "execute_tool", ""}[rng.IntN(3)])
			for range 1 + rng.IntN(6) {
				k := keys[rng.IntN(len(keys))]
				switch rng.IntN(4) {
				case 0:
					a.PutInt(k, int64(near(1_000_000_000_000)))
				case 1:
					a.PutDouble(k, []float64{math.NaN(), math.Inf(1), 1e300, math.Copysign(0, -1), 0.5}[rng.IntN(5)])
				default:
					a.PutStr(k, values[rng.IntN(len(values))]())
				}
			}
			for i := range max(0, near(64)-8+rng.IntN(4)) {
				a.PutStr(fmt.Sprintf("m%d", i), "v")
			}
			if rng.IntN(8) == 0 {
				a.PutStr(string([]byte{0xff, byte(j)}), "bad key")
				a.PutStr(string([]byte{0xfe, byte(j)}), "bad key")
			}
		}
		got := checkSameAsValidated(t, m, td)
		rejected += got.Rejected
		for _, e := range got.Events {
			typ, _ := catalog.Lookup(e.Type())
			p, err := typ.Unmarshal(e.Data())
			if err != nil {
				t.Fatal(err)
			}
			if provenValid(p) {
				proven++
			} else {
				unproven++
			}
		}
	}
	// The generator reaches all three outcomes.
	t.Logf("%d events proven valid, %d validated, %d spans rejected", proven, unproven, rejected)
	if proven == 0 || unproven == 0 || rejected == 0 {
		t.Fatalf("%d events proven valid, %d validated, %d spans rejected", proven, unproven, rejected)
	}
}

// TestBenchSpansSkipTheValidator: the spans of the benchmarks are proven valid, so the
// validator is skipped for each of their events.
func TestBenchSpansSkipTheValidator(t *testing.T) {
	m := Mapper{Prices: testPrices, MaxEventBytes: 1 << 18}
	for _, raw := range genAIExports(2, 100, 10) {
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(raw); err != nil {
			t.Fatal(err)
		}
		td := req.Traces()
		got := checkSameAsValidated(t, m, td)
		for _, e := range got.Events {
			typ, _ := catalog.Lookup(e.Type())
			p, err := typ.Unmarshal(e.Data())
			if err != nil {
				t.Fatal(err)
			}
			if !provenValid(p) {
				t.Fatalf("not proven valid: %s", e.Data())
			}
		}
	}
}
