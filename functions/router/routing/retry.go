package routing

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/trustplane/trustplane/functions/router/openai"
	"github.com/trustplane/trustplane/functions/router/providers"
)

// Router runs calls on a route's targets. It keeps what outlives reloads of the routing file:
// each target's circuit breaker and latency average. The zero value is ready to use.
type Router struct {
	// Now is the circuit breakers' clock; nil is time.Now.
	Now func() time.Time
	// Rand draws the weighted strategy's order and the retry jitter; nil uses math/rand/v2's
	// global source. Tests pass a seeded one so that their draws are the same on every run.
	Rand *rand.Rand

	breakers sync.Map   // target id -> *breaker
	randMu   sync.Mutex // a *rand.Rand is not safe for concurrent use
}

// Attempts is told of every attempt a call makes and every wait between attempts: the call's
// record.
type Attempts interface {
	Attempted(t *Target, err error, elapsed time.Duration)
	Waited(d time.Duration)
}

// ErrNoTarget is the answer when every target's circuit is open.
var ErrNoTarget = &openai.APIError{Status: http.StatusServiceUnavailable, Type: openai.TypeUnavailable, Code: "no_target_available",
	Message: "every provider of this model is failing (circuit open); retry later", RetryAfter: time.Second}

func (r *Router) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

// intN and float64 draw from Rand when set, else from the global source.
func (r *Router) intN(n int) int {
	if r.Rand == nil {
		return rand.IntN(n)
	}
	r.randMu.Lock()
	defer r.randMu.Unlock()
	return r.Rand.IntN(n)
}

func (r *Router) float64() float64 {
	if r.Rand == nil {
		return rand.Float64()
	}
	r.randMu.Lock()
	defer r.randMu.Unlock()
	return r.Rand.Float64()
}

func (r *Router) breaker(id string) *breaker {
	if b, ok := r.breakers.Load(id); ok {
		return b.(*breaker)
	}
	b, _ := r.breakers.LoadOrStore(id, &breaker{})
	return b.(*breaker)
}

// Try runs fn against the route's targets: in order, falling back to the next target on a
// retryable failure and coming back round to targets already tried after an exponential
// backoff with jitter that honours Retry-After, for at most max_attempts attempts. Targets
// whose circuit is open are skipped. ctx ends when the client goes away. Every attempt and
// wait is told to log.
func (r *Router) Try(ctx context.Context, table *Table, rt *Route, log Attempts, fn func(ctx context.Context, t *Target) error) (*Target, error) {
	order := r.order(rt)
	tries := make(map[*Target]int, len(order))
	waits := make(map[*Target]time.Duration, len(order))
	refused := make(map[*Target]bool) // refused router's credentials: not asked again in this call
	var lastErr error
	next := 0
	for n := 0; n < table.retry.MaxAttempts; n++ {
		var t *Target
		var b *breaker
		for k := 0; k < len(order); k++ {
			cand := order[(next+k)%len(order)]
			if refused[cand] {
				continue
			}
			if cb := r.breaker(cand.id); cb.allow(r.now(), table.circuit.FailureThreshold) {
				t, b, next = cand, cb, (next+k+1)%len(order)
				break
			}
		}
		if t == nil {
			break
		}
		if tries[t] > 0 {
			d := backoff(time.Duration(table.retry.BaseBackoff), tries[t], r.float64())
			if ra := waits[t]; ra > d {
				d = ra
			}
			if d > time.Duration(table.retry.MaxBackoff) {
				b.release()
				break
			}
			start := time.Now()
			select {
			case <-time.After(d):
			case <-ctx.Done():
				b.release()
				return nil, ctx.Err()
			}
			log.Waited(time.Since(start))
		}
		tries[t]++
		start := time.Now()
		err := fn(ctx, t)
		elapsed := time.Since(start)
		log.Attempted(t, err, elapsed)
		if err == nil {
			b.success(elapsed)
			return t, nil
		}
		var ue *providers.UpstreamError
		if ctx.Err() != nil || !errors.As(err, &ue) || !ue.Retryable() {
			// The client went away, or the request itself is at fault: not the target's failure.
			b.release()
			return nil, err
		}
		b.failure(r.now(), table.circuit)
		waits[t] = ue.RetryAfter
		refused[t] = ue.CredentialsRefused()
		lastErr = err
	}
	if lastErr == nil {
		return nil, ErrNoTarget
	}
	return nil, lastErr
}

// backoff is base*2^(n-1) with jitter: a random duration between half and all of it; u is
// the draw in [0, 1).
func backoff(base time.Duration, n int, u float64) time.Duration {
	d := float64(base) * math.Pow(2, float64(n-1))
	return time.Duration(d/2 + u*d/2)
}
