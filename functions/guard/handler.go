// Package guard checks the telemetry applications log, including what never went through the
// gateway, for personal data, secrets, prompt injections and jailbreaks: a Trigger delivers the
// events that carry text, guard runs the detectors the policy names on their input and output,
// and answers each delivery with one finding event listing every finding, which the broker
// routes to persist. The detectors (detect) and the policy (policy) are the libraries router
// runs inline, so a finding is the same wherever it was made.
package guard

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/functions/guard/detect"
	"github.com/trustplane/trustplane/functions/guard/policy"
	"github.com/trustplane/trustplane/functions/runtime"
	"github.com/trustplane/trustplane/internal/jsonscan"
)

// EventSource is the CloudEvents source of guard's finding events.
const EventSource = "/trustplane/guard"

// Handler answers Trigger deliveries: 200 with a finding event as the reply when the event has
// findings, 200 without a reply when it has none (or nothing to check), 400 with the reason for
// an event it cannot read (the broker dead-letters it; a retry could not do better).
type Handler struct {
	checks   *policy.Checks
	logger   *slog.Logger
	http     http.Handler
	events   *prometheus.CounterVec
	findings *prometheus.CounterVec
	seconds  prometheus.Histogram
}

// NewHandler builds the handler; reg may be nil.
func NewHandler(checks *policy.Checks, logger *slog.Logger, reg prometheus.Registerer) *Handler {
	h := &Handler{checks: checks, logger: logger,
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "trustplane", Subsystem: "guard", Name: "events_total",
			Help: "Deliveries, by outcome: findings (answered with a finding event), clean, skipped (nothing to check), invalid (dead-lettered)."}, []string{"outcome"}),
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "trustplane", Subsystem: "guard", Name: "findings_total",
			Help: "Findings reported, by category and side."}, []string{"category", "side"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "trustplane", Subsystem: "guard", Name: "scan_seconds",
			Help:    "Time to check one event, both sides.",
			Buckets: []float64{.00002, .00005, .0001, .00025, .0005, .001, .0025, .01, .05}}),
	}
	if reg != nil {
		reg.MustRegister(h.events, h.findings, h.seconds)
	}
	h.http = runtime.CloudEventsHandler(h.Receive)
	return h
}

// ServeHTTP receives one delivery.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.http.ServeHTTP(w, r) }

// scanned is what guard reads of a telemetry event: the entity, its model, and its two sides.
type scanned struct {
	id, traceID, model string
	timestamp          time.Time
	input, output      json.RawMessage
	checkedInline      bool // an LLM call router already checked
}

func read(typ string, data []byte) (scanned, error) {
	t, ok := catalog.Lookup(typ)
	if !ok || !strings.HasPrefix(typ, catalog.TelemetryPrefix) {
		return scanned{}, fmt.Errorf("event type %q is not telemetry guard checks", typ)
	}
	p, err := t.Unmarshal(data)
	if err != nil {
		return scanned{}, err
	}
	switch p := p.(type) {
	case *catalog.Observation:
		return scanned{id: p.ID, traceID: p.TraceID, model: p.Model, timestamp: p.StartTime, input: p.Input, output: p.Output}, nil
	case *catalog.Trace:
		return scanned{id: p.ID, traceID: p.ID, timestamp: p.Timestamp, input: p.Input, output: p.Output}, nil
	case *catalog.LLMCall:
		return scanned{id: p.ID, traceID: p.TraceID, model: p.ModelRequested, timestamp: p.Timestamp, input: p.Input, output: p.Output,
			checkedInline: p.Guard.Outcome != ""}, nil
	}
	return scanned{}, fmt.Errorf("event type %q carries no text guard checks", typ)
}

// Receive checks one event and returns its finding event, if it has findings.
func (h *Handler) Receive(_ context.Context, e cloudevents.Event) (*cloudevents.Event, cloudevents.Result) {
	ext := e.Extensions()
	tenant, _ := ext[catalog.ExtTenant].(string)
	project, _ := ext[catalog.ExtProject].(string)
	if tenant == "" || project == "" {
		return h.invalid(e, "the event has no tenantid/projectid extensions: only events that came through ingest or router are checked")
	}
	s, err := read(e.Type(), e.Data())
	if err != nil {
		return h.invalid(e, err.Error())
	}
	if s.checkedInline {
		// router ran the checks on the call as it happened; its findings are in the event.
		h.events.WithLabelValues("skipped").Inc()
		return nil, nil
	}
	p := h.checks.Policies.Get().Resolve(tenant, project, s.model)
	if !p.Active() {
		h.events.WithLabelValues("skipped").Inc()
		return nil, nil
	}
	start := time.Now()
	var found []catalog.Finding
	for _, side := range []struct {
		name     string
		raw      json.RawMessage
		response bool
	}{{catalog.SideInput, s.input, false}, {catalog.SideOutput, s.output, true}} {
		if len(side.raw) == 0 || !p.Inspects(side.response) {
			continue
		}
		res, err := h.scan(Text(side.raw))
		if err != nil {
			h.seconds.Observe(time.Since(start).Seconds())
			return h.invalid(e, err.Error())
		}
		for _, f := range res.Findings {
			if p.Decide(f) == policy.Off || len(found) >= catalog.MaxFindings {
				continue
			}
			// guard runs after the fact: whatever the policy would have done inline, it records.
			found = append(found, policy.Record(f, policy.Observe, side.name, res.Truncated))
			h.findings.WithLabelValues(string(f.Category), side.name).Inc()
		}
	}
	h.seconds.Observe(time.Since(start).Seconds())
	if len(found) == 0 {
		h.events.WithLabelValues("clean").Inc()
		return nil, nil
	}
	reply, err := findingEvent(e, s, found)
	if err != nil {
		return h.invalid(e, err.Error())
	}
	h.events.WithLabelValues("findings").Inc()
	return reply, nil
}

func (h *Handler) invalid(e cloudevents.Event, reason string) (*cloudevents.Event, cloudevents.Result) {
	h.events.WithLabelValues("invalid").Inc()
	h.logger.Warn("event cannot be checked", "event_id", e.ID(), "event_source", e.Source(), "event_type", e.Type(), "error", reason)
	return nil, runtime.Status(http.StatusBadRequest, "%s", reason)
}

// scan runs the detectors, turning a detector's panic into an error: the same event would make
// it panic again, so it is answered as one that cannot be checked.
func (h *Handler) scan(text string) (res detect.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("a detector failed on this event: %v", p)
		}
	}()
	return h.checks.Scanner.Scan(text), nil
}

var findingType, _ = catalog.Lookup(catalog.TypeFinding)

// findingEvent is the reply for source's findings. Its id is derived from the source event's,
// and it carries the source's tenant, project, key id and ingest time: a redelivered event
// yields the same finding event, whose rows replace the first ones.
func findingEvent(src cloudevents.Event, s scanned, found []catalog.Finding) (*cloudevents.Event, error) {
	data := catalog.Findings{SourceType: src.Type(), SourceID: s.id, SourceEventID: clip(src.ID(), 512), TraceID: s.traceID,
		Timestamp: s.timestamp, Findings: found}
	e := cloudevents.NewEvent()
	e.SetID(src.ID() + "/findings")
	e.SetSource(EventSource)
	e.SetType(catalog.TypeFinding)
	e.SetTime(time.Now())
	if err := e.SetData(cloudevents.ApplicationJSON, data); err != nil {
		return nil, err
	}
	key, problems := findingType.Validate(e.Data())
	if len(problems) > 0 {
		return nil, fmt.Errorf("the findings do not match their schema: %s", problems[0].String())
	}
	ext := src.Extensions()
	for _, name := range []string{catalog.ExtTenant, catalog.ExtProject, catalog.ExtKeyID, catalog.ExtIngestTime} {
		if v, ok := ext[name]; ok {
			e.SetExtension(name, v)
		}
	}
	e.SetExtension(catalog.ExtPartitionKey, key)
	return &e, nil
}

// Text is the text of a side as guard scans it and as finding spans count it: a JSON string
// itself; otherwise every string value of the JSON (not the object keys), unescaped and joined
// by newlines in document order.
func Text(raw json.RawMessage) string {
	s := jsonscan.New(raw)
	if s.Peek() == jsonscan.String {
		c, plain := s.String()
		return jsonscan.Unquoted(c, plain)
	}
	var b strings.Builder
	var walk func()
	walk = func() {
		switch s.Peek() {
		case jsonscan.String:
			c, plain := s.String()
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(jsonscan.Unquoted(c, plain))
		case jsonscan.Object:
			s.BeginObject()
			for {
				if _, _, ok := s.Member(); !ok {
					return
				}
				walk()
			}
		case jsonscan.Array:
			s.BeginArray()
			for s.Element() {
				walk()
			}
		default:
			s.Skip()
		}
	}
	walk()
	return b.String()
}

// ServePolicy shows the effective policy of GET /policy?tenant=&project=&model=. guard is
// reachable only inside the cluster (its NetworkPolicy and Knative visibility), by operators.
func (h *Handler) ServePolicy(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tenant, project, model := q.Get("tenant"), q.Get("project"), q.Get("model")
	if project != "" && tenant == "" {
		http.Error(w, "project needs its tenant", http.StatusBadRequest)
		return
	}
	body, _ := json.Marshal(struct {
		Tenant  string         `json:"tenant"`
		Project string         `json:"project"`
		Model   string         `json:"model"`
		Policy  *policy.Policy `json:"policy"`
	}{tenant, project, model, h.checks.Policies.Get().Resolve(tenant, project, model)})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
