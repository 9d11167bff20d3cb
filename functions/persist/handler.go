// Package persist stores telemetry events delivered by the broker in ClickHouse. Deliveries that
// arrive together share one batched insert, and a delivery is acknowledged only once its rows
// are stored.
package persist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/functions/runtime"
)

// Handler receives Trigger deliveries.
type Handler struct {
	writer clickhouse.Writer
	logger *slog.Logger
	now    func() time.Time
	events *prometheus.CounterVec
}

// NewHandler builds the receive function. w is normally a *GroupCommit. reg may be nil.
func NewHandler(w clickhouse.Writer, logger *slog.Logger, reg prometheus.Registerer) *Handler {
	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "trustplane", Subsystem: "persist", Name: "events_total",
		Help: "Deliveries, by outcome: stored, invalid (never storable, dead-lettered by the broker), failed (retried).",
	}, []string{"outcome"})
	if reg != nil {
		reg.MustRegister(events)
	}
	return &Handler{writer: w, logger: logger, now: time.Now, events: events}
}

// Receive stores one delivered event. It answers 200 once the rows are stored, 400 for an event
// that can never be stored (the broker dead-letters it with this reason), and 503 when
// ClickHouse failed (the broker retries).
func (h *Handler) Receive(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, cloudevents.Result) {
	batch, err := Rows(e, h.now())
	if err != nil {
		h.events.WithLabelValues("invalid").Inc()
		h.logger.Warn("event cannot be stored", "event_id", e.ID(), "event_source", e.Source(), "event_type", e.Type(), "error", err)
		return nil, runtime.Status(http.StatusBadRequest, "%v", err)
	}
	if err := h.writer.Write(ctx, batch); err != nil {
		h.events.WithLabelValues("failed").Inc()
		h.logger.Error("insert failed", "event_id", e.ID(), "error", err)
		return nil, runtime.Status(http.StatusServiceUnavailable, "not stored: %v", err)
	}
	h.events.WithLabelValues("stored").Inc()
	return nil, runtime.Status(http.StatusOK, "")
}

// Rows maps a telemetry event to the ClickHouse rows it writes. The event passed the schema at
// ingest, but a Kafka record is still external input: it is decoded strictly and its rows are
// checked again here, and an error means it can never be stored.
func Rows(e cloudevents.Event, now time.Time) (clickhouse.Batch, error) {
	var b clickhouse.Batch
	if err := e.Validate(); err != nil {
		return b, fmt.Errorf("not a valid CloudEvent: %w", err)
	}
	t, ok := catalog.Lookup(e.Type())
	if !ok {
		return b, fmt.Errorf("unknown event type %q", e.Type())
	}
	tenant, project, err := identity(e)
	if err != nil {
		return b, err
	}
	payload, err := t.Unmarshal(e.Data())
	if err != nil {
		return b, err
	}
	env := clickhouse.Envelope{
		TenantID: tenant, ProjectID: project, EventSource: e.Source(), EventID: e.ID(),
		Version: uint64(receivedAt(e, now).UnixMilli()),
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
			PromptTokens: p.Usage.PromptTokens, CompletionTokens: p.Usage.CompletionTokens, TotalTokens: p.Usage.TotalTokens,
			InputCost: p.Cost.Input, OutputCost: p.Cost.Output, TotalCost: p.Cost.Total,
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
	default:
		return b, fmt.Errorf("event type %q is not stored by persist", e.Type())
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
		PromptTokens: p.Usage.PromptTokens, CompletionTokens: p.Usage.CompletionTokens, TotalTokens: p.Usage.TotalTokens,
		InputCost: p.Cost.Input, OutputCost: p.Cost.Output, TotalCost: p.Cost.Total,
		LatencyMs: p.Latency.TotalMs, GatewayMs: p.Latency.GatewayMs, ProviderMs: p.Latency.ProviderMs, TTFTMs: p.Latency.TTFTMs,
		Capture: p.Capture, Input: string(p.Input), Output: string(p.Output),
	}
}

// identity reads the tenant and project ingest stamped on the event from the API key.
func identity(e cloudevents.Event) (tenant, project string, err error) {
	ext := e.Extensions()
	tenant, _ = ext[catalog.ExtTenant].(string)
	project, _ = ext[catalog.ExtProject].(string)
	if tenant == "" || project == "" {
		return "", "", errors.New("the event has no tenantid/projectid extensions: only events that came through ingest are stored")
	}
	return tenant, project, nil
}

// receivedAt is when ingest accepted the event; events that did not come through ingest (or
// carry no valid time) get now.
func receivedAt(e cloudevents.Event, now time.Time) time.Time {
	if v, ok := e.Extensions()[catalog.ExtIngestTime]; ok {
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
