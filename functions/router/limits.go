package router

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Rate limits and budgets are GCRA buckets (the generic cell rate algorithm, a token bucket
// kept as one timestamp): a bucket of limit units refills at limit per window and never holds
// more than limit. Requests per minute, tokens per minute and USD per day (in micro-dollars)
// are all buckets; only their units and windows differ.

// Grant is the outcome of a Take.
type Grant struct {
	Granted    int64         // units taken; 0 when refused
	Remaining  int64         // units left in the bucket after the take
	RetryAfter time.Duration // when refused: how long until the units wanted are there
}

// Store holds bucket state. MemoryStore serves one replica; RedisStore shares the buckets
// between replicas.
type Store interface {
	// Take takes at most want and at least least units from the bucket key, or none.
	Take(ctx context.Context, key string, limit int64, window time.Duration, want, least int64, now time.Time) (Grant, error)
	// Add uses n more units (or gives back -n) without refusing: the correction once a call's
	// real token count or cost is known.
	Add(ctx context.Context, key string, limit int64, window time.Duration, n int64, now time.Time) error
}

// gcra is the bucket arithmetic both stores share. tat (theoretical arrival time) and now are
// microseconds; a missing bucket has tat 0.
func gcraTake(tat, now int64, limit int64, window time.Duration, want, least int64) (newTat int64, g Grant) {
	interval := float64(window.Microseconds()) / float64(limit)
	tat = max(tat, now)
	avail := int64(math.Floor(float64(now+window.Microseconds()-tat) / interval))
	if avail < least || avail <= 0 {
		wait := float64(tat) + float64(least)*interval - float64(window.Microseconds()) - float64(now)
		return tat, Grant{Remaining: max(avail, 0), RetryAfter: time.Duration(math.Ceil(wait)) * time.Microsecond}
	}
	n := min(want, avail)
	return tat + int64(math.Ceil(float64(n)*interval)), Grant{Granted: n, Remaining: avail - n}
}

func gcraAdd(tat, now int64, limit int64, window time.Duration, n int64) int64 {
	interval := float64(window.Microseconds()) / float64(limit)
	return max(max(tat, now)+int64(math.Round(float64(n)*interval)), now)
}

// MemoryStore keeps buckets in this process: the limits of a single replica.
type MemoryStore struct {
	mu      sync.Mutex
	tats    map[string]int64
	sweepAt int64
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore { return &MemoryStore{tats: map[string]int64{}} }

// Take implements Store.
func (m *MemoryStore) Take(_ context.Context, key string, limit int64, window time.Duration, want, least int64, now time.Time) (Grant, error) {
	us := now.UnixMicro()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(us)
	tat, g := gcraTake(m.tats[key], us, limit, window, want, least)
	m.tats[key] = tat
	return g, nil
}

// Add implements Store.
func (m *MemoryStore) Add(_ context.Context, key string, limit int64, window time.Duration, n int64, now time.Time) error {
	us := now.UnixMicro()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tats[key] = gcraAdd(m.tats[key], us, limit, window, n)
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

// Limiter takes units from a Store. With leasing on (a shared store) it takes a small lease
// of units at a time and serves later requests from it, so most requests cost no round trip;
// a lease is at most 1% of the limit, so with N replicas the units held but unused are at most
// N% of the limit, and nothing is ever admitted beyond it.
type Limiter struct {
	store    Store
	leasing  bool
	leaseTTL time.Duration
	// skipUntil (Unix nanoseconds) is set after a store failure: until then calls do not wait on
	// a store that just failed, they are admitted at once.
	skipUntil atomic.Int64

	mu     sync.Mutex
	leases map[string]*lease
}

type lease struct {
	mu        sync.Mutex
	units     int64
	remaining int64 // the bucket's remaining units when the lease was taken
	expires   time.Time
}

// leaseFraction is the share of a limit one lease may hold.
const leaseFraction = 100

// NewLimiter builds a limiter over store; leasing is for stores shared by replicas.
func NewLimiter(store Store, leasing bool) *Limiter {
	return &Limiter{store: store, leasing: leasing, leaseTTL: time.Second, leases: map[string]*lease{}}
}

// Take takes n units from the bucket, or none.
func (l *Limiter) Take(ctx context.Context, key string, limit int64, window time.Duration, n int64, now time.Time) (Grant, error) {
	if time.Now().UnixNano() < l.skipUntil.Load() {
		return Grant{}, errStoreDown
	}
	if !l.leasing {
		g, err := l.store.Take(ctx, key, limit, window, n, n, now)
		return l.checked(ctx, g, err)
	}
	ls := l.lease(key)
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if now.After(ls.expires) && ls.units > 0 {
		// What is left of an old lease goes back to the shared bucket: those units were never
		// admitted, and dropping them would use up a lease's share of the limit every time one
		// expires (1% of a daily budget per second a replica is busy).
		left := ls.units
		ls.units = 0
		if _, err := l.checked(ctx, Grant{}, l.store.Add(ctx, key, limit, window, -left, now)); err != nil {
			return Grant{}, err
		}
	}
	if ls.units >= n {
		ls.units -= n
		return Grant{Granted: n, Remaining: ls.remaining + ls.units}, nil
	}
	need := n - ls.units
	chunk := max(need, limit/leaseFraction)
	g, err := l.store.Take(ctx, key, limit, window, chunk, need, now)
	g, err = l.checked(ctx, g, err)
	if err != nil || g.Granted == 0 {
		return g, err
	}
	ls.units += g.Granted - n
	ls.remaining = g.Remaining
	ls.expires = now.Add(l.leaseTTL)
	return Grant{Granted: n, Remaining: g.Remaining + ls.units}, nil
}

// errStoreDown is returned while a failed store is skipped.
var errStoreDown = errors.New("limits store failed less than a second ago; not asked")

// storeRetry is how long a failed store is left alone.
const storeRetry = time.Second

// checked marks the store failed after an error, unless ctx ended: a client that went away
// during the round trip says nothing about the store, and must not switch limits off.
func (l *Limiter) checked(ctx context.Context, g Grant, err error) (Grant, error) {
	if err != nil && ctx.Err() == nil {
		l.skipUntil.Store(time.Now().Add(storeRetry).UnixNano())
	}
	return g, err
}

// GiveBack returns n units taken for a request that was then refused by another bucket.
func (l *Limiter) GiveBack(ctx context.Context, key string, limit int64, window time.Duration, n int64, now time.Time) error {
	if !l.leasing {
		return l.store.Add(ctx, key, limit, window, -n, now)
	}
	ls := l.lease(key)
	ls.mu.Lock()
	ls.units += n
	ls.mu.Unlock()
	return nil
}

// Add corrects a bucket by n units (negative gives back), straight in the store.
func (l *Limiter) Add(ctx context.Context, key string, limit int64, window time.Duration, n int64, now time.Time) error {
	if n == 0 {
		return nil
	}
	return l.store.Add(ctx, key, limit, window, n, now)
}

func (l *Limiter) lease(key string) *lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	ls, ok := l.leases[key]
	if !ok {
		ls = &lease{}
		l.leases[key] = ls
	}
	return ls
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

// Admission is what a call took from its buckets.
type Admission struct {
	limiter *Limiter
	buckets []bucket
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
// every bucket of scopes, all or nothing. A store failure admits the call (the error is
// returned for logging): the gateway keeps serving when Redis is down.
func (l *Limiter) Admit(ctx context.Context, scopes []scopeLimit, tokens int64, now time.Time) (*Admission, *Refusal, error) {
	a := &Admission{limiter: l, buckets: bucketsOf(scopes)}
	for i := range a.buckets {
		b := &a.buckets[i]
		n := int64(1)
		if b.kind == kindTokens {
			// A prompt bigger than the whole limit could never pass; it takes what is left.
			n = max(1, min(tokens, b.limit))
		}
		g, err := l.Take(ctx, b.key, b.limit, b.window, n, now)
		if err != nil {
			a.release(ctx, now)
			return nil, nil, err
		}
		if g.Granted == 0 {
			a.release(ctx, now)
			return nil, &Refusal{Scope: scopeOf(b.key), Kind: b.kind, RetryAfter: g.RetryAfter, limit: b.limit, remaining: g.Remaining, window: b.window}, nil
		}
		b.taken, b.grant = n, g
	}
	return a, nil, nil
}

func scopeOf(key string) string {
	s := key[len("trustplane:rl:"):]
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		return s[:i]
	}
	return s
}

func (a *Admission) release(ctx context.Context, now time.Time) {
	for _, b := range a.buckets {
		if b.taken > 0 {
			_ = a.limiter.GiveBack(ctx, b.key, b.limit, b.window, b.taken, now)
		}
	}
}

// Settle corrects the buckets with what the call really used: the estimate of prompt tokens
// becomes the actual total, and the budget is charged the cost.
func (a *Admission) Settle(ctx context.Context, usedTokens int64, costUSD float64, now time.Time) error {
	if a == nil {
		return nil
	}
	var errs []error
	for _, b := range a.buckets {
		var delta int64
		switch b.kind {
		case kindTokens:
			delta = usedTokens - b.taken
		case kindSpend:
			delta = int64(math.Round(costUSD*1e6)) - b.taken
		}
		if delta != 0 {
			errs = append(errs, a.limiter.Add(ctx, b.key, b.limit, b.window, delta, now))
		}
	}
	return errors.Join(errs...)
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
