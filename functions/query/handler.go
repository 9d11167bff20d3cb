// Package query is trustplane's analytics API for the control plane: cursor-paged lists of
// traces, observations, scores, llm calls and findings, a trace with everything that belongs to
// it, and metrics over each view, answered from hourly rollups when a query fits them and from
// raw rows otherwise, with the same numbers either way. The tenant and the project come from
// the API key (scope query) and nowhere else.
package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/functions/router/limits"
	"github.com/trustplane/trustplane/functions/runtime"
)

// Handler serves query's HTTP API.
type Handler struct {
	verifier authclient.Verifier
	reader   *reader
	views    map[string]*view
	limits   Limits
	log      *slog.Logger
	now      func() time.Time
	mux      *http.ServeMux
	turns    chan struct{}
	rate     *keyRate

	requests *prometheus.CounterVec
	sources  *prometheus.CounterVec
	duration *prometheus.HistogramVec

	authDown, failed *runtime.RepeatedLog
}

// HandlerOptions are what the API needs besides its verifier and reader.
type HandlerOptions struct {
	Limits Limits
	// Limiter decides the per-key rate limit (its store: Redis, shared by the replicas, or
	// none); nil: this handler's own buckets in memory.
	Limiter    *limits.Limiter
	Logger     *slog.Logger          // nil: logs nowhere
	Registerer prometheus.Registerer // nil: metrics are not registered
	Now        func() time.Time      // default time.Now
}

// NewHandler builds the API over r, verifying keys with v.
func NewHandler(v authclient.Verifier, r *reader, opts HandlerOptions) *Handler {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	limiter := opts.Limiter
	if limiter == nil {
		limiter = limits.NewLimiter(nil, limits.Options{Subsystem: "query"})
	}
	h := &Handler{verifier: v, reader: r, views: views(r.features), limits: opts.Limits, log: log, now: now,
		turns: make(chan struct{}, max(opts.Limits.MaxConcurrent, 1)), rate: newKeyRate(limiter, opts.Limits),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "trustplane", Subsystem: "query", Name: "requests_total",
			Help: "Requests by route and outcome (ok, invalid, unauthorized, forbidden, not_found, rate_limited, too_expensive, unavailable, error)."}, []string{"route", "outcome"}),
		sources: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "trustplane", Subsystem: "query", Name: "metrics_source_total",
			Help: "Metrics answers by view and source (rollup or raw)."}, []string{"view", "source"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "trustplane", Subsystem: "query", Name: "clickhouse_seconds",
			Help:    "Time ClickHouse took for a request's statements, by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"route"}),
		authDown: runtime.NewRepeatedLog(log, slog.LevelWarn, "auth unavailable: answered 503", runtime.RepeatInterval),
		failed:   runtime.NewRepeatedLog(log, slog.LevelError, "query failed: answered 500", runtime.RepeatInterval),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(h.requests, h.sources, h.duration, h.rate.decisions)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(routeOpenAPI, h.serveOpenAPI)
	for _, res := range listResources {
		mux.Handle(listRoute(res), h.authed("list_"+res.table, func(w http.ResponseWriter, r *http.Request, p authclient.Principal) string {
			return h.serveList(w, r, p, res)
		}))
	}
	mux.Handle(routeTrace, h.authed("trace", h.serveTrace))
	mux.Handle(routeMetrics, h.authed("metrics", h.serveMetrics))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, problem{Type: problemNotFound, Title: "Not found", Status: http.StatusNotFound,
			Detail: fmt.Sprintf("nothing is served at %s %.200q; the API is described at GET /v1/openapi.json", r.Method, r.URL.Path)})
	})
	h.mux = mux
	return h
}

// The routes, as ServeMux patterns (the OpenAPI document's paths and methods).
const (
	routeOpenAPI = "GET /v1/openapi.json"
	routeTrace   = "GET /v1/traces/{id}"
	routeMetrics = "POST /v1/metrics"
)

func listRoute(res *resource) string { return "GET /v1/" + res.name }

// routes lists every route the handler serves.
func routes() []string {
	out := []string{routeOpenAPI, routeTrace, routeMetrics}
	for _, res := range listResources {
		out = append(out, listRoute(res))
	}
	return out
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

// authed wraps a route: the key (scope query), its rate limit (RateLimit fields on every
// answer past the key check), a turn among MaxConcurrent;
// serve returns the outcome to count.
func (h *Handler) authed(route string, serve func(http.ResponseWriter, *http.Request, authclient.Principal) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, outcome, ok := h.authenticate(w, r)
		if ok {
			admitted, g := h.rate.take(r.Context(), p.KeyID, h.now())
			h.rate.headers(w.Header(), g)
			if !admitted {
				setRetryAfter(w, g.RetryAfter)
				writeProblem(w, problem{Type: problemRateLimited, Title: "Too many requests", Status: http.StatusTooManyRequests,
					Detail: fmt.Sprintf("this key may make %g requests per second (bursts of %d); retry later", h.limits.RatePerSecond, h.limits.RateBurst)})
				outcome = "rate_limited"
			} else {
				select {
				case h.turns <- struct{}{}:
					start := time.Now()
					outcome = serve(w, r, p)
					h.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
					<-h.turns
				case <-r.Context().Done():
					outcome = "cancelled"
				}
			}
		}
		h.requests.WithLabelValues(route, outcome).Inc()
	})
}

func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) (authclient.Principal, string, bool) {
	key, err := authclient.BearerKey(r)
	if err == nil {
		var p authclient.Principal
		p, err = h.verifier.Verify(r.Context(), key, authclient.ScopeQuery)
		if err == nil {
			return p, "", true
		}
	}
	switch status := authclient.HTTPStatus(err); status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="trustplane"`)
		writeProblem(w, problem{Type: problemAuth, Title: "Unauthorized", Status: status, Detail: err.Error()})
		return authclient.Principal{}, "unauthorized", false
	case http.StatusForbidden:
		writeProblem(w, problem{Type: problemForbidden, Title: "Forbidden", Status: status, Detail: err.Error()})
		return authclient.Principal{}, "forbidden", false
	case http.StatusServiceUnavailable:
		h.authDown.Log("error", err)
		h.unavailable(w, "API keys cannot be verified right now; retry later")
		return authclient.Principal{}, "unavailable", false
	default:
		h.failed.Log("error", err)
		writeProblem(w, problem{Type: problemInternal, Title: "Internal error", Status: http.StatusInternalServerError})
		return authclient.Principal{}, "error", false
	}
}

func (h *Handler) unavailable(w http.ResponseWriter, detail string) {
	setRetryAfter(w, 2*time.Second)
	writeProblem(w, problem{Type: problemUnavailable, Title: "Service unavailable", Status: http.StatusServiceUnavailable, Detail: detail})
}

// fail answers a reader error and names the outcome.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) string {
	switch {
	case errors.Is(err, errNotFound):
		writeProblem(w, problem{Type: problemNotFound, Title: "Not found", Status: http.StatusNotFound,
			Detail: "no such resource in the project of this key"})
		return "not_found"
	case errors.Is(err, errTooExpensive):
		writeProblem(w, problem{Type: problemTooExpensive, Title: "Query too expensive", Status: http.StatusUnprocessableEntity,
			Detail: err.Error() + "; narrow the time range or add filters"})
		return "too_expensive"
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return "cancelled"
	}
	h.failed.Log("error", err, "path", r.URL.Path)
	h.unavailable(w, "ClickHouse did not answer; retry later")
	return "unavailable"
}

func (h *Handler) serveList(w http.ResponseWriter, r *http.Request, p authclient.Principal, res *resource) string {
	if res == &findings && !h.reader.findings.Load() {
		return h.fail(w, r, errNotFound)
	}
	req, bad := parseList(res, r.URL.Query(), h.now(), h.limits)
	if bad != nil {
		writeInvalid(w, bad)
		return "invalid"
	}
	pg, err := h.reader.list(r.Context(), p, res, req)
	if err != nil {
		return h.fail(w, r, err)
	}
	writeJSON(w, http.StatusOK, contentTypeJSON, pg)
	return "ok"
}

func (h *Handler) serveTrace(w http.ResponseWriter, r *http.Request, p authclient.Principal) string {
	id := r.PathValue("id")
	if len(r.URL.Query()) > 0 {
		b := &badRequest{}
		for name := range r.URL.Query() {
			b.add(name, "unknown parameter: a trace detail takes none")
		}
		writeInvalid(w, b)
		return "invalid"
	}
	if id == "" || len(id) > maxIDLen || !utf8.ValidString(id) {
		b := &badRequest{}
		b.add("id", "must be a trace id of 1 to %d bytes of UTF-8", maxIDLen)
		writeInvalid(w, b)
		return "invalid"
	}
	d, err := h.reader.detail(r.Context(), p, id, h.limits.DetailLimit)
	if err != nil {
		return h.fail(w, r, err)
	}
	writeJSON(w, http.StatusOK, contentTypeJSON, d)
	return "ok"
}

func (h *Handler) serveMetrics(w http.ResponseWriter, r *http.Request, p authclient.Principal) string {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), contentTypeJSON) {
		b := &badRequest{}
		b.add("Content-Type", "must be application/json, got %.64q", ct)
		writeInvalid(w, b)
		return "invalid"
	}
	body, err := runtime.ReadBody(w, r, maxMetricsBody, 10*time.Second)
	if err != nil {
		b := &badRequest{}
		b.add("body", "unreadable or over %d bytes: %v", maxMetricsBody, err)
		writeInvalid(w, b)
		return "invalid"
	}
	plan, bad := decodeMetrics(body, h.views, h.now(), h.limits)
	if bad != nil {
		writeInvalid(w, bad)
		return "invalid"
	}
	ans, err := h.reader.metrics(r.Context(), p, plan, false)
	if err != nil {
		return h.fail(w, r, err)
	}
	h.sources.WithLabelValues(plan.view.name, ans.Meta.Source).Inc()
	writeJSON(w, http.StatusOK, contentTypeJSON, ans)
	return "ok"
}

func (h *Handler) serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", contentTypeJSON)
	w.Header().Set("Content-Length", strconv.Itoa(len(openAPIJSON)))
	_, _ = w.Write(openAPIJSON)
}
