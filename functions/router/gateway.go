package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/functions/auth"
	"github.com/trustplane/trustplane/functions/runtime"
)

// Options configure a Gateway.
type Options struct {
	Verifier auth.Verifier
	// Limiter enforces limits and budgets; nil keeps them in memory (one replica), its metrics
	// registered with Registerer.
	Limiter *Limiter
	// Recorder receives the llm-call events; nil records nothing.
	Recorder        *Recorder
	Capture         Capture
	MaxRequestBytes int64 // default 4 MiB
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
}

// Gateway is the OpenAI-compatible gateway: it authenticates, limits, routes and records calls.
type Gateway struct {
	opts    Options
	routing atomic.Pointer[Routing]
	states  sync.Map // target id -> *targetState

	calls    *prometheus.CounterVec
	overhead prometheus.Histogram
	// While auth is down every call fails the same way: logged once per interval with a
	// count, not once per call (calls_total counts each).
	authDown, authFailed *runtime.RepeatedLog

	// tails are the calls whose bookkeeping (limit corrections, the llm-call event) runs after
	// their answer went out, so that it does not delay the client's end of stream.
	tails tailCount

	randMu sync.Mutex // a *rand.Rand is not safe for concurrent use
}

// intN and float64 draw from Options.Rand when set, else from the global source.
func (g *Gateway) intN(n int) int {
	if g.opts.Rand == nil {
		return rand.IntN(n)
	}
	g.randMu.Lock()
	defer g.randMu.Unlock()
	return g.opts.Rand.IntN(n)
}

func (g *Gateway) float64() float64 {
	if g.opts.Rand == nil {
		return rand.Float64()
	}
	g.randMu.Lock()
	defer g.randMu.Unlock()
	return g.opts.Rand.Float64()
}

// Drain waits for the bookkeeping of answered calls; shutdown runs it before closing the
// recorder, so that no call goes unrecorded.
func (g *Gateway) Drain(ctx context.Context) error {
	select {
	case <-g.tails.idle():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("router: calls still being recorded: %w", ctx.Err())
	}
}

// tailCount counts the calls in their bookkeeping. Unlike a sync.WaitGroup it may gain calls
// from zero while Drain waits: when a shutdown's grace has run out, handlers still running go on
// and finish their calls, and a WaitGroup forbids that Add (it may panic).
type tailCount struct {
	mu     sync.Mutex
	n      int
	waiter chan struct{} // closed when n drops to zero; nil while no one waits
}

func (t *tailCount) add() {
	t.mu.Lock()
	t.n++
	t.mu.Unlock()
}

func (t *tailCount) done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n--; t.n == 0 && t.waiter != nil {
		close(t.waiter)
		t.waiter = nil
	}
}

// idle returns a channel that is closed once no call is in its bookkeeping.
func (t *tailCount) idle() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == 0 {
		return alreadyClosed
	}
	if t.waiter == nil {
		t.waiter = make(chan struct{})
	}
	return t.waiter
}

var alreadyClosed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// NewGateway serves r until SetRouting installs another.
func NewGateway(r *Routing, opts Options) *Gateway {
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = 4 << 20
	}
	if opts.BodyTimeout <= 0 {
		opts.BodyTimeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Limiter == nil {
		opts.Limiter = NewLimiter(nil, LimiterOptions{Logger: opts.Logger, Registerer: opts.Registerer})
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Capture.Mode == "" {
		opts.Capture = Capture{Mode: CaptureTruncated, MaxBytes: 4096}
	}
	g := &Gateway{opts: opts,
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
	g.routing.Store(r)
	return g
}

// SetRouting installs a reloaded routing; calls in flight finish with the one they started with.
func (g *Gateway) SetRouting(r *Routing) { g.routing.Store(r) }

// targetState is a target's circuit breaker and latency average. It outlives reloads.
type targetState struct {
	mu        sync.Mutex
	failures  int
	openUntil time.Time
	probing   bool
	ewma      float64 // milliseconds; 0 until the first success
}

const ewmaAlpha = 0.3

func (g *Gateway) state(id string) *targetState {
	if s, ok := g.states.Load(id); ok {
		return s.(*targetState)
	}
	s, _ := g.states.LoadOrStore(id, &targetState{})
	return s.(*targetState)
}

// allow reports whether the target may be tried: closed, or open past its cooldown with no
// probe running (this call becomes the probe).
func (s *targetState) allow(now time.Time, threshold int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures < threshold {
		return true
	}
	if now.Before(s.openUntil) || s.probing {
		return false
	}
	s.probing = true
	return true
}

func (s *targetState) success(latency time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures, s.probing = 0, false
	ms := float64(latency) / float64(time.Millisecond)
	if s.ewma == 0 {
		s.ewma = ms
	} else {
		s.ewma = ewmaAlpha*ms + (1-ewmaAlpha)*s.ewma
	}
}

func (s *targetState) failure(now time.Time, c CircuitConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures++
	s.probing = false
	if s.failures >= c.FailureThreshold {
		s.openUntil = now.Add(time.Duration(c.Cooldown))
	}
}

// release ends a probe that neither succeeded nor failed (the client went away).
func (s *targetState) release() {
	s.mu.Lock()
	s.probing = false
	s.mu.Unlock()
}

func (s *targetState) latency() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ewma
}

// order is the sequence a call tries a route's targets in.
func (g *Gateway) order(rt *route) []*target {
	switch rt.strategy {
	case StrategyWeighted:
		rest := slices.Clone(rt.targets)
		out := make([]*target, 0, len(rest))
		for len(rest) > 0 {
			total := 0
			for _, t := range rest {
				total += t.weight
			}
			pick := g.intN(total)
			for i, t := range rest {
				if pick < t.weight {
					out = append(out, t)
					rest = slices.Delete(rest, i, i+1)
					break
				}
				pick -= t.weight
			}
		}
		return out
	case StrategyLeastLatency:
		out := slices.Clone(rt.targets)
		lat := make(map[*target]float64, len(out))
		for _, t := range out {
			lat[t] = g.state(t.id).latency()
		}
		// Targets never measured (0) come first, so every target gets measured.
		sort.SliceStable(out, func(i, j int) bool { return lat[out[i]] < lat[out[j]] })
		return out
	}
	return rt.targets
}

// attemptFunc tries one target; ctx ends when the client goes away.
type attemptFunc func(ctx context.Context, t *target) error

var errAllOpen = &APIError{Status: http.StatusServiceUnavailable, Type: errUnavailable, Code: "no_target_available",
	Message: "every provider of this model is failing (circuit open); retry later", RetryAfter: 1}

// try runs fn against the route's targets: in order, falling back to the next target on a
// retryable failure and coming back round to targets already tried after an exponential
// backoff with jitter that honours Retry-After, for at most max_attempts attempts. Targets
// whose circuit is open are skipped. Every attempt is recorded in c.
func (g *Gateway) try(ctx context.Context, cfg *Routing, rt *route, c *call, fn attemptFunc) (*target, error) {
	order := g.order(rt)
	tries := make(map[*target]int, len(order))
	waits := make(map[*target]time.Duration, len(order))
	refused := make(map[*target]bool) // refused router's credentials: not asked again in this call
	var lastErr error
	next := 0
	for n := 0; n < cfg.retry.MaxAttempts; n++ {
		var t *target
		var st *targetState
		for k := 0; k < len(order); k++ {
			cand := order[(next+k)%len(order)]
			if refused[cand] {
				continue
			}
			if s := g.state(cand.id); s.allow(g.opts.Now(), cfg.circuit.FailureThreshold) {
				t, st, next = cand, s, (next+k+1)%len(order)
				break
			}
		}
		if t == nil {
			break
		}
		if tries[t] > 0 {
			d := backoff(time.Duration(cfg.retry.BaseBackoff), tries[t], g.float64())
			if ra := waits[t]; ra > d {
				d = ra
			}
			if d > time.Duration(cfg.retry.MaxBackoff) {
				st.release()
				break
			}
			start := time.Now()
			select {
			case <-time.After(d):
			case <-ctx.Done():
				st.release()
				return nil, ctx.Err()
			}
			c.waited += time.Since(start)
		}
		tries[t]++
		start := time.Now()
		err := fn(ctx, t)
		elapsed := time.Since(start)
		c.providerTime += elapsed
		c.attempt(t, err, elapsed)
		if err == nil {
			st.success(elapsed)
			return t, nil
		}
		var ue *UpstreamError
		if ctx.Err() != nil || !errors.As(err, &ue) || !ue.Retryable() {
			// The client went away, or the request itself is at fault: not the target's failure.
			st.release()
			return nil, err
		}
		st.failure(g.opts.Now(), cfg.circuit)
		waits[t] = ue.RetryAfter
		refused[t] = ue.credentialsRefused()
		lastErr = err
	}
	if lastErr == nil {
		return nil, errAllOpen
	}
	return nil, lastErr
}

// backoff is base*2^(n-1) with jitter: a random duration between half and all of it; u is
// the draw in [0, 1).
func backoff(base time.Duration, n int, u float64) time.Duration {
	d := float64(base) * math.Pow(2, float64(n-1))
	return time.Duration(d/2 + u*d/2)
}

// scopes are the limits that apply to a principal calling model.
func (cfg *Routing) scopes(p auth.Principal, model string) []scopeLimit {
	key := cfg.limits.Key
	if l := p.Limits; l != nil {
		// A key with limits in its record has exactly those (zero: none of that kind).
		key = Limit{RequestsPerMinute: l.RequestsPerMinute, TokensPerMinute: l.TokensPerMinute, USDPerDay: l.USDPerDay}
	}
	tenant, ok := cfg.limits.Tenants[p.Tenant]
	if !ok {
		tenant = cfg.limits.Tenant
	}
	out := []scopeLimit{{id: "key:" + p.KeyID, limit: key}, {id: "tenant:" + p.Tenant, limit: tenant}}
	if m, ok := cfg.limits.Models[model]; ok {
		out = append(out, scopeLimit{id: "model:" + model, limit: m})
	}
	return out
}

// cost prices usage by the served model, the target's model or the alias, whichever has a price.
func (cfg *Routing) cost(u Usage, models ...string) catalog.Cost {
	for _, m := range models {
		if p, ok := cfg.prices[m]; ok && m != "" {
			c := catalog.Cost{Input: float64(u.PromptTokens) * p.InputPerMTok / 1e6, Output: float64(u.CompletionTokens) * p.OutputPerMTok / 1e6}
			c.Total = c.Input + c.Output
			return c
		}
	}
	return catalog.Cost{}
}
