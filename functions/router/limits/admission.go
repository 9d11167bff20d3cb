package limits

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Limit is a set of limits for one scope (a key, a tenant or a model). Zero means unlimited.
type Limit struct {
	RequestsPerMinute int64   `json:"requests_per_minute,omitempty"`
	TokensPerMinute   int64   `json:"tokens_per_minute,omitempty"`
	USDPerDay         float64 `json:"usd_per_day,omitempty"`
}

// Validate checks l; where names it in the error.
func (l Limit) Validate(where string) error {
	if l.RequestsPerMinute < 0 || l.TokensPerMinute < 0 || l.USDPerDay < 0 {
		return fmt.Errorf("%s: limits must not be negative", where)
	}
	return nil
}

// Bucket kinds.
const (
	KindRequests = "requests"
	KindTokens   = "tokens"
	KindSpend    = "spend"
)

// Scope is the limit of one scope: ID is "key:<id>", "tenant:<name>" or "model:<alias>".
type Scope struct {
	ID    string
	Limit Limit
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

func bucketsOf(scopes []Scope) []bucket {
	var out []bucket
	for _, s := range scopes {
		add := func(kind string, limit int64, window time.Duration) {
			if limit > 0 {
				out = append(out, bucket{key: "trustplane:rl:" + s.ID + ":" + kind, kind: kind, limit: limit, window: window})
			}
		}
		add(KindRequests, s.Limit.RequestsPerMinute, time.Minute)
		add(KindTokens, s.Limit.TokensPerMinute, time.Minute)
		add(KindSpend, int64(math.Round(s.Limit.USDPerDay*1e6)), 24*time.Hour)
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
	if r.Kind == KindRequests || r.Kind == KindTokens {
		setLimitHeaders(h, r.Kind, r.limit, r.remaining, r.window)
	}
}

// Admit takes one request, the estimated prompt tokens and (for budgets) one micro-dollar from
// every bucket of scopes, all or nothing, in one step on the shared store (or, while it is
// unreachable, on this pod's buckets). A budget is charged the call's cost only in Settle, so
// it admits calls while any of it is left: across all replicas the spend passes it by at most
// the cost of the calls in flight when it ran out.
func (l *Limiter) Admit(ctx context.Context, scopes []Scope, tokens int64, now time.Time) (*Admission, *Refusal) {
	a := &Admission{limiter: l, buckets: bucketsOf(scopes)}
	if len(a.buckets) == 0 {
		return a, nil
	}
	us := make([]Units, len(a.buckets))
	for i := range a.buckets {
		b := &a.buckets[i]
		b.taken = 1
		if b.kind == KindTokens {
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
		case KindTokens:
			delta = usedTokens - b.taken
		case KindSpend:
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
	for _, kind := range []string{KindRequests, KindTokens} {
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
