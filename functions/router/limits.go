package router

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/functions/runtime"
)

// Rate limits and budgets are GCRA buckets (the generic cell rate algorithm, a token bucket
// kept as one timestamp): a bucket of limit units refills at limit per window and never holds
// more than limit. Requests per minute, tokens per minute and USD per day (in micro-dollars)
// are all buckets; only their units and windows differ.

// Units are n units of one bucket: the bucket's key, its limit per window, and n.
type Units struct {
	Key    string
	Limit  int64
	Window time.Duration
	N      int64
}

// Grant is one bucket's state after a take.
type Grant struct {
	Remaining  int64         // units left in the bucket (refused: the units there are)
	RetryAfter time.Duration // when refused: how long until the units wanted are there
}

// Store holds bucket state. MemoryStore serves one pod; RedisStore shares the buckets
// between replicas.
type Store interface {
	// Take takes u.N units from every bucket of us, all or none, in one atomic step. refused
	// is the index of the first bucket without room (then nothing is taken), else -1; grants
	// has one entry per bucket when all were taken, and the refusing bucket's when refused.
	Take(ctx context.Context, us []Units, now time.Time) (refused int, grants []Grant, err error)
	// Add uses u.N more units of each bucket (or gives back -u.N) without refusing: the
	// correction once a call's real token count or cost is known.
	Add(ctx context.Context, us []Units, now time.Time) error
}

// gcraTake takes u.N units from a bucket whose tat (theoretical arrival time) is tat; tat and
// now are microseconds, a missing bucket has tat 0. ok is false when the bucket has no room.
func gcraTake(tat, now int64, u Units) (newTat int64, g Grant, ok bool) {
	window := u.Window.Microseconds()
	interval := float64(window) / float64(u.Limit)
	tat = max(tat, now)
	avail := int64(math.Floor(float64(now+window-tat) / interval))
	if avail < u.N {
		wait := float64(tat) + float64(u.N)*interval - float64(window) - float64(now)
		return tat, Grant{Remaining: max(avail, 0), RetryAfter: time.Duration(math.Ceil(wait)) * time.Microsecond}, false
	}
	return tat + int64(math.Ceil(float64(u.N)*interval)), Grant{Remaining: avail - u.N}, true
}

func gcraAdd(tat, now int64, u Units) int64 {
	interval := float64(u.Window.Microseconds()) / float64(u.Limit)
	return max(max(tat, now)+int64(math.Round(float64(u.N)*interval)), now)
}

// MemoryStore keeps buckets in this process: the limits of a single pod.
type MemoryStore struct {
	mu      sync.Mutex
	tats    map[string]int64
	sweepAt int64
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore { return &MemoryStore{tats: map[string]int64{}} }

// Take implements Store.
func (m *MemoryStore) Take(_ context.Context, us []Units, now time.Time) (int, []Grant, error) {
	t := now.UnixMicro()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(t)
	tats := make([]int64, len(us))
	grants := make([]Grant, len(us))
	for i, u := range us {
		tat, g, ok := gcraTake(m.tats[u.Key], t, u)
		if !ok {
			return i, []Grant{g}, nil
		}
		tats[i], grants[i] = tat, g
	}
	for i, u := range us {
		m.tats[u.Key] = tats[i]
	}
	return -1, grants, nil
}

// Add implements Store.
func (m *MemoryStore) Add(_ context.Context, us []Units, now time.Time) error {
	t := now.UnixMicro()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, u := range us {
		m.tats[u.Key] = gcraAdd(m.tats[u.Key], t, u)
	}
	return nil
}

// sweep forgets full buckets (tat in the past) once a minute, so idle keys do not pile up.
func (m *MemoryStore) sweep(now int64) {
	if now < m.sweepAt {
		return
	}
	m.sweepAt = now + time.Minute.Microseconds()
	for k, tat := range m.tats {
		if tat < now {
			delete(m.tats, k)
		}
	}
}

// DefaultLimitsTimeout bounds the time a call spends on the shared store, per step (its
// admission, and its corrections once answered).
const DefaultLimitsTimeout = 50 * time.Millisecond

// The shared store's circuit breaker: after breakerThreshold failures in a row, calls stop
// asking it for breakerCooldown; then one call probes it while the others are decided here.
const (
	breakerThreshold = 3
	breakerCooldown  = time.Second
)

// LimiterOptions configure a Limiter.
type LimiterOptions struct {
	// Timeout bounds each step a call takes on the shared store; default DefaultLimitsTimeout.
	Timeout    time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Limiter decides calls against their buckets. With a shared store (Redis) every decision is
// made there, in one atomic step per call, so replicas together admit no more than the limit;
// while the shared store fails (an error, no answer within the timeout, or its breaker open)
// calls are decided by this pod's own buckets (per-pod limits) rather than admitted unchecked.
// No lock is held while the shared store is asked, and no call waits on it longer than the
// timeout.
type Limiter struct {
	shared  Store // nil: this pod's buckets only
	local   *MemoryStore
	timeout time.Duration
	breaker storeBreaker

	failures prometheus.Counter
	decided  prometheus.Counter
	failed   *runtime.RepeatedLog
	logger   *slog.Logger
}

// NewLimiter decides calls with shared (nil: this pod's buckets only).
func NewLimiter(shared Store, opts LimiterOptions) *Limiter {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultLimitsTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Limiter{shared: shared, local: NewMemoryStore(), timeout: opts.Timeout, logger: opts.Logger,
		failures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "trustplane", Subsystem: "router", Name: "limits_store_failures_total",
			Help: "Operations on the shared limits store (Redis) that failed or did not answer within the limits timeout."}),
		decided: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "trustplane", Subsystem: "router", Name: "limits_local_total",
			Help: "Calls whose limits this pod decided with its own buckets: every call without REDIS_URL, else the calls made while Redis was unreachable."}),
	}
	l.breaker.down = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "trustplane", Subsystem: "router", Name: "limits_store_down",
		Help: "1 while the shared limits store's circuit is open (limits are per pod), else 0."})
	l.failed = runtime.NewRepeatedLog(opts.Logger, slog.LevelWarn, "limits store unavailable: limits are per pod", runtime.RepeatInterval)
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(l.failures, l.decided, l.breaker.down)
	}
	return l
}

// storeBreaker is the shared store's circuit breaker, one per Limiter (so per Redis client).
type storeBreaker struct {
	mu        sync.Mutex
	failures  int // in a row
	openUntil time.Time
	probing   bool
	down      prometheus.Gauge // set under mu, so that it follows the state changes in order
}

// allow reports whether the store may be asked: the circuit is closed, or open past its
// cooldown with no probe running (then this call is the probe).
func (b *storeBreaker) allow(now time.Time) (ok, probe bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failures < breakerThreshold {
		return true, false
	}
	if b.probing || now.Before(b.openUntil) {
		return false, false
	}
	b.probing = true
	return true, true
}

// done records the outcome of an operation; closed reports that it closed the circuit.
func (b *storeBreaker) done(now time.Time, probe, failed bool) (closed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
	}
	if !failed {
		if closed = b.failures >= breakerThreshold; closed {
			b.down.Set(0)
		}
		b.failures = 0
		return closed
	}
	b.failures++
	if b.failures >= breakerThreshold {
		b.down.Set(1)
		b.openUntil = now.Add(breakerCooldown)
	}
	return false
}

// release ends a probe that says nothing about the store (its caller went away).
func (b *storeBreaker) release(probe bool) {
	if probe {
		b.mu.Lock()
		b.probing = false
		b.mu.Unlock()
	}
}

// onShared runs op on the shared store, bounded by the limits timeout: the call returns at
// the deadline even if op does not (op's context ends then too, and the Redis client gives up
// its socket). ok is false when the call is to be decided by this pod's buckets: no shared
// store, its circuit open, or op failed.
func onShared[T any](ctx context.Context, l *Limiter, op func(context.Context) (T, error)) (res T, ok bool) {
	if l.shared == nil {
		return res, false
	}
	allowed, probe := l.breaker.allow(time.Now())
	if !allowed {
		return res, false
	}
	octx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	type outcome struct {
		res T
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		r, err := op(octx)
		done <- outcome{r, err}
	}()
	var out outcome
	select {
	case out = <-done:
	case <-octx.Done():
		out.err = fmt.Errorf("limits store: no answer within %s: %w", l.timeout, octx.Err())
	}
	if out.err != nil && ctx.Err() != nil {
		// The client went away: that says nothing about the store, and must not open its
		// circuit (switching shared limits off for every call).
		l.breaker.release(probe)
		return res, false
	}
	closed := l.breaker.done(time.Now(), probe, out.err != nil)
	if out.err != nil {
		l.failures.Inc()
		l.failed.Log("error", out.err)
		return res, false
	}
	if closed {
		l.logger.Info("limits store reachable again: limits are shared")
	}
	return out.res, true
}

type takeResult struct {
	refused int
	grants  []Grant
}

// take decides us on the shared store, or on this pod's buckets when it cannot.
func (l *Limiter) take(ctx context.Context, us []Units, now time.Time) (shared bool, refused int, grants []Grant) {
	r, ok := onShared(ctx, l, func(ctx context.Context) (takeResult, error) {
		refused, grants, err := l.shared.Take(ctx, us, now)
		return takeResult{refused, grants}, err
	})
	if ok {
		return true, r.refused, r.grants
	}
	l.decided.Inc()
	refused, grants, _ = l.local.Take(ctx, us, now)
	return false, refused, grants
}

// add corrects us where the call was decided; a correction the shared store does not take goes
// to this pod's buckets, so that its own limits, which decide while the store is down, count it.
func (l *Limiter) add(ctx context.Context, shared bool, us []Units, now time.Time) {
	if shared {
		if _, ok := onShared(ctx, l, func(ctx context.Context) (struct{}, error) { return struct{}{}, l.shared.Add(ctx, us, now) }); ok {
			return
		}
	}
	_ = l.local.Add(ctx, us, now)
}

// Limit is a set of limits for one scope (a key, a tenant or a model). Zero means unlimited.
type Limit struct {
	RequestsPerMinute int64   `json:"requests_per_minute,omitempty"`
	TokensPerMinute   int64   `json:"tokens_per_minute,omitempty"`
	USDPerDay         float64 `json:"usd_per_day,omitempty"`
}

func (l Limit) validate(where string) error {
	if l.RequestsPerMinute < 0 || l.TokensPerMinute < 0 || l.USDPerDay < 0 {
		return fmt.Errorf("%s: limits must not be negative", where)
	}
	return nil
}

// Bucket kinds.
const (
	kindRequests = "requests"
	kindTokens   = "tokens"
	kindSpend    = "spend"
)

// scopeLimit is the limit of one scope ("key:<id>", "tenant:<name>" or "model:<alias>").
type scopeLimit struct {
	id    string
	limit Limit
}

// bucket is one limit applied to a call, and what the call took from it.
type bucket struct {
	key    string
	kind   string
	limit  int64
	window time.Duration
	taken  int64
	grant  Grant
}

func bucketsOf(scopes []scopeLimit) []bucket {
	var out []bucket
	for _, s := range scopes {
		add := func(kind string, limit int64, window time.Duration) {
			if limit > 0 {
				out = append(out, bucket{key: "trustplane:rl:" + s.id + ":" + kind, kind: kind, limit: limit, window: window})
			}
		}
		add(kindRequests, s.limit.RequestsPerMinute, time.Minute)
		add(kindTokens, s.limit.TokensPerMinute, time.Minute)
		add(kindSpend, int64(math.Round(s.limit.USDPerDay*1e6)), 24*time.Hour)
	}
	return out
}

// Admission is what a call took from its buckets, and where it was decided.
type Admission struct {
	limiter *Limiter
	buckets []bucket
	shared  bool // decided by the shared store, which then gets the corrections too
}

// Refusal says which limit refused a call, and that limit's state.
type Refusal struct {
	Scope, Kind string
	RetryAfter  time.Duration
	limit       int64
	remaining   int64
	window      time.Duration
}

// Headers sets OpenAI's x-ratelimit-* headers of the limit that refused the call, so a client
// sees which one to wait for; a budget (spend) has no such header.
func (r *Refusal) Headers(h http.Header) {
	if r.Kind == kindRequests || r.Kind == kindTokens {
		setLimitHeaders(h, r.Kind, r.limit, r.remaining, r.window)
	}
}

// Admit takes one request, the estimated prompt tokens and (for budgets) one micro-dollar from
// every bucket of scopes, all or nothing, in one step on the shared store (or, while it is
// unreachable, on this pod's buckets). A budget is charged the call's cost only in Settle, so
// it admits calls while any of it is left: across all replicas the spend passes it by at most
// the cost of the calls in flight when it ran out.
func (l *Limiter) Admit(ctx context.Context, scopes []scopeLimit, tokens int64, now time.Time) (*Admission, *Refusal) {
	a := &Admission{limiter: l, buckets: bucketsOf(scopes)}
	if len(a.buckets) == 0 {
		return a, nil
	}
	us := make([]Units, len(a.buckets))
	for i := range a.buckets {
		b := &a.buckets[i]
		b.taken = 1
		if b.kind == kindTokens {
			// A prompt bigger than the whole limit could never pass; it takes what is left.
			b.taken = max(1, min(tokens, b.limit))
		}
		us[i] = Units{Key: b.key, Limit: b.limit, Window: b.window, N: b.taken}
	}
	shared, refused, grants := l.take(ctx, us, now)
	if refused >= 0 {
		b, g := a.buckets[refused], grants[0]
		return nil, &Refusal{Scope: scopeOf(b.key), Kind: b.kind, RetryAfter: g.RetryAfter, limit: b.limit, remaining: g.Remaining, window: b.window}
	}
	a.shared = shared
	for i := range a.buckets {
		a.buckets[i].grant = grants[i]
	}
	return a, nil
}

func scopeOf(key string) string {
	s := key[len("trustplane:rl:"):]
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		return s[:i]
	}
	return s
}

// Settle corrects the buckets with what the call really used: the estimate of prompt tokens
// becomes the actual total, and the budget is charged the cost. It takes at most the limits
// timeout; a correction the shared store does not take is counted by this pod's buckets.
func (a *Admission) Settle(ctx context.Context, usedTokens int64, costUSD float64, now time.Time) {
	if a == nil {
		return
	}
	var us []Units
	for _, b := range a.buckets {
		var delta int64
		switch b.kind {
		case kindTokens:
			delta = usedTokens - b.taken
		case kindSpend:
			delta = int64(math.Round(costUSD*1e6)) - b.taken
		}
		if delta != 0 {
			us = append(us, Units{Key: b.key, Limit: b.limit, Window: b.window, N: delta})
		}
	}
	if len(us) > 0 {
		a.limiter.add(ctx, a.shared, us, now)
	}
}

// Headers sets OpenAI's x-ratelimit-* headers from the tightest request and token buckets.
func (a *Admission) Headers(h http.Header) {
	if a == nil {
		return
	}
	for _, kind := range []string{kindRequests, kindTokens} {
		var tight *bucket
		for i := range a.buckets {
			b := &a.buckets[i]
			if b.kind == kind && (tight == nil || b.grant.Remaining < tight.grant.Remaining) {
				tight = b
			}
		}
		if tight != nil {
			setLimitHeaders(h, kind, tight.limit, tight.grant.Remaining, tight.window)
		}
	}
}

// setLimitHeaders sets x-ratelimit-limit-, -remaining- and -reset-<kind>; reset is the time until
// the bucket is full again.
func setLimitHeaders(h http.Header, kind string, limit, remaining int64, window time.Duration) {
	reset := time.Duration(float64(window) * float64(limit-remaining) / float64(limit))
	h.Set("X-Ratelimit-Limit-"+kind, strconv.FormatInt(limit, 10))
	h.Set("X-Ratelimit-Remaining-"+kind, strconv.FormatInt(remaining, 10))
	h.Set("X-Ratelimit-Reset-"+kind, reset.Round(time.Millisecond).String())
}
