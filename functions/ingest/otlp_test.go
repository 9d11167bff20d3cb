package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/eventing/pricing"
	"github.com/trustplane/trustplane/internal/otlptest"
	"github.com/trustplane/trustplane/kafka"
	"github.com/trustplane/trustplane/kafka/kafkatest"
)

var testPrices = pricing.Table{"gpt-4o-mini": {InputPerMTok: 0.15, OutputPerMTok: 0.6}}

func newOTLPFixture(t *testing.T, limits Limits) fixture {
	t.Helper()
	f := newFixture(t, limits)
	f.srv.Config.Handler.(*Handler).mapper.Prices = testPrices
	return f
}

// The official Go SDK's OTLP/HTTP exporter, protobuf and (through a relay that re-encodes its
// exports with pdata) JSON, gzip on and off: each export becomes a trace and its two
// observations in Kafka, the generation with its model, usage, cost, messages and metadata.
func TestGoSDKExportsBecomeCatalogEvents(t *testing.T) {
	for _, c := range []struct {
		name       string
		json, gzip bool
	}{{"protobuf", false, false}, {"protobuf+gzip", false, true}, {"json", true, false}, {"json+gzip", true, true}} {
		t.Run(c.name, func(t *testing.T) {
			f := newOTLPFixture(t, defaultLimits())
			url := f.srv.URL + PathTraces
			if c.json {
				relay := otlptest.NewRelay(url, true)
				defer relay.Close()
				url = relay.URL + PathTraces
			}
			ctx := context.Background()
			exp, err := otlptest.Exporter(ctx, url, f.keys.ingest, c.gzip)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
			traceID, rootID, genID, err := otlptest.Export(ctx, exp, "chat-app", start)
			if err != nil {
				t.Fatalf("export: %v", err)
			}
			if n := counted(f.srv.Config.Handler.(*Handler).spans.WithLabelValues(StatusAccepted)); n != 2 {
				t.Errorf("otlp_spans_total{outcome=accepted} = %v, want 2", n)
			}
			byID := map[string]mappedEvent{}
			for _, e := range readTopic(t, f.topic, 3) {
				if e.Extensions()[catalog.ExtTenant] != "acme" || e.Extensions()[catalog.ExtPartitionKey] != traceID {
					t.Errorf("event %s: extensions %v", e.ID(), e.Extensions())
				}
				byID[e.ID()] = mappedEvent{typ: e.Type(), data: e.Data()}
			}
			tr := decodeAs[catalog.Trace](t, byID, "otlp-trace-"+traceID, catalog.TypeTrace)
			if tr.ID != traceID || !tr.Timestamp.Equal(start) || tr.Name != "handle question" || tr.UserID != "u-1" || tr.SessionID != "s-1" ||
				tr.Environment != "test" || tr.Version != "1.2.3" || tr.Metadata["resource.service.name"] != "chat-app" ||
				tr.Metadata["resource.telemetry.sdk.language"] != "go" || tr.Metadata["otel.scope.name"] != "trustplane/otlptest" {
				t.Errorf("trace %+v", tr)
			}
			root := decodeAs[catalog.Observation](t, byID, "otlp-span-"+traceID+"-"+rootID, catalog.TypeObservation)
			if root.Type != "SPAN" || root.ParentObservationID != "" || root.Model != "" || root.Metadata["service.name"] != "chat-app" {
				t.Errorf("root observation %+v", root)
			}
			gen := decodeAs[catalog.Observation](t, byID, "otlp-span-"+traceID+"-"+genID, catalog.TypeObservation)
			wantIn := `[{"role":"user","parts":[{"type":"text","content":"What is OTLP?"}]}]`
			if gen.Type != "GENERATION" || gen.ID != genID || gen.ParentObservationID != rootID || gen.Model != "gpt-4o-mini-2024-07-18" ||
				gen.Usage != (catalog.Usage{PromptTokens: 1000, CompletionTokens: 500, TotalTokens: 1500}) ||
				!gen.StartTime.Equal(start.Add(time.Millisecond)) || gen.EndTime == nil || !gen.EndTime.Equal(start.Add(800*time.Millisecond)) ||
				string(gen.Input) != wantIn || !strings.Contains(string(gen.Output), "A protocol.") ||
				gen.Metadata["gen_ai.provider.name"] != "openai" || gen.Metadata["gen_ai.operation.name"] != "chat" ||
				gen.Metadata["gen_ai.request.model"] != "gpt-4o-mini" || gen.Metadata["gen_ai.response.id"] != "chatcmpl-1" ||
				gen.Metadata["otel.span.kind"] != "client" {
				t.Errorf("generation %+v\ninput %s\noutput %s\nmetadata %v", gen, gen.Input, gen.Output, gen.Metadata)
			}
			// Priced by the requested model (the response names a dated snapshot without a price).
			if want := testPrices.Cost(1000, 500, "gpt-4o-mini"); gen.Cost != want {
				t.Errorf("cost %+v, want %+v", gen.Cost, want)
			}
			var params map[string]any
			if err := json.Unmarshal(gen.ModelParameters, &params); err != nil || params["temperature"] != 0.2 || params["max_tokens"] != float64(200) {
				t.Errorf("model parameters %s (%v)", gen.ModelParameters, err)
			}
			for k := range gen.Metadata {
				if strings.HasPrefix(k, "gen_ai.usage.") || k == "gen_ai.input.messages" || k == "gen_ai.request.temperature" {
					t.Errorf("metadata holds %s, which a field holds", k)
				}
			}
		})
	}
}

type mappedEvent struct {
	typ  string
	data []byte
}

func decodeAs[T any](t *testing.T, events map[string]mappedEvent, id, typ string) T {
	t.Helper()
	var v T
	e, ok := events[id]
	if !ok {
		t.Fatalf("no event %s among %d", id, len(events))
	}
	if e.typ != typ {
		t.Fatalf("event %s is a %s, want %s", id, e.typ, typ)
	}
	if err := json.Unmarshal(e.data, &v); err != nil {
		t.Fatalf("event %s: %v", id, err)
	}
	return v
}

// postOTLP posts body to /v1/traces; it returns the answer and, for a failure, its Status.
func (f fixture) postOTLP(t *testing.T, key, contentType string, header map[string]string, body []byte) (*http.Response, []byte, *spb.Status) {
	t.Helper()
	h := map[string]string{"Content-Type": contentType}
	for k, v := range header {
		h[k] = v
	}
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+PathTraces, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	if resp.StatusCode == http.StatusOK {
		return resp, b.Bytes(), nil
	}
	st := &spb.Status{}
	var derr error
	if resp.Header.Get("Content-Type") == contentTypeProtobuf {
		derr = proto.Unmarshal(b.Bytes(), st)
	} else {
		derr = protojson.Unmarshal(b.Bytes(), st)
	}
	if derr != nil {
		t.Fatalf("status %d: the body %q is not a google.rpc.Status (%s): %v", resp.StatusCode, b.Bytes(), resp.Header.Get("Content-Type"), derr)
	}
	return resp, b.Bytes(), st
}

// span adds a valid span to td and returns it.
func span(td ptrace.Traces, traceByte, spanByte byte) ptrace.Span {
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetTraceID(pcommon.TraceID{traceByte, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	s.SetSpanID(pcommon.SpanID{spanByte, 1, 2, 3, 4, 5, 6, 7})
	s.SetName("op")
	start := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Second)))
	return s
}

func protoOf(t *testing.T, td ptrace.Traces) []byte {
	t.Helper()
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func exportResponse(t *testing.T, b []byte) ptraceotlp.ExportResponse {
	t.Helper()
	r := ptraceotlp.NewExportResponse()
	if err := r.UnmarshalProto(b); err != nil {
		t.Fatalf("200 without an export response: %v", err)
	}
	return r
}

// Bad input gets OTLP/HTTP's answer (400 for data that cannot be decoded, partial success for
// some bad spans, 413 past the limits, 401/403/415), a google.rpc.Status in the request's
// encoding, and nothing of a refused span reaches Kafka.
func TestOTLPBadInput(t *testing.T) {
	limits := defaultLimits()
	limits.MaxRequestBytes = 1 << 20
	f := newOTLPFixture(t, limits)
	pb, js := contentTypeProtobuf, contentTypeJSON

	good := ptrace.NewTraces()
	span(good, 1, 1)
	whole := protoOf(t, good)

	check := func(name string, resp *http.Response, st *spb.Status, status int, contentType, message string) {
		t.Helper()
		if resp.StatusCode != status || resp.Header.Get("Content-Type") != contentType || st == nil || !strings.Contains(st.Message, message) {
			t.Errorf("%s: status %d (%s), Status %v; want %d with %q", name, resp.StatusCode, resp.Header.Get("Content-Type"), st, status, message)
		}
	}
	resp, _, st := f.postOTLP(t, f.keys.ingest, pb, nil, whole[:len(whole)-3])
	check("truncated protobuf", resp, st, 400, pb, "not a valid OTLP ExportTraceServiceRequest")
	resp, _, st = f.postOTLP(t, f.keys.ingest, pb, nil, []byte("\xff\xff\xff\xff"))
	check("garbage protobuf", resp, st, 400, pb, "not a valid OTLP")
	for name, body := range map[string]string{
		"trace id a number":   `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":5,"spanId":"0102030405060708","name":"x","startTimeUnixNano":"1"}]}]}]}`,
		"spans an object":     `{"resourceSpans":[{"scopeSpans":[{"spans":{"name":"x"}}]}]}`,
		"start time a string": `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","startTimeUnixNano":"soon"}]}]}]}`,
		"trace id not hex":    `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"0102030405060708"}]}]}]}`,
		"not JSON":            `{"resourceSpans":[`,
	} {
		resp, _, st := f.postOTLP(t, f.keys.ingest, js, nil, []byte(body))
		check("JSON "+name, resp, st, 400, js, "not a valid OTLP")
	}

	// A gzip bomb: 64 MiB of zeros, 64 KiB on the wire.
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 64 {
		_, _ = zw.Write(zeros)
	}
	_ = zw.Close()
	resp, _, st = f.postOTLP(t, f.keys.ingest, pb, map[string]string{"Content-Encoding": "gzip"}, bomb.Bytes())
	check("gzip bomb", resp, st, 413, pb, "decompressed request body exceeds")

	// Without a trace id, without a span id, without a start time, ending before it starts,
	// an oversize attribute, a token count that is no count: each span is rejected alone.
	mixed := ptrace.NewTraces()
	span(mixed, 2, 1)
	span(mixed, 0, 2).SetTraceID(pcommon.TraceID{})
	span(mixed, 3, 0).SetSpanID(pcommon.SpanID{})
	span(mixed, 4, 4).SetStartTimestamp(0)
	late := span(mixed, 5, 5)
	late.SetEndTimestamp(late.StartTimestamp() - 1)
	span(mixed, 6, 6).Attributes().PutStr("big", strings.Repeat("x", 5000))
	tokens := span(mixed, 7, 7).Attributes()
	tokens.PutStr("gen_ai.operation.name", "chat")
	tokens.PutStr("gen_ai.usage.input_tokens", "many")
	huge := span(mixed, 8, 8)
	huge.Attributes().PutStr("input.value", strings.Repeat("y", int(limits.MaxEventBytes)))
	resp, body, _ := f.postOTLP(t, f.keys.ingest, pb, nil, protoOf(t, mixed))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mixed export: status %d: %s", resp.StatusCode, body)
	}
	ps := exportResponse(t, body).PartialSuccess()
	if ps.RejectedSpans() != 7 || !strings.Contains(ps.ErrorMessage(), "trace id is empty") || !strings.Contains(ps.ErrorMessage(), "span id is empty") ||
		!strings.Contains(ps.ErrorMessage(), "(and 4 more rejected spans)") {
		t.Errorf("partial success: %d rejected, %q", ps.RejectedSpans(), ps.ErrorMessage())
	}
	// Every reason, each alone.
	for name, c := range map[string]struct {
		edit func(ptrace.Span)
		want string
	}{
		"no start time":     {func(s ptrace.Span) { s.SetStartTimestamp(0) }, "no start time"},
		"ends before start": {func(s ptrace.Span) { s.SetEndTimestamp(s.StartTimestamp() - 1) }, "ends before it starts"},
		"oversize attribute": {func(s ptrace.Span) { s.Attributes().PutStr("big", strings.Repeat("x", 5000)) },
			"/metadata/big"},
		"too many attributes": {func(s ptrace.Span) {
			for i := range 70 {
				s.Attributes().PutInt("a"+strings.Repeat("b", i), int64(i))
			}
		}, "/metadata"},
		"token count": {func(s ptrace.Span) {
			s.Attributes().PutStr("gen_ai.operation.name", "chat")
			s.Attributes().PutInt("gen_ai.usage.output_tokens", -1)
		}, "gen_ai.usage.output_tokens must be a token count"},
		"oversize event": {func(s ptrace.Span) {
			s.Attributes().PutStr("input.value", strings.Repeat("y", int(limits.MaxEventBytes)))
		}, "the limit is"},
	} {
		td := ptrace.NewTraces()
		c.edit(span(td, 9, 9))
		resp, _, st := f.postOTLP(t, f.keys.ingest, pb, nil, protoOf(t, td))
		check(name, resp, st, 400, pb, c.want)
	}

	// Past MAX_BATCH_SPANS.
	many := ptrace.NewTraces()
	spans := many.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for range limits.MaxBatchSpans + 1 {
		spans.AppendEmpty()
	}
	resp, _, st = f.postOTLP(t, f.keys.ingest, pb, nil, protoOf(t, many))
	check("too many spans", resp, st, 413, pb, "the limit is")

	// Keys, content types, codings, methods.
	resp, _, st = f.postOTLP(t, "", pb, nil, whole)
	check("no key", resp, st, 401, pb, "")
	resp, _, st = f.postOTLP(t, f.keys.queryOnly, js, nil, whole)
	check("query key", resp, st, 403, js, "")
	resp, _, st = f.postOTLP(t, f.keys.ingest, "text/plain", nil, whole)
	check("text/plain", resp, st, 415, js, "not an OTLP encoding")
	resp, _, st = f.postOTLP(t, f.keys.ingest, pb, map[string]string{"Content-Encoding": "br"}, whole)
	check("brotli", resp, st, 415, pb, "Content-Encoding")
	if resp, err := http.Get(f.srv.URL + PathTraces); err != nil || resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %v %v", resp, err)
	}

	// Only the mixed export's valid span (and its trace) reached Kafka.
	events := readTopic(t, f.topic, 2)
	for _, e := range events {
		if !strings.Contains(e.ID(), "02010203") {
			t.Errorf("event %s is not from the one valid span", e.ID())
		}
	}
}

// An empty export is a success with nothing to store.
func TestOTLPEmptyExport(t *testing.T) {
	f := newOTLPFixture(t, defaultLimits())
	for _, ct := range []string{contentTypeProtobuf, contentTypeJSON} {
		body := []byte{}
		if ct == contentTypeJSON {
			body = []byte(`{}`)
		}
		resp, b, _ := f.postOTLP(t, f.keys.ingest, ct, nil, body)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ct {
			t.Errorf("%s: status %d (%s): %s", ct, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	}
	readTopic(t, f.topic, 0)
}

// While Kafka is down an export is answered 503 with Retry-After, which the exporters retry.
func TestOTLPKafkaDownAnswers503(t *testing.T) {
	own := kafkatest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, own.Addrs(), kafka.Topic{Name: "otlp-down", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	p, err := kafka.NewAsyncProducer(own.Addrs(), kafka.WithTopic("otlp-down"), kafka.WithAckTimeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	k := newKeys(t)
	srv := httptest.NewServer(NewHandler(k.store, p, HandlerOptions{Limits: defaultLimits(), RetryAfter: 3 * time.Second}))
	defer srv.Close()
	if err := own.StopBroker(0); err != nil {
		t.Fatal(err)
	}
	td := ptrace.NewTraces()
	span(td, 1, 1)
	f := fixture{keys: k, srv: srv}
	resp, _, st := f.postOTLP(t, k.ingest, contentTypeProtobuf, nil, protoOf(t, td))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "3" || st == nil || !strings.Contains(st.Message, "retry") {
		t.Fatalf("status %d, Retry-After %q, Status %v", resp.StatusCode, resp.Header.Get("Retry-After"), st)
	}
}
