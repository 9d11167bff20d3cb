package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/uuid"

	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/functions/auth"
	"github.com/trustplane/trustplane/functions/runtime"
)

// Endpoints of the OpenAI API router serves.
const (
	PathChat       = "/v1/chat/completions"
	PathEmbeddings = "/v1/embeddings"
	PathModels     = "/v1/models"
)

// Headers router reads or sets besides OpenAI's.
const (
	// HeaderTraceID lets a client attach the call to one of its traces.
	HeaderTraceID = "X-Trustplane-Trace-Id"
	// HeaderCallID names the recorded call (the llm-call event id) in every answer.
	HeaderCallID = "X-Trustplane-Call-Id"
)

// EventSource is the CloudEvents source of llm-call events.
const EventSource = "/trustplane/router"

// Capture policies for inputs and outputs in llm-call events.
const (
	CaptureFull      = "full"
	CaptureTruncated = "truncated"
	CaptureNone      = "none"
)

// Capture is how much of a call's input and output its event keeps.
type Capture struct {
	Mode     string
	MaxBytes int // for truncated: the most bytes of JSON kept per field
}

// apply keeps raw whole, cuts it to a JSON string of its first MaxBytes bytes, or drops it.
func (c Capture) apply(raw []byte) json.RawMessage {
	if len(raw) == 0 || c.Mode == CaptureNone {
		return nil
	}
	if c.Mode == CaptureFull || len(raw) <= c.MaxBytes {
		return json.RawMessage(raw)
	}
	cut := c.MaxBytes
	for cut > 0 && !utf8.RuneStart(raw[cut]) {
		cut--
	}
	s, _ := json.Marshal(string(raw[:cut]) + "…")
	return s
}

// Handle registers the endpoints with mux (a runtime.Server or an http.ServeMux).
func (g *Gateway) Handle(mux interface {
	Handle(pattern string, h http.Handler)
}) {
	mux.Handle("POST "+PathChat, http.HandlerFunc(g.serveChat))
	mux.Handle("POST "+PathEmbeddings, http.HandlerFunc(g.serveEmbeddings))
	mux.Handle("GET "+PathModels, http.HandlerFunc(g.serveModels))
	// Everything else under /v1/ gets OpenAI's error format too, not the mux's plain text.
	mux.Handle("/v1/", http.HandlerFunc(serveUnknown))
}

// allowed lists the method each endpoint answers.
var allowed = map[string]string{PathChat: http.MethodPost, PathEmbeddings: http.MethodPost, PathModels: http.MethodGet}

func serveUnknown(w http.ResponseWriter, r *http.Request) {
	if method, ok := allowed[r.URL.Path]; ok {
		w.Header().Set("Allow", method)
		writeError(w, &APIError{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error",
			Message: fmt.Sprintf("%s %s is not supported; use %s", r.Method, r.URL.Path, method)})
		return
	}
	writeError(w, &APIError{Status: http.StatusNotFound, Type: "invalid_request_error",
		Message: fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path)})
}

// call is one request being served and the event it becomes.
type call struct {
	ev           catalog.LLMCall
	principal    auth.Principal
	start        time.Time
	end          time.Time // when the client had its answer, if the call's bookkeeping runs after that
	providerTime time.Duration
	waited       time.Duration
	ttft         time.Duration
	input        []byte
	output       []byte
}

func (c *call) attempt(t *target, err error, elapsed time.Duration) {
	a := catalog.LLMAttempt{Provider: t.pname, Model: t.model, Status: "success", StatusCode: http.StatusOK, LatencyMs: ms(elapsed)}
	if err != nil {
		a.Status, a.StatusCode, a.Error = "error", 0, clip(err.Error(), 4096)
		var ue *UpstreamError
		if errors.As(err, &ue) {
			a.StatusCode = ue.Status
		}
	}
	c.ev.Attempts = append(c.ev.Attempts, a)
}

func (c *call) served(t *target, model string) {
	c.ev.Provider = t.pname
	c.ev.ModelServed = clip(model, 512)
	if model == "" {
		c.ev.ModelServed = clip(t.model, 512)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// begin authenticates the caller and reads the body. ok is false when an answer was sent.
func (g *Gateway) begin(w http.ResponseWriter, r *http.Request, endpoint string) (c *call, body []byte, ok bool) {
	c = &call{start: time.Now()}
	c.ev.ID = uuid.NewString()
	c.ev.Endpoint = endpoint
	c.ev.Timestamp = c.start.UTC()
	p, denied := g.authenticate(r)
	if denied != nil {
		// Not recorded: without a verified key there is no tenant to record it for, and so no
		// call id to give.
		writeError(w, denied)
		return nil, nil, false
	}
	w.Header().Set(HeaderCallID, c.ev.ID)
	c.principal = p
	if tid := r.Header.Get(HeaderTraceID); tid != "" {
		if len(tid) > 128 || strings.ContainsFunc(tid, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
			g.fail(w, c, &APIError{Status: http.StatusBadRequest, Type: errInvalidRequest,
				Message: HeaderTraceID + " must be 1 to 128 printable ASCII characters without spaces"}, catalog.LLMCallInvalid)
			return nil, nil, false
		}
		c.ev.TraceID = tid
	}
	if r.Method == http.MethodGet {
		return c, nil, true
	}
	if mt := r.Header.Get("Content-Type"); mt != "" && !strings.HasPrefix(strings.ToLower(mt), "application/json") {
		g.fail(w, c, &APIError{Status: http.StatusUnsupportedMediaType, Type: errInvalidRequest,
			Message: fmt.Sprintf("Content-Type must be application/json, got %q", mt)}, catalog.LLMCallInvalid)
		return nil, nil, false
	}
	body, err := runtime.ReadBody(w, r, g.opts.MaxRequestBytes, g.opts.BodyTimeout)
	if err != nil {
		w.Header().Set("Connection", "close")
		var tooLarge *http.MaxBytesError
		e := &APIError{Status: http.StatusBadRequest, Type: errInvalidRequest, Message: "the request body could not be read"}
		switch {
		case errors.As(err, &tooLarge):
			e = &APIError{Status: http.StatusRequestEntityTooLarge, Type: errInvalidRequest, Code: "request_too_large",
				Message: fmt.Sprintf("the request body exceeds %d bytes", g.opts.MaxRequestBytes)}
		case errors.Is(err, os.ErrDeadlineExceeded):
			e = &APIError{Status: http.StatusRequestTimeout, Type: errInvalidRequest, Code: "request_timeout",
				Message: fmt.Sprintf("the request body did not arrive within %s", g.opts.BodyTimeout)}
		}
		g.fail(w, c, e, catalog.LLMCallInvalid)
		return nil, nil, false
	}
	return c, body, true
}

func (g *Gateway) authenticate(r *http.Request) (auth.Principal, *APIError) {
	key, err := auth.BearerKey(r)
	if err == nil {
		var p auth.Principal
		if p, err = g.opts.Verifier.Verify(r.Context(), key, auth.ScopeLLM); err == nil {
			return p, nil
		}
	}
	switch status := auth.HTTPStatus(err); status {
	case http.StatusUnauthorized:
		return auth.Principal{}, &APIError{Status: status, Type: errInvalidRequest, Code: "invalid_api_key", Message: err.Error()}
	case http.StatusForbidden:
		return auth.Principal{}, &APIError{Status: status, Type: errPermission, Code: "insufficient_scope", Message: err.Error()}
	case http.StatusServiceUnavailable:
		g.authDown.Log("error", err)
		return auth.Principal{}, &APIError{Status: status, Type: errUnavailable, Message: "API keys cannot be verified right now; retry later", RetryAfter: 1}
	default:
		g.authFailed.Log("error", err)
		return auth.Principal{}, &APIError{Status: http.StatusInternalServerError, Type: errServer, Message: "internal error"}
	}
}

// route finds the model's route and admits the call under its limits. ok is false when an
// answer was sent.
func (g *Gateway) route(w http.ResponseWriter, r *http.Request, c *call, cfg *Routing, model string, tokens int64) (*route, *Admission, bool) {
	c.ev.ModelRequested = clip(model, 512)
	rt, found := cfg.models[model]
	if !found {
		g.fail(w, c, &APIError{Status: http.StatusNotFound, Type: errInvalidRequest, Code: "model_not_found", Param: "model",
			Message: fmt.Sprintf("the model %q does not exist; GET %s lists the models", clip(model, 200), PathModels)}, catalog.LLMCallInvalid)
		return nil, nil, false
	}
	adm, refusal := g.opts.Limiter.Admit(r.Context(), cfg.scopes(c.principal, model), tokens, g.opts.Now())
	if refusal != nil {
		what := map[string]string{kindRequests: "requests per minute", kindTokens: "tokens per minute", kindSpend: "USD per day"}[refusal.Kind]
		refusal.Headers(w.Header())
		g.fail(w, c, &APIError{Status: http.StatusTooManyRequests, Type: errRateLimit, Code: "rate_limit_exceeded",
			Message:    fmt.Sprintf("rate limit reached: %s of %s", what, refusal.Scope),
			RetryAfter: max(1, ceilSeconds(refusal.RetryAfter))}, catalog.LLMCallRateLimited)
		return nil, nil, false
	}
	adm.Headers(w.Header())
	return rt, adm, true
}

// fail answers e and records the call with status.
func (g *Gateway) fail(w http.ResponseWriter, c *call, e *APIError, status string) {
	writeError(w, e)
	c.ev.Status, c.ev.StatusCode, c.ev.Error = status, e.Status, clip(e.Message, 4096)
	g.finish(c)
}

// failed answers the error of a call that was routed.
func (g *Gateway) failed(w http.ResponseWriter, r *http.Request, c *call, err error) {
	if r.Context().Err() != nil {
		c.ev.Status, c.ev.StatusCode, c.ev.Error = catalog.LLMCallCancelled, 499, "the client closed the connection"
		g.finish(c)
		return
	}
	g.fail(w, c, asAPIError(err), catalog.LLMCallError)
}

// finish completes the event and hands it to the recorder.
func (g *Gateway) finish(c *call) {
	end := c.end
	if end.IsZero() {
		end = time.Now()
	}
	total := end.Sub(c.start)
	gateway := max(total-c.providerTime-c.waited, 0)
	c.ev.Latency = catalog.LLMLatency{TotalMs: ms(total), GatewayMs: ms(gateway), ProviderMs: ms(c.providerTime), TTFTMs: ms(c.ttft)}
	g.calls.WithLabelValues(c.ev.Endpoint, c.ev.Status).Inc()
	if c.ev.Status == catalog.LLMCallSuccess {
		g.overhead.Observe(gateway.Seconds())
	}
	if g.opts.Recorder == nil || c.principal.Tenant == "" {
		return
	}
	c.ev.Capture = g.opts.Capture.Mode
	c.ev.Input, c.ev.Output = g.opts.Capture.apply(c.input), g.opts.Capture.apply(c.output)
	e := cloudevents.NewEvent()
	e.SetID(c.ev.ID)
	e.SetSource(EventSource)
	e.SetType(catalog.TypeLLMCall)
	e.SetTime(c.start)
	e.SetExtension(catalog.ExtTenant, c.principal.Tenant)
	e.SetExtension(catalog.ExtProject, c.principal.Project)
	e.SetExtension(catalog.ExtKeyID, c.principal.KeyID)
	e.SetExtension(catalog.ExtPartitionKey, c.ev.PartitionKey())
	// The row version persist uses: a redelivered event writes the same version.
	e.SetExtension(catalog.ExtIngestTime, time.Now())
	if err := e.SetData(cloudevents.ApplicationJSON, c.ev); err != nil {
		g.opts.Logger.Error("llm-call event not encoded", "error", err)
		return
	}
	g.opts.Recorder.Record(e)
}

// settle corrects the limits with the call's usage and cost, and records both.
func (g *Gateway) settle(c *call, cfg *Routing, adm *Admission, t *target, u Usage) {
	c.ev.Usage = catalog.Usage{PromptTokens: uint64(max(u.PromptTokens, 0)), CompletionTokens: uint64(max(u.CompletionTokens, 0)), TotalTokens: uint64(max(u.TotalTokens, 0))}
	if t != nil {
		c.ev.Cost = cfg.cost(u, c.ev.ModelServed, t.model, c.ev.ModelRequested)
	}
	// The client has its answer; the correction must not be lost to its going away. The
	// limiter bounds the wait.
	adm.Settle(context.Background(), u.TotalTokens, c.ev.Cost.Total, g.opts.Now())
}

// estimateTokens guesses a prompt's tokens before the call (about four bytes a token), for
// tokens-per-minute limits; the guess is corrected with the real usage afterwards.
func estimateTokens(raw []byte) int64 { return int64(len(raw)/4) + 1 }

// estimatedUsage stands in for the usage of a call whose provider reported none (a stream that
// ended before its usage chunk, a server that does not count): what was seen still counts
// against the limits and budgets.
func estimatedUsage(input []byte, outputBytes int) Usage {
	u := Usage{PromptTokens: estimateTokens(input), CompletionTokens: int64(outputBytes/4) + 1}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return u
}

func (g *Gateway) serveChat(w http.ResponseWriter, r *http.Request) {
	c, body, ok := g.begin(w, r, "chat.completions")
	if !ok {
		return
	}
	req, err := ParseChatRequest(body)
	if err != nil {
		g.fail(w, c, asAPIError(err), catalog.LLMCallInvalid)
		return
	}
	c.ev.Stream, c.ev.User = req.Stream, clip(req.User, 512)
	c.input = req.raw["messages"]
	cfg := g.routing.Load()
	rt, adm, ok := g.route(w, r, c, cfg, req.Model, estimateTokens(c.input))
	if !ok {
		return
	}
	if req.Stream {
		g.stream(w, r, c, cfg, rt, adm, req)
		return
	}
	g.answer(w, r, c, cfg, rt, adm, func(ctx context.Context, t *target) (answer, error) {
		res, err := t.provider.Chat(ctx, t.model, req)
		if err != nil {
			return answer{}, err
		}
		return answer{body: res.Body, model: res.Model, usage: res.Usage, output: res.Output}, nil
	})
}

// answer is what a provider answered to a non-streaming call.
type answer struct {
	body   []byte // passed on to the client as it came
	model  string // the model that served it
	usage  Usage
	output json.RawMessage // for capture; nil when the call has nothing to capture
}

// answer runs a non-streaming call on the route's targets (retries, fallbacks, a timeout per
// target), answers the client and records the outcome.
func (g *Gateway) answer(w http.ResponseWriter, r *http.Request, c *call, cfg *Routing, rt *route, adm *Admission,
	do func(ctx context.Context, t *target) (answer, error)) {
	var got answer
	t, err := g.try(r.Context(), cfg, rt, c, func(ctx context.Context, t *target) error {
		ctx, cancel := context.WithTimeout(ctx, t.timeout)
		defer cancel()
		var err error
		got, err = do(ctx, t)
		return err
	})
	if err != nil {
		g.settle(c, cfg, adm, nil, Usage{})
		g.failed(w, r, c, err)
		return
	}
	c.served(t, got.model)
	c.output = got.output
	g.respond(w, got.body)
	if got.usage == (Usage{}) {
		got.usage = estimatedUsage(c.input, len(got.output))
	}
	g.settle(c, cfg, adm, t, got.usage)
	c.ev.Status, c.ev.StatusCode = catalog.LLMCallSuccess, http.StatusOK
	g.finish(c)
}

func (g *Gateway) respond(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	// Send it now: what follows (limits, the llm-call event) is not the client's to wait for.
	_ = http.NewResponseController(w).Flush()
}

// maxStreamCapture bounds the streamed text kept for capture, whatever the policy.
const maxStreamCapture = 1 << 20

func (g *Gateway) stream(w http.ResponseWriter, r *http.Request, c *call, cfg *Routing, rt *route, adm *Admission, req *ChatRequest) {
	var s ChunkStream
	var first Chunk
	var eof bool
	var stop context.CancelCauseFunc
	// The end of the provider's answer is read after the client's answer has ended (see release
	// below), so the upstream request must outlive this handler: it follows the client's
	// context only until the stream is over.
	upCtx, upCancel := context.WithCancelCause(context.WithoutCancel(r.Context()))
	unfollow := context.AfterFunc(r.Context(), func() { upCancel(context.Cause(r.Context())) })
	handedOff := false
	defer func() {
		if !handedOff { // an error before the stream, or a panic on the way
			unfollow()
			upCancel(context.Canceled)
		}
	}()
	t, err := g.try(upCtx, cfg, rt, c, func(ctx context.Context, t *target) error {
		// The target's timeout covers the wait for the first chunk, not the whole stream (and
		// then each wait for the next chunk: see below).
		sctx, cancel := context.WithCancelCause(ctx)
		timer := time.AfterFunc(t.timeout, func() { cancel(context.DeadlineExceeded) })
		st, err := t.provider.ChatStream(sctx, t.model, req)
		if err == nil {
			first, err = st.Next()
			if err == io.EOF {
				eof, err = true, nil
			}
			if err != nil {
				st.Close()
			}
		}
		timer.Stop()
		if err != nil {
			cancel(err)
			return err
		}
		s, stop = st, cancel
		return nil
	})
	if err != nil {
		g.settle(c, cfg, adm, nil, Usage{})
		g.failed(w, r, c, err)
		return
	}
	// Past the first chunk, the target's timeout bounds each wait for the next one: an upstream
	// that stalls mid-stream ends the call (504 upstream_timeout as the stream's last event,
	// and recorded) instead of holding it, and the client, for good.
	idle := time.AfterFunc(t.timeout, func() { stop(context.DeadlineExceeded) })
	idle.Stop()
	// Closing s waits for the end of the provider's answer, which comes after its last event:
	// it is left to the bookkeeping below, after the client's answer has ended. Closing s
	// before cancelling keeps the connection for the next call.
	release := func() {
		idle.Reset(min(t.timeout, streamEndWait))
		_ = s.Close()
		idle.Stop()
		stop(context.Canceled)
		upCancel(context.Canceled)
	}
	defer func() {
		if !handedOff {
			release()
		}
	}()
	c.ttft = time.Since(c.start)
	c.served(t, first.Model)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)

	var usage *Usage
	var text strings.Builder
	var calls streamedCalls
	var streamErr error
	var buf []byte
	// As OpenAI does, the usage chunk goes only to a client that asked for it.
	wantUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	chunk := first
	for !eof {
		if chunk.Usage != nil {
			usage = chunk.Usage
		}
		if text.Len() < maxStreamCapture {
			text.WriteString(chunk.Text)
		}
		for _, d := range chunk.ToolCalls {
			calls.add(d)
		}
		if !chunk.UsageOnly || wantUsage {
			buf = append(append(append(buf[:0], "data: "...), chunk.Data...), "\n\n"...)
			if _, err := w.Write(buf); err != nil {
				streamErr = err
				break
			}
			if bs, ok := s.(bufferedStream); !ok || !bs.Buffered() {
				if err := rc.Flush(); err != nil {
					streamErr = err
					break
				}
			}
		}
		start := time.Now()
		idle.Reset(t.timeout)
		chunk, streamErr = s.Next()
		idle.Stop()
		c.providerTime += time.Since(start)
		if streamErr == io.EOF {
			eof, streamErr = true, nil
		}
		if streamErr != nil {
			break
		}
	}
	// What is written from here on goes to the client with the end of the answer, in one write,
	// when the handler returns.
	if eof {
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	}
	switch {
	case streamErr == nil:
		c.ev.Status, c.ev.StatusCode = catalog.LLMCallSuccess, http.StatusOK
	case r.Context().Err() != nil:
		// The client went away: closing s (deferred) cancels the upstream request.
		c.ev.Status, c.ev.StatusCode, c.ev.Error = catalog.LLMCallCancelled, 499, "the client closed the connection during the stream"
	default:
		// Too late for a status code: the error goes to the client as a last event.
		e := asAPIError(streamErr)
		_, _ = w.Write(append(append([]byte("data: "), e.body()...), "\n\n"...))
		c.ev.Status, c.ev.StatusCode, c.ev.Error = catalog.LLMCallError, e.Status, clip(streamErr.Error(), 4096)
	}
	// The stream ends for the client when this handler returns; the bookkeeping (a limits
	// round trip to Redis, encoding the event) need not hold it up.
	c.end = time.Now()
	g.tails.add()
	unfollow()
	handedOff = true
	go func() {
		defer g.tails.done()
		release()
		out := Message{Role: "assistant", Content: mustJSON(text.String()), ToolCalls: calls.done()}
		if text.Len() == 0 && len(out.ToolCalls) > 0 {
			out.Content = json.RawMessage("null")
		}
		c.output, _ = json.Marshal(out)
		var u Usage
		if usage != nil {
			u = *usage
		} else {
			// The stream ended before its usage chunk: count what was seen.
			u = estimatedUsage(c.input, text.Len())
		}
		g.settle(c, cfg, adm, t, u)
		g.finish(c)
	}()
}

// streamEndWait bounds the wait for the end of a provider's answer after its last event. The end
// normally follows at once; one that does not come costs the connection (closed, not reused),
// not the call's record, which waits for it, nor a shutdown, which waits for the records.
const streamEndWait = time.Second

// maxStreamToolCalls bounds the streamed tool calls kept for capture.
const maxStreamToolCalls = 128

// streamedCalls puts streamed tool call deltas together for capture: the first delta of a call
// names it, the later ones add pieces of its arguments, gathered in a buffer each (adding to
// the string itself would copy the arguments so far for every piece).
type streamedCalls struct {
	calls []ToolCall
	args  [][]byte
}

func (s *streamedCalls) add(d ToolCall) {
	i := len(s.calls)
	if d.Index != nil {
		i = *d.Index
	}
	if i < 0 || i >= maxStreamToolCalls {
		return
	}
	for len(s.calls) <= i {
		s.calls = append(s.calls, ToolCall{})
		s.args = append(s.args, nil)
	}
	tc := &s.calls[i]
	if d.ID != "" {
		tc.ID = d.ID
	}
	if d.Type != "" {
		tc.Type = d.Type
	}
	if d.Function.Name != "" {
		tc.Function.Name = d.Function.Name
	}
	if len(s.args[i]) < maxStreamCapture {
		s.args[i] = append(s.args[i], d.Function.Arguments...)
	}
}

// done returns the calls with their arguments.
func (s *streamedCalls) done() []ToolCall {
	for i := range s.calls {
		s.calls[i].Function.Arguments = string(s.args[i])
	}
	return s.calls
}

func mustJSON(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

func (g *Gateway) serveEmbeddings(w http.ResponseWriter, r *http.Request) {
	c, body, ok := g.begin(w, r, "embeddings")
	if !ok {
		return
	}
	req, err := ParseEmbeddingRequest(body)
	if err != nil {
		g.fail(w, c, asAPIError(err), catalog.LLMCallInvalid)
		return
	}
	c.input = req.Input
	cfg := g.routing.Load()
	rt, adm, ok := g.route(w, r, c, cfg, req.Model, estimateTokens(req.Input))
	if !ok {
		return
	}
	g.answer(w, r, c, cfg, rt, adm, func(ctx context.Context, t *target) (answer, error) {
		res, err := t.provider.Embed(ctx, t.model, req)
		if err != nil {
			return answer{}, err
		}
		return answer{body: res.Body, model: res.Model, usage: res.Usage}, nil
	})
}

type modelList struct {
	Object string      `json:"object"`
	Data   []modelInfo `json:"data"`
}

type modelInfo struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (g *Gateway) serveModels(w http.ResponseWriter, r *http.Request) {
	if _, err := g.authenticate(r); err != nil {
		writeError(w, err)
		return
	}
	cfg := g.routing.Load()
	list := modelList{Object: "list", Data: make([]modelInfo, 0, len(cfg.names))}
	for _, n := range cfg.names {
		list.Data = append(list.Data, modelInfo{ID: n, Object: "model", OwnedBy: "trustplane"})
	}
	body, _ := json.Marshal(list)
	g.respond(w, body)
}
