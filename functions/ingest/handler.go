// Package ingest is trustplane's public telemetry endpoint. It authenticates the caller,
// validates CloudEvents posted in binary, structured or batch mode, stamps them with the
// caller's tenant and project, and answers only once Kafka has acknowledged them.
package ingest

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
	"os"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/functions/runtime"
	"github.com/trustplane/trustplane/kafka"
)

// Outcomes of one event, as reported in batch results.
const (
	StatusAccepted    = "accepted"
	StatusRejected    = "rejected"
	StatusUnavailable = "unavailable"
)

// Result is what happened to one event of a request.
type Result struct {
	Index    int               `json:"index"`
	ID       string            `json:"id,omitempty"`
	Source   string            `json:"source,omitempty"`
	Status   string            `json:"status"`
	Problems []catalog.Problem `json:"problems,omitempty"`
}

// Handler serves ingest's HTTP endpoint.
type Handler struct {
	verifier   authclient.Verifier
	producer   kafka.Producer
	limits     Limits
	retryAfter time.Duration
	events     *prometheus.CounterVec
	turns      chan struct{} // one per request being processed
	// While Kafka or auth is down every request fails the same way: these log it once per
	// interval with a count, not once per event (events_total counts each).
	kafkaDown, authDown, authFailed *runtime.RepeatedLog
}

// HandlerOptions are what the endpoint needs besides its verifier and producer.
type HandlerOptions struct {
	Limits Limits
	// RetryAfter is what a 503 tells clients to wait before retrying.
	RetryAfter time.Duration
	Logger     *slog.Logger          // nil: logs nowhere
	Registerer prometheus.Registerer // nil: metrics are not registered
}

// NewHandler builds the endpoint: keys are verified by v, accepted events produced to p.
func NewHandler(v authclient.Verifier, p kafka.Producer, opts HandlerOptions) *Handler {
	limits, retryAfter, logger, reg := opts.Limits, opts.RetryAfter, opts.Logger, opts.Registerer
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "trustplane", Subsystem: "ingest", Name: "events_total",
		Help: "Events received, by content mode and outcome (accepted, rejected, unavailable).",
	}, []string{"mode", "outcome"})
	if reg != nil {
		reg.MustRegister(events)
	}
	every := runtime.RepeatInterval
	h := &Handler{verifier: v, producer: p, limits: limits, retryAfter: retryAfter, events: events,
		kafkaDown:  runtime.NewRepeatedLog(logger, slog.LevelWarn, "events not acknowledged by Kafka: answered 503", every),
		authDown:   runtime.NewRepeatedLog(logger, slog.LevelWarn, "auth unavailable: answered 503", every),
		authFailed: runtime.NewRepeatedLog(logger, slog.LevelError, "auth failed: answered 500", every),
	}
	if limits.MaxConcurrentRequests > 0 {
		h.turns = make(chan struct{}, limits.MaxConcurrentRequests)
	}
	return h
}

type mode string

const (
	modeBinary     mode = "binary"
	modeStructured mode = "structured"
	modeBatch      mode = "batch"
)

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Events are posted to the root. Answering any other path would
	// hide a client's wrong URL (say, a path meant for another service) behind a 202.
	if r.URL.Path != "/" {
		writeProblem(w, problem{Type: problemNotFound, Title: "Not found", Status: http.StatusNotFound,
			Detail: fmt.Sprintf("nothing is served at %.200q: post CloudEvents to /", r.URL.Path)})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeProblem(w, problem{Type: problemMethod, Title: "Method not allowed", Status: http.StatusMethodNotAllowed,
			Detail: "post CloudEvents to this endpoint"})
		return
	}
	var m mode
	principal, body, w, release, ok := h.receive(w, r, writeProblem, func() error {
		var err error
		m, err = modeOf(r.Header)
		return err
	})
	if !ok {
		return
	}
	defer release()

	if m == modeBatch {
		h.serveBatch(w, r.Context(), principal, body)
		return
	}
	var e cloudevents.Event
	var problems []catalog.Problem
	var size int64
	if m == modeBinary {
		e, size, problems = decodeBinary(r.Context(), r.Header, body)
	} else {
		e, problems = decodeStructured(body)
		size = int64(len(body))
	}
	if size > h.limits.MaxEventBytes {
		h.events.WithLabelValues(string(m), StatusRejected).Inc()
		writeProblem(w, problem{Type: problemTooLarge, Title: "Event too large", Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("the event is %d bytes, the limit is %d", size, h.limits.MaxEventBytes)})
		return
	}
	if problems == nil {
		problems = prepare(&e, principal)
	}
	if len(problems) > 0 {
		h.events.WithLabelValues(string(m), StatusRejected).Inc()
		writeProblem(w, problem{Type: problemInvalid, Title: "Invalid event", Status: http.StatusBadRequest,
			Detail: summarize(problems), Errors: problems})
		return
	}
	if err := h.producer.Send(r.Context(), []cloudevents.Event{e})[0]; err != nil {
		h.events.WithLabelValues(string(m), StatusUnavailable).Inc()
		h.kafkaDown.Log("unavailable", 1, "accepted", 0, "event_id", e.ID(), "error", err)
		h.unavailable(w, writeProblem, "the event could not be stored durably; retry later")
		return
	}
	h.events.WithLabelValues(string(m), StatusAccepted).Inc()
	writeJSON(w, http.StatusAccepted, contentTypeJSON, Result{ID: e.ID(), Source: e.Source(), Status: StatusAccepted})
}

// receive is the path every post takes before its content is read: the body's deadline, the
// key, the content coding, the content type (checkType, answered 415), the declared length,
// a turn among MaxConcurrentRequests, then the body, decompressed within MaxRequestBytes. fail
// writes a refusal in the endpoint's own form. When ok, the caller answers through w (which
// bounds the answer's write) and calls release once it has.
func (h *Handler) receive(w http.ResponseWriter, r *http.Request, fail func(http.ResponseWriter, problem), checkType func() error) (
	principal authclient.Principal, body []byte, _ http.ResponseWriter, release func(), ok bool) {
	// The server bounds reading headers, not bodies. Bound the body here for an early answer
	// (net/http reads the rest of a small body before writing it); reading it bounds it again.
	rc := http.NewResponseController(w)
	h.bodyDeadline(rc)
	principal, ok = h.authenticate(w, r, fail)
	if !ok {
		return
	}
	gzipped, err := contentCoding(r.Header)
	if err != nil {
		w.Header().Set("Accept-Encoding", "gzip")
		fail(w, problem{Type: problemMediaType, Title: "Unsupported content encoding", Status: http.StatusUnsupportedMediaType, Detail: err.Error()})
		return principal, nil, w, nil, false
	}
	if err := checkType(); err != nil {
		fail(w, problem{Type: problemMediaType, Title: "Unsupported media type", Status: http.StatusUnsupportedMediaType, Detail: err.Error()})
		return principal, nil, w, nil, false
	}
	// A declared length over the limit is refused before the body is read (and before an
	// Expect: 100-continue client is told to send it).
	if r.ContentLength > h.limits.MaxRequestBytes {
		h.requestTooLarge(w, fail, "")
		return principal, nil, w, nil, false
	}
	release = func() {}
	if h.turns != nil {
		select {
		case h.turns <- struct{}{}:
			release = func() { <-h.turns }
			if h.limits.ClientTimeout > 0 {
				w = &boundedAnswer{ResponseWriter: w, rc: rc, timeout: h.limits.ClientTimeout}
			}
		case <-r.Context().Done():
			return principal, nil, w, nil, false // the client gave up while waiting
		}
	}
	// The body gets ClientTimeout from now, once the request's turn came.
	body, err = runtime.ReadBody(w, r, h.limits.MaxRequestBytes, h.limits.ClientTimeout)
	if err == nil && gzipped {
		body, err = gunzip(body, h.limits.MaxRequestBytes)
	}
	if err != nil {
		release()
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			h.requestTooLarge(w, fail, "")
		case errors.Is(err, errDecompressedTooLarge):
			h.requestTooLarge(w, fail, "decompressed ")
		case errors.Is(err, os.ErrDeadlineExceeded):
			fail(w, problem{Type: problemTimeout, Title: "Request timeout", Status: http.StatusRequestTimeout,
				Detail: fmt.Sprintf("the request body did not arrive within %s", h.limits.ClientTimeout)})
		default:
			fail(w, problem{Type: problemInvalid, Title: "Unreadable body", Status: http.StatusBadRequest, Detail: err.Error()})
		}
		return principal, nil, w, nil, false
	}
	return principal, body, w, release, true
}

func (h *Handler) serveBatch(w http.ResponseWriter, ctx context.Context, principal authclient.Principal, body []byte) {
	elems, err := readBatch(body, h.limits.MaxBatchEvents)
	var tooMany tooManyEvents
	switch {
	case errors.As(err, &tooMany):
		writeProblem(w, problem{Type: problemTooLarge, Title: "Batch too large", Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("the batch holds %d events, the limit is %d", tooMany.n, h.limits.MaxBatchEvents)})
		return
	case err != nil:
		writeProblem(w, problem{Type: problemInvalid, Title: "Invalid batch", Status: http.StatusBadRequest,
			Detail: "a batch must be a JSON array of CloudEvents: " + err.Error()})
		return
	case len(elems) == 0:
		writeProblem(w, problem{Type: problemInvalid, Title: "Invalid batch", Status: http.StatusBadRequest, Detail: "the batch is empty"})
		return
	}
	results := make([]Result, len(elems))
	valid := make([]cloudevents.Event, 0, len(elems))
	validIdx := make([]int, 0, len(elems))
	for i, elem := range elems {
		e, problems := elem.event, elem.problems
		if int64(len(elem.raw)) > h.limits.MaxEventBytes {
			problems = []catalog.Problem{{Detail: fmt.Sprintf("the event is %d bytes, the limit is %d", len(elem.raw), h.limits.MaxEventBytes)}}
		}
		if problems == nil {
			problems = prepare(&e, principal)
		}
		results[i] = Result{Index: i, ID: e.ID(), Source: e.Source()}
		if len(problems) > 0 {
			results[i].Status, results[i].Problems = StatusRejected, problems
			continue
		}
		valid = append(valid, e)
		validIdx = append(validIdx, i)
	}
	var accepted, unavailable int
	var firstErr error
	if len(valid) > 0 {
		for j, err := range h.producer.Send(ctx, valid) {
			i := validIdx[j]
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				results[i].Status = StatusUnavailable
				results[i].Problems = []catalog.Problem{{Detail: "not stored durably; retry this event"}}
				unavailable++
				continue
			}
			results[i].Status = StatusAccepted
			accepted++
		}
	}
	rejected := len(elems) - len(valid)
	h.events.WithLabelValues(string(modeBatch), StatusAccepted).Add(float64(accepted))
	h.events.WithLabelValues(string(modeBatch), StatusRejected).Add(float64(rejected))
	h.events.WithLabelValues(string(modeBatch), StatusUnavailable).Add(float64(unavailable))

	switch {
	case unavailable > 0:
		h.kafkaDown.Log("unavailable", unavailable, "accepted", accepted, "error", firstErr)
		setRetryAfter(w, h.retryAfter)
		writeProblem(w, problem{Type: problemUnavailable, Title: "Events not stored", Status: http.StatusServiceUnavailable,
			Detail:  fmt.Sprintf("%d of %d events could not be stored durably; retry them (re-sending accepted ones is safe: a re-sent event replaces the row it wrote)", unavailable, len(elems)),
			Results: results})
	case accepted == 0:
		writeProblem(w, problem{Type: problemInvalid, Title: "Invalid batch", Status: http.StatusBadRequest,
			Detail: fmt.Sprintf("all %d events were rejected", len(elems)), Results: results})
	case rejected > 0:
		writeJSON(w, http.StatusMultiStatus, contentTypeJSON, batchResponse{Accepted: accepted, Rejected: rejected, Results: results})
	default:
		writeJSON(w, http.StatusAccepted, contentTypeJSON, batchResponse{Accepted: accepted, Results: results})
	}
}

type batchResponse struct {
	Accepted int      `json:"accepted"`
	Rejected int      `json:"rejected"`
	Results  []Result `json:"results"`
}

func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request, fail func(http.ResponseWriter, problem)) (authclient.Principal, bool) {
	key, err := authclient.BearerKey(r)
	if err == nil {
		var p authclient.Principal
		p, err = h.verifier.Verify(r.Context(), key, authclient.ScopeIngest)
		if err == nil {
			return p, true
		}
	}
	switch status := authclient.HTTPStatus(err); status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="trustplane"`)
		fail(w, problem{Type: problemAuth, Title: "Unauthorized", Status: status, Detail: err.Error()})
	case http.StatusForbidden:
		fail(w, problem{Type: problemForbidden, Title: "Forbidden", Status: status, Detail: err.Error()})
	case http.StatusServiceUnavailable:
		h.authDown.Log("error", err)
		h.unavailable(w, fail, "API keys cannot be verified right now; retry later")
	default:
		h.authFailed.Log("error", err)
		fail(w, problem{Type: problemInternal, Title: "Internal error", Status: http.StatusInternalServerError})
	}
	return authclient.Principal{}, false
}

// bodyDeadline gives the request body ClientTimeout from now to arrive. A writer that cannot
// set deadlines (one not from net/http) is left without one.
func (h *Handler) bodyDeadline(rc *http.ResponseController) {
	if h.limits.ClientTimeout > 0 {
		_ = rc.SetReadDeadline(time.Now().Add(h.limits.ClientTimeout))
	}
}

// boundedAnswer gives the client timeout from the start of the answer to take it, so that a
// client that does not read (an answer can echo most of a batch) gives its turn back.
type boundedAnswer struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (b *boundedAnswer) WriteHeader(code int) {
	_ = b.rc.SetWriteDeadline(time.Now().Add(b.timeout))
	b.ResponseWriter.WriteHeader(code)
}

func (b *boundedAnswer) Unwrap() http.ResponseWriter { return b.ResponseWriter }

// requestTooLarge refuses a body over MaxRequestBytes; how is "" or "decompressed ".
func (h *Handler) requestTooLarge(w http.ResponseWriter, fail func(http.ResponseWriter, problem), how string) {
	fail(w, problem{Type: problemTooLarge, Title: "Request too large", Status: http.StatusRequestEntityTooLarge,
		Detail: fmt.Sprintf("the %srequest body exceeds %d bytes", how, h.limits.MaxRequestBytes)})
}

func (h *Handler) unavailable(w http.ResponseWriter, fail func(http.ResponseWriter, problem), detail string) {
	setRetryAfter(w, h.retryAfter)
	fail(w, problem{Type: problemUnavailable, Title: "Service unavailable", Status: http.StatusServiceUnavailable, Detail: detail})
}

func modeOf(header http.Header) (mode, error) {
	if header.Get("Ce-Specversion") != "" {
		return modeBinary, nil
	}
	ct := header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	switch {
	case err == nil && mt == contentTypeBatch:
		return modeBatch, nil
	case err == nil && mt == contentTypeCEStruct:
		return modeStructured, nil
	}
	return "", fmt.Errorf("content type %q is not a CloudEvents mode: send binary mode (ce-* headers), %s or %s",
		ct, contentTypeCEStruct, contentTypeBatch)
}

// decodeBinary reads a binary-mode event; size counts the body and the ce- headers.
func decodeBinary(ctx context.Context, header http.Header, body []byte) (cloudevents.Event, int64, []catalog.Problem) {
	size := int64(len(body))
	var repeated string
	for k, vs := range header {
		if len(k) > 3 && strings.EqualFold(k[:3], "ce-") {
			for _, v := range vs {
				size += int64(len(k) + len(v))
			}
			if len(vs) > 1 {
				repeated = k
			}
		}
	}
	if repeated != "" {
		// The SDK would silently take the first copy; another reader might take the last.
		return cloudevents.Event{}, size, []catalog.Problem{{Pointer: "/" + strings.ToLower(repeated[3:]),
			Detail: fmt.Sprintf("header %s is repeated; send each attribute once", repeated)}}
	}
	if v := header.Get("Ce-Specversion"); v != cloudevents.VersionV1 {
		return cloudevents.Event{}, size, []catalog.Problem{{Pointer: "/specversion", Detail: fmt.Sprintf("specversion must be %s, got %q", cloudevents.VersionV1, v)}}
	}
	msg := cehttp.NewMessage(header, io.NopCloser(bytes.NewReader(body)))
	e, err := binding.ToEvent(ctx, msg)
	if err != nil {
		return cloudevents.Event{}, size, []catalog.Problem{{Detail: "not a valid binary-mode CloudEvent: " + err.Error()}}
	}
	return *e, size, nil
}

func decodeStructured(raw []byte) (cloudevents.Event, []catalog.Problem) {
	if e, ok := readEnvelope(raw); ok {
		return e, nil
	}
	return decodeStructuredSlowly(raw)
}

// decodeStructuredSlowly is decodeStructured through the SDK's reader alone.
func decodeStructuredSlowly(raw []byte) (cloudevents.Event, []catalog.Problem) {
	var e cloudevents.Event
	if err := json.Unmarshal(raw, &e); err != nil {
		return cloudevents.Event{}, []catalog.Problem{{Detail: "not a valid structured CloudEvent: " + err.Error()}}
	}
	if e.SpecVersion() != cloudevents.VersionV1 {
		return cloudevents.Event{}, []catalog.Problem{{Pointer: "/specversion", Detail: fmt.Sprintf("specversion must be %s, got %q", cloudevents.VersionV1, e.SpecVersion())}}
	}
	return e, nil
}

// prepare validates a decoded event against the catalog and stamps it with the caller's
// identity. The tenant and project always come from the key, whatever the event claimed.
func prepare(e *cloudevents.Event, p authclient.Principal) []catalog.Problem {
	var problems []catalog.Problem
	if err := e.Validate(); err != nil {
		var verr event.ValidationError
		if errors.As(err, &verr) {
			for attr, aerr := range verr {
				problems = append(problems, catalog.Problem{Pointer: "/" + attr, Detail: aerr.Error()})
			}
		} else {
			problems = append(problems, catalog.Problem{Detail: err.Error()})
		}
	}
	t, known := catalog.Lookup(e.Type())
	if e.Type() != "" && !known {
		problems = append(problems, catalog.Problem{Pointer: "/type", Detail: fmt.Sprintf("unknown event type %q; see the event catalog", e.Type())})
	} else if known && !strings.HasPrefix(e.Type(), catalog.TelemetryPrefix) {
		// Security findings are made inside the plane (guard, router), never posted.
		problems = append(problems, catalog.Problem{Pointer: "/type", Detail: fmt.Sprintf("event type %q is not accepted from applications; ingest takes the %s* types", e.Type(), catalog.TelemetryPrefix)})
		known = false
	}
	if ct := e.DataContentType(); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != contentTypeJSON {
			problems = append(problems, catalog.Problem{Pointer: "/datacontenttype", Detail: fmt.Sprintf("data must be application/json, got %q", ct)})
		}
	}
	if e.DataBase64 {
		problems = append(problems, catalog.Problem{Pointer: "/data_base64", Detail: "data must be JSON, not base64"})
	}
	if len(problems) > 0 || !known {
		return problems
	}
	key, dataProblems := t.Validate(e.Data())
	for _, dp := range dataProblems {
		problems = append(problems, catalog.Problem{Pointer: "/data" + dp.Pointer, Detail: dp.Detail})
	}
	if len(problems) > 0 {
		return problems
	}
	e.SetDataContentType(contentTypeJSON)
	catalog.Stamp(e, catalog.Origin{Tenant: p.Tenant, Project: p.Project, KeyID: p.KeyID}, key)
	return nil
}

func summarize(problems []catalog.Problem) string {
	if len(problems) == 1 {
		return problems[0].String()
	}
	return fmt.Sprintf("%s (and %d more problems)", problems[0].String(), len(problems)-1)
}
