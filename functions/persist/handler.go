// Package persist stores telemetry events delivered by the broker in ClickHouse. Deliveries that
// arrive together share one batched insert, and a delivery is acknowledged only once its rows
// are stored.
package persist

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	goruntime "runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/functions/runtime"
)

// Handler receives Trigger deliveries. It is an http.Handler: binary-mode deliveries, which is
// how the broker delivers, are read straight from the request's headers and body; any other
// request (structured mode, older spec versions) goes through the CloudEvents SDK.
type Handler struct {
	writer clickhouse.Writer
	logger *slog.Logger
	now    func() time.Time
	rows   func(*delivery, time.Time) (clickhouse.Batch, error) // rowsOf; a test swaps it
	events *prometheus.CounterVec
	// notStored logs deliveries that could not be stored (the insert failed, or the broker
	// stopped waiting for it): once per interval, not once per delivery, as in an outage
	// every delivery fails. events_total counts each.
	notStored *runtime.RepeatedLog
	sdk       http.Handler
	// decode hands deliveries to a few long-lived goroutines that decode them. Decoding JSON
	// needs a deep stack; done on each delivery's own goroutine it grows every new stack (a
	// copy each time), and the thousands of deliveries waiting for their insert would each keep
	// a grown stack, tens of MiB in all.
	decode chan *decodeJob
}

type decodeJob struct {
	d     delivery
	now   time.Time
	batch clickhouse.Batch
	err   error
	done  chan struct{}
}

var decodeJobs = sync.Pool{New: func() any { return &decodeJob{done: make(chan struct{}, 1)} }}

// NewHandler builds the handler. w is normally a *GroupCommit. reg may be nil.
func NewHandler(w clickhouse.Writer, logger *slog.Logger, reg prometheus.Registerer) *Handler {
	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "trustplane", Subsystem: "persist", Name: "events_total",
		Help: "Deliveries, by outcome: stored, invalid (never storable, dead-lettered by the broker), failed (retried).",
	}, []string{"outcome"})
	if reg != nil {
		reg.MustRegister(events)
	}
	h := &Handler{writer: w, logger: logger, now: time.Now, rows: rowsOf, events: events, decode: make(chan *decodeJob),
		notStored: runtime.NewRepeatedLog(logger, slog.LevelWarn, "delivery not stored: answered 503 for the broker to retry", runtime.RepeatInterval)}
	h.sdk = runtime.CloudEventsHandler(h.Receive)
	for range goruntime.GOMAXPROCS(0) {
		// They live as long as the process: a handler is built once per process.
		go h.decoder()
	}
	return h
}

func (h *Handler) decoder() {
	for j := range h.decode {
		j.batch, j.err = h.rowsOrError(j)
		j.done <- struct{}{}
	}
}

// rowsOrError decodes a delivery on a decoder goroutine, where net/http's recovery does not
// reach: a panic there would end the process, and the broker's redelivery of the same event
// would end the next one, holding up its partition for good. Decoding depends on the event
// alone, so an event that makes it panic can never be stored: it is answered as such (400, and
// the broker dead-letters it with the reason) and the decoder goes on.
func (h *Handler) rowsOrError(j *decodeJob) (batch clickhouse.Batch, err error) {
	defer func() {
		if p := recover(); p != nil {
			h.logger.Error("decoding an event panicked", "event_id", j.d.id, "event_type", j.d.typ, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			batch, err = clickhouse.Batch{}, fmt.Errorf("the event could not be decoded (%v)", p)
		}
	}()
	return h.rows(&j.d, j.now)
}

// ServeHTTP receives one delivery. It answers 200 once the rows are stored, 400 with the reason
// for an event that can never be stored (the broker dead-letters it with this reason), and 503
// when ClickHouse failed (the broker retries).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.Header.Get("Ce-Specversion") != event.CloudEventsVersionV1 {
		h.sdk.ServeHTTP(w, r)
		return
	}
	buf := bodies.Get().(*bytes.Buffer)
	d, err := readBinary(r, buf)
	if err != nil {
		putBody(buf)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	j := decodeJobs.Get().(*decodeJob)
	j.d, j.now = d, h.now()
	h.decode <- j
	<-j.done
	batch, err := j.batch, j.err
	*j = decodeJob{done: j.done}
	decodeJobs.Put(j)
	// The rows hold copies of what they need: the body goes back before the wait for the
	// insert, so the deliveries waiting hold only their rows.
	d.data = nil
	putBody(buf)
	status, msg := h.store(r.Context(), &d, batch, err)
	if status != http.StatusOK {
		http.Error(w, msg, status)
		return
	}
	w.WriteHeader(status)
}

// Receive stores one CloudEvent, with the same answers as ServeHTTP; it serves the requests
// that are not binary-mode deliveries.
func (h *Handler) Receive(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, cloudevents.Result) {
	d := deliveryOf(e)
	batch, err := Rows(e, h.now())
	status, msg := h.store(ctx, &d, batch, err)
	return nil, runtime.Status(status, "%s", msg)
}

// store writes the rows of a decoded delivery (decodeErr is why it could not be decoded) and
// returns the status code to answer with and its message.
func (h *Handler) store(ctx context.Context, d *delivery, batch clickhouse.Batch, decodeErr error) (int, string) {
	if decodeErr != nil {
		h.events.WithLabelValues("invalid").Inc()
		h.logger.Warn("event cannot be stored", "event_id", d.id, "event_source", d.source, "event_type", d.typ, "error", decodeErr)
		return http.StatusBadRequest, decodeErr.Error()
	}
	if err := h.writer.Write(ctx, batch); err != nil {
		h.events.WithLabelValues("failed").Inc()
		h.notStored.Log("event_id", d.id, "error", err)
		return http.StatusServiceUnavailable, "not stored: " + err.Error()
	}
	h.events.WithLabelValues("stored").Inc()
	return http.StatusOK, ""
}

// delivery is what persist reads of a CloudEvent.
type delivery struct {
	id, source, typ string
	tenant, project string
	ingestTime      string // the ingesttime extension as sent; "" when absent
	ingestTimeTyped any    // the ingesttime extension of an SDK event, which may be a time
	data            []byte
}

func deliveryOf(e cloudevents.Event) delivery {
	ext := e.Extensions()
	tenant, _ := ext[catalog.ExtTenant].(string)
	project, _ := ext[catalog.ExtProject].(string)
	return delivery{
		id: e.ID(), source: e.Source(), typ: e.Type(), tenant: tenant, project: project,
		ingestTimeTyped: ext[catalog.ExtIngestTime], data: e.Data(),
	}
}

var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func putBody(b *bytes.Buffer) {
	if b.Cap() > 64<<10 { // keep only buffers of ordinary deliveries
		return
	}
	b.Reset()
	bodies.Put(b)
}

// readBinary reads a binary-mode CloudEvents 1.0 request into a delivery, checking the
// attributes as the CloudEvents SDK does. The delivery's data is buf's content.
func readBinary(r *http.Request, buf *bytes.Buffer) (delivery, error) {
	var d delivery
	for k, v := range r.Header {
		name, ok := strings.CutPrefix(k, "Ce-")
		if !ok || len(v) == 0 {
			continue
		}
		switch name {
		case "Id":
			d.id = v[0]
		case "Source":
			d.source = v[0]
		case "Type":
			d.typ = v[0]
		case "Tenantid":
			d.tenant = v[0]
		case "Projectid":
			d.project = v[0]
		case "Ingesttime":
			d.ingestTime = v[0]
		case "Specversion":
		case "Time":
			if _, err := types.ParseTime(v[0]); err != nil {
				return d, fmt.Errorf("not a valid CloudEvent: time: %v", err)
			}
		default:
			if !event.IsExtensionNameValid(name) {
				return d, fmt.Errorf("not a CloudEvent: header %s does not name a valid CloudEvents attribute", k)
			}
		}
	}
	var problems []string
	if d.id == "" {
		problems = append(problems, "id: MUST be a non-empty string")
	}
	if d.typ == "" {
		problems = append(problems, "type: MUST be a non-empty string")
	}
	if u, err := url.Parse(d.source); d.source == "" || err != nil {
		problems = append(problems, "source: REQUIRED and MUST be a non-empty URI-reference")
	} else {
		d.source = u.String() // as the SDK keeps it: a URI reference, re-encoded
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/json" {
		if _, _, err := mime.ParseMediaType(ct); err != nil {
			problems = append(problems, "datacontenttype: "+err.Error())
		}
	}
	if len(problems) > 0 {
		return d, fmt.Errorf("not a valid CloudEvent: %s", strings.Join(problems, "; "))
	}
	if r.ContentLength > runtime.MaxCloudEventBytes {
		return d, fmt.Errorf("not a CloudEvent: data larger than %d bytes", runtime.MaxCloudEventBytes)
	}
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, runtime.MaxCloudEventBytes+1)); err != nil {
		return d, fmt.Errorf("not a CloudEvent: reading data: %v", err)
	}
	if buf.Len() > runtime.MaxCloudEventBytes {
		return d, fmt.Errorf("not a CloudEvent: data larger than %d bytes", runtime.MaxCloudEventBytes)
	}
	d.data = buf.Bytes()
	return d, nil
}

// Rows maps a telemetry event to the ClickHouse rows it writes. The event passed the schema at
// ingest, but a Kafka record is still external input: it is decoded strictly and its rows are
// checked again here, and an error means it can never be stored.
func Rows(e cloudevents.Event, now time.Time) (clickhouse.Batch, error) {
	if err := e.Validate(); err != nil {
		return clickhouse.Batch{}, fmt.Errorf("not a valid CloudEvent: %w", err)
	}
	d := deliveryOf(e)
	return rowsOf(&d, now)
}

func rowsOf(d *delivery, now time.Time) (clickhouse.Batch, error) {
	var b clickhouse.Batch
	t, ok := catalog.Lookup(d.typ)
	if !ok {
		return b, fmt.Errorf("unknown event type %q", d.typ)
	}
	if d.tenant == "" || d.project == "" {
		return b, errors.New("the event has no tenantid/projectid extensions: only events that came through ingest are stored")
	}
	payload, err := t.Unmarshal(d.data)
	if err != nil {
		return b, err
	}
	env := clickhouse.Envelope{
		TenantID: d.tenant, ProjectID: d.project, EventSource: d.source, EventID: d.id,
		Version: uint64(d.receivedAt(now).UnixMilli()),
	}
	switch p := payload.(type) {
	case *catalog.Trace:
		env.ID, env.Metadata = p.ID, p.Metadata
		b.Traces = append(b.Traces, clickhouse.Trace{
			Envelope: env, Timestamp: p.Timestamp, Name: p.Name, UserID: p.UserID, SessionID: p.SessionID,
			Release: p.Release, AppVersion: p.Version, Environment: p.Environment, Tags: nonNil(p.Tags),
			Input: string(p.Input), Output: string(p.Output),
		})
	case *catalog.Observation:
		env.ID, env.Metadata = p.ID, p.Metadata
		b.Observations = append(b.Observations, clickhouse.Observation{
			Envelope: env, TraceID: p.TraceID, ParentObservationID: p.ParentObservationID, Type: p.Type, Name: p.Name,
			StartTime: p.StartTime, EndTime: orZero(p.EndTime), CompletionStartTime: orZero(p.CompletionStartTime),
			Model: p.Model, ModelParameters: string(p.ModelParameters), Input: string(p.Input), Output: string(p.Output),
			Usage: usage(p.Usage, p.Cost),
			Level: defaultString(p.Level, "DEFAULT"), StatusMessage: p.StatusMessage,
		})
	case *catalog.Score:
		env.ID, env.Metadata = p.ID, p.Metadata
		b.Scores = append(b.Scores, clickhouse.Score{
			Envelope: env, TraceID: p.TraceID, ObservationID: p.ObservationID, Name: p.Name, Value: p.Value,
			StringValue: p.StringValue, DataType: defaultString(p.DataType, "NUMERIC"), Source: defaultString(p.Source, "API"),
			Comment: p.Comment, Timestamp: p.Timestamp,
		})
	case *catalog.LLMCall:
		env.ID, env.Metadata = p.ID, p.Metadata
		b.LLMCalls = append(b.LLMCalls, llmCallRow(env, p))
		// The gateway's inline findings are stored as finding rows of the call, beside the
		// ones guard makes of other telemetry.
		b.Findings = appendFindings(b.Findings, env, &catalog.Findings{SourceType: d.typ, SourceID: p.ID,
			SourceEventID: d.id, TraceID: p.TraceID, Timestamp: p.Timestamp, Findings: p.Guard.Findings})
	case *catalog.Findings:
		b.Findings = appendFindings(b.Findings, env, p)
	default:
		return b, fmt.Errorf("event type %q is not stored by persist", d.typ)
	}
	// Checked per delivery, so that one bad event never fails the insert it would share.
	return b, b.Validate()
}

func llmCallRow(env clickhouse.Envelope, p *catalog.LLMCall) clickhouse.LLMCall {
	attempts, _ := json.Marshal(p.Attempts)
	if p.Attempts == nil {
		attempts = []byte("[]")
	}
	return clickhouse.LLMCall{
		Envelope: env, TraceID: p.TraceID, Timestamp: p.Timestamp, Endpoint: p.Endpoint,
		ModelRequested: p.ModelRequested, ModelServed: p.ModelServed, Provider: p.Provider,
		Status: p.Status, StatusCode: uint16(p.StatusCode), Error: p.Error, Stream: p.Stream,
		Attempts: uint16(len(p.Attempts)), AttemptsJSON: string(attempts), UserID: p.User,
		Usage:     usage(p.Usage, p.Cost),
		LatencyMs: p.Latency.TotalMs, GatewayMs: p.Latency.GatewayMs, ProviderMs: p.Latency.ProviderMs, TTFTMs: p.Latency.TTFTMs,
		Capture: p.Capture, Input: string(p.Input), Output: string(p.Output),
	}
}

// appendFindings appends one row per finding of p; env is the event that carried them.
func appendFindings(rows []clickhouse.Finding, env clickhouse.Envelope, p *catalog.Findings) []clickhouse.Finding {
	for i := range p.Findings {
		f := &p.Findings[i]
		rows = append(rows, clickhouse.Finding{
			TenantID: env.TenantID, ProjectID: env.ProjectID, SourceType: p.SourceType, SourceID: p.SourceID,
			SourceEventID: p.SourceEventID, TraceID: p.TraceID, Timestamp: p.Timestamp, Side: f.Side,
			Detector: f.Detector, Category: f.Category, Entity: f.Entity, Severity: f.Severity, Score: f.Score,
			SpanStart: uint32(f.Start), SpanEnd: uint32(f.End), Preview: f.Preview, Fingerprint: f.Fingerprint,
			Action: f.Action, Reasons: f.Reasons, Truncated: f.Truncated,
			EventSource: env.EventSource, EventID: env.EventID, Version: env.Version,
		})
	}
	return rows
}

func usage(u catalog.Usage, c catalog.Cost) clickhouse.Usage {
	return clickhouse.Usage{
		PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens,
		InputCost: c.Input, OutputCost: c.Output, TotalCost: c.Total,
	}
}

// receivedAt is when ingest accepted the event; events that did not come through ingest (or
// carry no valid time) get now.
func (d *delivery) receivedAt(now time.Time) time.Time {
	v := d.ingestTimeTyped
	if d.ingestTime != "" {
		v = d.ingestTime
	}
	if v != nil {
		if t, err := types.ToTime(v); err == nil && t.After(time.Unix(0, 0)) {
			return t
		}
	}
	return now
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func orZero(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func defaultString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
