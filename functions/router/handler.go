// Package router is trustplane's OpenAI-compatible LLM gateway: its HTTP API (chat completions,
// streamed or not, embeddings, the model list), the configuration and the wiring New does. A call
// is authenticated by auth, admitted by limits, routed by routing to a provider of providers, and
// recorded as an llm-call event. The README is the map.
package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/functions/guard/policy"
	"github.com/trustplane/trustplane/functions/router/limits"
	"github.com/trustplane/trustplane/functions/router/openai"
	"github.com/trustplane/trustplane/functions/router/providers"
	"github.com/trustplane/trustplane/functions/router/routing"
	"github.com/trustplane/trustplane/functions/runtime"
)

// Endpoints of the OpenAI API router serves.
const (
	PathChat       = "/v1/chat/completions"
	PathEmbeddings = "/v1/embeddings"
	PathModels     = "/v1/models"
	// PathPolicy shows the content policy in force for the caller's key (its tenant and
	// project) and ?model=.
	PathPolicy = "/v1/guard/policy"
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

// Options configure a Gateway.
type Options struct {
	Verifier authclient.Verifier
	// Limiter enforces limits and budgets; nil keeps them in memory (one replica), its metrics
	// registered with Registerer.
	Limiter *limits.Limiter
	// Recorder receives the llm-call events; nil records nothing.
	Recorder *Recorder
	// Capture and MaxRequestBytes are Config's ROUTER_CAPTURE, ROUTER_CAPTURE_MAX_BYTES and
	// MAX_REQUEST_BYTES, which state their defaults.
	Capture         Capture
	MaxRequestBytes int64
	// BodyTimeout bounds the wait for a request's body, so that a client that stalls while
	// sending it does not hold a connection and a goroutine for good; default 30s.
	BodyTimeout time.Duration
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
	// Now is the clock of limits, budgets and circuit breakers; default time.Now.
	Now func() time.Time
	// Rand draws the weighted strategy's order and the retry jitter; nil uses math/rand/v2's
	// global source. Tests pass a seeded one so that their draws are the same on every run.
	Rand *rand.Rand
	// Guard runs the inline content checks; nil runs none.
	Guard *Guard
}

// Gateway is the OpenAI-compatible gateway: it authenticates, limits, routes and records calls.
type Gateway struct {
	opts   Options
	routes *routing.Source
	router *routing.Router

	calls    *prometheus.CounterVec
	overhead prometheus.Histogram
	// While auth is down every call fails the same way: logged once per interval with a
	// count, not once per call (calls_total counts each).
	authDown, authFailed *runtime.RepeatedLog

	// tails are the calls whose bookkeeping (limit corrections, the llm-call event) runs after
	// their answer went out, so that it does not delay the client's end of stream.
	tails tailCount
}

// NewGateway serves the routing of routes.
func NewGateway(routes *routing.Source, opts Options) *Gateway {
	if opts.BodyTimeout <= 0 {
		opts.BodyTimeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Limiter == nil {
		opts.Limiter = limits.NewLimiter(nil, limits.Options{Logger: opts.Logger, Registerer: opts.Registerer})
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	g := &Gateway{opts: opts, routes: routes, router: &routing.Router{Now: opts.Now, Rand: opts.Rand},
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "trustplane", Subsystem: "router", Name: "calls_total",
			Help: "LLM calls, by endpoint and status (success, error, rate_limited, invalid, cancelled)."}, []string{"endpoint", "status"}),
		overhead: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "trustplane", Subsystem: "router", Name: "gateway_overhead_seconds",
			Help:    "Time a call spent in the gateway itself: total minus provider time and retry waits.",
			Buckets: []float64{.0001, .00025, .0005, .001, .002, .005, .01, .025, .1}}),
	}
	g.authDown = runtime.NewRepeatedLog(opts.Logger, slog.LevelWarn, "auth unavailable: calls answered 503", runtime.RepeatInterval)
	g.authFailed = runtime.NewRepeatedLog(opts.Logger, slog.LevelError, "auth failed: calls answered 500", runtime.RepeatInterval)
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(g.calls, g.overhead)
	}
	return g
}

// Routes are the gateway's endpoints, as runtime.Function.Routes. Everything else under /v1/
// gets OpenAI's error format too, not the mux's plain text.
func (g *Gateway) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"POST " + PathChat:       http.HandlerFunc(g.serveChat),
		"POST " + PathEmbeddings: http.HandlerFunc(g.serveEmbeddings),
		"GET " + PathModels:      http.HandlerFunc(g.serveModels),
		"GET " + PathPolicy:      http.HandlerFunc(g.servePolicy),
		"/v1/":                   http.HandlerFunc(serveUnknown),
	}
}

// allowed lists the method each endpoint answers.
var allowed = map[string]string{PathChat: http.MethodPost, PathEmbeddings: http.MethodPost, PathModels: http.MethodGet, PathPolicy: http.MethodGet}

func serveUnknown(w http.ResponseWriter, r *http.Request) {
	if method, ok := allowed[r.URL.Path]; ok {
		w.Header().Set("Allow", method)
		openai.WriteError(w, &openai.APIError{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error",
			Message: fmt.Sprintf("%s %s is not supported; use %s", r.Method, r.URL.Path, method)})
		return
	}
	openai.WriteError(w, &openai.APIError{Status: http.StatusNotFound, Type: "invalid_request_error",
		Message: fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path)})
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
		openai.WriteError(w, denied)
		return nil, nil, false
	}
	w.Header().Set(HeaderCallID, c.ev.ID)
	c.principal = p
	if tid := r.Header.Get(HeaderTraceID); tid != "" {
		if len(tid) > 128 || strings.ContainsFunc(tid, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
			g.fail(w, c, &openai.APIError{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest,
				Message: HeaderTraceID + " must be 1 to 128 printable ASCII characters without spaces"}, catalog.LLMCallInvalid)
			return nil, nil, false
		}
		c.ev.TraceID = tid
	}
	if r.Method == http.MethodGet {
		return c, nil, true
	}
	if mt := r.Header.Get("Content-Type"); mt != "" && !strings.HasPrefix(strings.ToLower(mt), "application/json") {
		g.fail(w, c, &openai.APIError{Status: http.StatusUnsupportedMediaType, Type: openai.TypeInvalidRequest,
			Message: fmt.Sprintf("Content-Type must be application/json, got %q", mt)}, catalog.LLMCallInvalid)
		return nil, nil, false
	}
	body, err := runtime.ReadBody(w, r, g.opts.MaxRequestBytes, g.opts.BodyTimeout)
	if err != nil {
		w.Header().Set("Connection", "close")
		var tooLarge *http.MaxBytesError
		e := &openai.APIError{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Message: "the request body could not be read"}
		switch {
		case errors.As(err, &tooLarge):
			e = &openai.APIError{Status: http.StatusRequestEntityTooLarge, Type: openai.TypeInvalidRequest, Code: "request_too_large",
				Message: fmt.Sprintf("the request body exceeds %d bytes", g.opts.MaxRequestBytes)}
		case errors.Is(err, os.ErrDeadlineExceeded):
			e = &openai.APIError{Status: http.StatusRequestTimeout, Type: openai.TypeInvalidRequest, Code: "request_timeout",
				Message: fmt.Sprintf("the request body did not arrive within %s", g.opts.BodyTimeout)}
		}
		g.fail(w, c, e, catalog.LLMCallInvalid)
		return nil, nil, false
	}
	return c, body, true
}

func (g *Gateway) authenticate(r *http.Request) (authclient.Principal, *openai.APIError) {
	key, err := authclient.BearerKey(r)
	if err == nil {
		var p authclient.Principal
		if p, err = g.opts.Verifier.Verify(r.Context(), key, authclient.ScopeLLM); err == nil {
			return p, nil
		}
	}
	switch status := authclient.HTTPStatus(err); status {
	case http.StatusUnauthorized:
		return authclient.Principal{}, &openai.APIError{Status: status, Type: openai.TypeInvalidRequest, Code: "invalid_api_key", Message: err.Error()}
	case http.StatusForbidden:
		return authclient.Principal{}, &openai.APIError{Status: status, Type: openai.TypePermission, Code: "insufficient_scope", Message: err.Error()}
	case http.StatusServiceUnavailable:
		g.authDown.Log("error", err)
		return authclient.Principal{}, &openai.APIError{Status: status, Type: openai.TypeUnavailable, Message: "API keys cannot be verified right now; retry later", RetryAfter: time.Second}
	default:
		g.authFailed.Log("error", err)
		return authclient.Principal{}, &openai.APIError{Status: http.StatusInternalServerError, Type: openai.TypeServer, Message: "internal error"}
	}
}

// route finds the model's route and admits the call under its limits. ok is false when an
// answer was sent.
func (g *Gateway) route(w http.ResponseWriter, r *http.Request, c *call, cfg *routing.Table, model string, tokens int64) (*routing.Route, *limits.Admission, bool) {
	c.ev.ModelRequested = clip(model, 512)
	rt, found := cfg.Route(model)
	if !found {
		g.fail(w, c, &openai.APIError{Status: http.StatusNotFound, Type: openai.TypeInvalidRequest, Code: "model_not_found", Param: "model",
			Message: fmt.Sprintf("the model %q does not exist; GET %s lists the models", clip(model, 200), PathModels)}, catalog.LLMCallInvalid)
		return nil, nil, false
	}
	adm, refusal := g.opts.Limiter.Admit(r.Context(), cfg.Scopes(c.principal, model), tokens, g.opts.Now())
	if refusal != nil {
		what := map[string]string{limits.KindRequests: "requests per minute", limits.KindTokens: "tokens per minute", limits.KindSpend: "USD per day"}[refusal.Kind]
		refusal.Headers(w.Header())
		g.fail(w, c, &openai.APIError{Status: http.StatusTooManyRequests, Type: openai.TypeRateLimit, Code: "rate_limit_exceeded",
			Message:    fmt.Sprintf("rate limit reached: %s of %s", what, refusal.Scope),
			RetryAfter: max(time.Second, refusal.RetryAfter)}, catalog.LLMCallRateLimited)
		return nil, nil, false
	}
	adm.Headers(w.Header())
	return rt, adm, true
}

// fail answers e and records the call with status.
func (g *Gateway) fail(w http.ResponseWriter, c *call, e *openai.APIError, status string) {
	openai.WriteError(w, e)
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

func (g *Gateway) serveChat(w http.ResponseWriter, r *http.Request) {
	c, body, ok := g.begin(w, r, "chat.completions")
	if !ok {
		return
	}
	req, err := openai.ParseChatRequest(body)
	if err != nil {
		g.fail(w, c, asAPIError(err), catalog.LLMCallInvalid)
		return
	}
	c.ev.Stream, c.ev.User = req.Stream, clip(req.User, 512)
	if c.guard = g.opts.Guard.guardFor(c, req.Model); c.guard != nil {
		if e := c.guard.checkChat(req); e != nil {
			c.ev.ModelRequested = clip(req.Model, 512)
			g.fail(w, c, e, statusOfRefusal(e))
			return
		}
	}
	c.input = req.Raw("messages")
	cfg := g.routes.Get()
	rt, adm, ok := g.route(w, r, c, cfg, req.Model, estimateTokens(c.input))
	if !ok {
		return
	}
	if req.Stream {
		g.stream(w, r, c, cfg, rt, adm, req)
		return
	}
	g.answer(w, r, c, cfg, rt, adm, func(ctx context.Context, t *routing.Target) (answer, error) {
		res, err := t.Provider.Chat(ctx, t.Model, req)
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
	usage  openai.Usage
	output json.RawMessage // for capture; nil when the call has nothing to capture
}

// answer runs a non-streaming call on the route's targets (retries, fallbacks, a timeout per
// target), answers the client and records the outcome.
func (g *Gateway) answer(w http.ResponseWriter, r *http.Request, c *call, cfg *routing.Table, rt *routing.Route, adm *limits.Admission,
	do func(ctx context.Context, t *routing.Target) (answer, error)) {
	var got answer
	t, err := g.router.Try(r.Context(), cfg, rt, c, func(ctx context.Context, t *routing.Target) error {
		ctx, cancel := context.WithTimeout(ctx, t.Timeout)
		defer cancel()
		var err error
		got, err = do(ctx, t)
		return err
	})
	if err != nil {
		g.settle(c, cfg, adm, nil, openai.Usage{})
		g.failed(w, r, c, err)
		return
	}
	c.served(t, got.model)
	c.output = got.output
	if got.usage == (openai.Usage{}) {
		got.usage = estimatedUsage(c.input, len(got.output))
	}
	if c.guard != nil && c.ev.Endpoint == "chat.completions" {
		body, capture, e := c.guard.checkAnswer(got.body)
		if e != nil {
			c.output = nil
			g.settle(c, cfg, adm, t, got.usage)
			g.fail(w, c, e, catalog.LLMCallError)
			return
		}
		if capture != nil {
			c.output = capture
		}
		got.body = body
	}
	g.respond(w, got.body)
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

func (g *Gateway) serveEmbeddings(w http.ResponseWriter, r *http.Request) {
	c, body, ok := g.begin(w, r, "embeddings")
	if !ok {
		return
	}
	req, err := openai.ParseEmbeddingRequest(body)
	if err != nil {
		g.fail(w, c, asAPIError(err), catalog.LLMCallInvalid)
		return
	}
	if c.guard = g.opts.Guard.guardFor(c, req.Model); c.guard != nil {
		if e := c.guard.checkEmbeddings(req); e != nil {
			c.ev.ModelRequested = clip(req.Model, 512)
			g.fail(w, c, e, statusOfRefusal(e))
			return
		}
	}
	c.input = req.Input
	cfg := g.routes.Get()
	rt, adm, ok := g.route(w, r, c, cfg, req.Model, estimateTokens(req.Input))
	if !ok {
		return
	}
	g.answer(w, r, c, cfg, rt, adm, func(ctx context.Context, t *routing.Target) (answer, error) {
		res, err := t.Provider.Embed(ctx, t.Model, req)
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
		openai.WriteError(w, err)
		return
	}
	cfg := g.routes.Get()
	list := modelList{Object: "list", Data: make([]modelInfo, 0, len(cfg.Models()))}
	for _, n := range cfg.Models() {
		list.Data = append(list.Data, modelInfo{ID: n, Object: "model", OwnedBy: "trustplane"})
	}
	body, _ := json.Marshal(list)
	g.respond(w, body)
}

// statusOfRefusal is the recorded status of a call the content checks refused: invalid for a
// blocked request, error when the checks could not run.
func statusOfRefusal(e *openai.APIError) string {
	if e.Status == http.StatusBadRequest {
		return catalog.LLMCallInvalid
	}
	return catalog.LLMCallError
}

// firstMessage is the first choice's message of a completion, for capture.
func firstMessage(body []byte) json.RawMessage {
	var r struct {
		Choices []struct {
			Message json.RawMessage `json:"message"`
		} `json:"choices"`
	}
	if json.Unmarshal(body, &r) != nil || len(r.Choices) == 0 {
		return nil
	}
	return r.Choices[0].Message
}

// policyAnswer is what GET /v1/guard/policy answers.
type policyAnswer struct {
	Tenant  string         `json:"tenant"`
	Project string         `json:"project"`
	Model   string         `json:"model"`
	Enabled bool           `json:"enabled"`
	Policy  *policy.Policy `json:"policy,omitempty"`
}

// servePolicy shows the content policy in force for the caller: the tenant and project come
// from the key, never from the request, so a key sees only its own policy.
func (g *Gateway) servePolicy(w http.ResponseWriter, r *http.Request) {
	p, err := g.authenticate(r)
	if err != nil {
		openai.WriteError(w, err)
		return
	}
	model := r.URL.Query().Get("model")
	ans := policyAnswer{Tenant: p.Tenant, Project: p.Project, Model: clip(model, 512), Enabled: g.opts.Guard != nil}
	if g.opts.Guard != nil {
		ans.Policy = g.opts.Guard.checks.Policies.Get().Resolve(p.Tenant, p.Project, model)
	}
	body, _ := json.Marshal(ans)
	g.respond(w, body)
}

// asAPIError is what the client is told of err.
func asAPIError(err error) *openai.APIError {
	var ae *openai.APIError
	if errors.As(err, &ae) {
		return ae
	}
	var ue *providers.UpstreamError
	if errors.As(err, &ue) {
		return ue.APIError()
	}
	return &openai.APIError{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Message: err.Error()}
}
