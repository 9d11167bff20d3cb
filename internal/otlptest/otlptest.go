// Package otlptest is what the OTLP tests share: GenAI spans recorded with the official
// OpenTelemetry Go SDK and exported with its OTLP/HTTP exporter, and a relay that keeps what
// the exporter sent and can re-encode its protobuf as OTLP JSON (with the Collector's pdata),
// since the Go exporter speaks protobuf only.
package otlptest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Exporter is the SDK's OTLP/HTTP exporter sending to url (the full /v1/traces URL) with key
// as its Bearer token, gzip-compressed or not, and retrying as it ships.
func Exporter(ctx context.Context, url, key string, gzip bool) (*otlptrace.Exporter, error) {
	compression := otlptracehttp.NoCompression
	if gzip {
		compression = otlptracehttp.GzipCompression
	}
	return otlptracehttp.New(ctx,
		otlptracehttp.WithEndpointURL(url),
		otlptracehttp.WithHeaders(map[string]string{"Authorization": "Bearer " + key}),
		otlptracehttp.WithCompression(compression),
	)
}

// Export is one trace of an application: a root span and a GenAI chat generation under it
// (GenAI semantic conventions, messages as attributes), recorded by the SDK and exported
// through exp in one batch (the SDK's batch span processor, flushed at shutdown). It returns the trace id and the two span ids (root, generation).
func Export(ctx context.Context, exp sdktrace.SpanExporter, service string, start time.Time) (traceID, rootID, genID string, err error) {
	res := resource.NewWithAttributes("", attribute.String("service.name", service), attribute.String("service.version", "1.2.3"),
		attribute.String("deployment.environment.name", "test"))
	// The SDK's own resource (telemetry.sdk.*), as an application's would carry it.
	if merged, err := resource.Merge(resource.Default(), res); err == nil {
		res = merged
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(exp))
	tr := tp.Tracer("trustplane/otlptest", trace.WithInstrumentationVersion("0.1.0"))
	ctx, root := tr.Start(ctx, "handle question", trace.WithTimestamp(start), trace.WithAttributes(attribute.String("user.id", "u-1"), attribute.String("session.id", "s-1")))
	_, gen := tr.Start(ctx, "chat gpt-4o-mini", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start.Add(time.Millisecond)),
		trace.WithAttributes(
			attribute.String("gen_ai.operation.name", "chat"),
			attribute.String("gen_ai.provider.name", "openai"),
			attribute.String("gen_ai.request.model", "gpt-4o-mini"),
			attribute.String("gen_ai.response.model", "gpt-4o-mini-2024-07-18"),
			attribute.Float64("gen_ai.request.temperature", 0.2),
			attribute.Int("gen_ai.request.max_tokens", 200),
			attribute.Int("gen_ai.usage.input_tokens", 1000),
			attribute.Int("gen_ai.usage.output_tokens", 500),
			attribute.String("gen_ai.response.id", "chatcmpl-1"),
			attribute.StringSlice("gen_ai.response.finish_reasons", []string{"stop"}),
			attribute.String("gen_ai.input.messages", `[{"role":"user","parts":[{"type":"text","content":"What is OTLP?"}]}]`),
			attribute.String("gen_ai.output.messages", `[{"role":"assistant","parts":[{"type":"text","content":"A protocol."}],"finish_reason":"stop"}]`),
		))
	gen.End(trace.WithTimestamp(start.Add(800 * time.Millisecond)))
	root.End(trace.WithTimestamp(start.Add(900 * time.Millisecond)))
	traceID, rootID, genID = root.SpanContext().TraceID().String(), root.SpanContext().SpanID().String(), gen.SpanContext().SpanID().String()
	return traceID, rootID, genID, tp.Shutdown(ctx)
}

// Relay is an OTLP/HTTP endpoint between an SDK exporter and target. It keeps every body it
// forwards (Bodies), so a test can send the same export again. With JSON set it re-encodes
// each protobuf export as OTLP JSON (pdata's encoder) before posting it to target, and target's
// answer back to protobuf for the exporter: an SDK exporter speaking JSON, in effect.
type Relay struct {
	*httptest.Server
	json   bool
	target string
	mu     sync.Mutex
	bodies []Body
}

// Body is one forwarded export, as posted to the target.
type Body struct {
	ContentType, ContentEncoding string
	Bytes                        []byte
}

// NewRelay starts a relay to target (the full /v1/traces URL).
func NewRelay(target string, json bool) *Relay {
	r := &Relay{json: json, target: target}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if err := r.relay(w, req); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
		}
	}))
	return r
}

// Bodies are the exports forwarded so far.
func (r *Relay) Bodies() []Body {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Body(nil), r.bodies...)
}

func (rl *Relay) relay(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	contentType := r.Header.Get("Content-Type")
	if rl.json {
		plain := body
		if r.Header.Get("Content-Encoding") == "gzip" {
			if plain, err = gunzip(body); err != nil {
				return err
			}
		}
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(plain); err != nil {
			return fmt.Errorf("the exporter sent no protobuf export: %w", err)
		}
		if body, err = req.MarshalJSON(); err != nil {
			return err
		}
		if r.Header.Get("Content-Encoding") == "gzip" {
			body = gzipBytes(body)
		}
		contentType = "application/json"
	}
	rl.mu.Lock()
	rl.bodies = append(rl.bodies, Body{ContentType: contentType, ContentEncoding: r.Header.Get("Content-Encoding"), Bytes: body})
	rl.mu.Unlock()
	out, err := http.NewRequestWithContext(r.Context(), http.MethodPost, rl.target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, vs := range r.Header {
		if k != "Content-Length" {
			out.Header[k] = vs
		}
	}
	out.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(out)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if rl.json && resp.StatusCode == http.StatusOK {
		er := ptraceotlp.NewExportResponse()
		if err := er.UnmarshalJSON(answer); err != nil {
			return fmt.Errorf("ingest answered 200 with no JSON export response: %w", err)
		}
		if answer, err = er.MarshalProto(); err != nil {
			return err
		}
	}
	for _, h := range []string{"Retry-After"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	if rl.json && resp.StatusCode != http.StatusOK {
		// A google.rpc.Status in JSON: the exporter only logs a failure's body.
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	} else {
		w.Header().Set("Content-Type", "application/x-protobuf")
	}
	w.WriteHeader(resp.StatusCode)
	_, err = w.Write(answer)
	return err
}
