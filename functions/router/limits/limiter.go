package limits

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/functions/runtime"
)

// The shared store's circuit breaker: after breakerThreshold failures in a row, calls stop
// asking it for breakerCooldown; then one call probes it while the others are decided here.
const (
	breakerThreshold = 3
	breakerCooldown  = time.Second
)

// Options configure a Limiter.
type Options struct {
	// Timeout bounds each step a call takes on the shared store (its admission, then its
	// corrections once answered); a Limiter with a shared store needs one.
	Timeout    time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Subsystem names the metrics: trustplane_<subsystem>_limits_*; empty: router.
	Subsystem string
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
func NewLimiter(shared Store, opts Options) *Limiter {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Subsystem == "" {
		opts.Subsystem = "router"
	}
	l := &Limiter{shared: shared, local: NewMemoryStore(), timeout: opts.Timeout, logger: opts.Logger,
		failures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "trustplane", Subsystem: opts.Subsystem, Name: "limits_store_failures_total",
			Help: "Operations on the shared limits store (Redis) that failed or did not answer within the limits timeout."}),
		decided: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "trustplane", Subsystem: opts.Subsystem, Name: "limits_local_total",
			Help: "Calls whose limits this pod decided with its own buckets: every call without REDIS_URL, else the calls made while Redis was unreachable."}),
	}
	l.breaker.down = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "trustplane", Subsystem: opts.Subsystem, Name: "limits_store_down",
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

// Take takes us, all or none, in one step on the shared store, or on this pod's own buckets
// while the shared store cannot decide (as Admit does for router's scopes). shared reports
// where it was decided; refused and grants are as Store.Take's.
func (l *Limiter) Take(ctx context.Context, us []Units, now time.Time) (shared bool, refused int, grants []Grant) {
	return l.take(ctx, us, now)
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
