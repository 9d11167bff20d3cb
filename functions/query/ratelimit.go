package query

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/functions/router/limits"
)

// keyRate is the per-key request limit: a GCRA bucket per key id that holds RateBurst requests
// and refills at RatePerSecond (so its window, the time it takes to fill from empty, is
// RateBurst / RatePerSecond). The bucket is decided by a limits.Limiter: in Redis, shared by
// every replica, when REDIS_URL is set (while Redis cannot answer, by this replica's own
// bucket), else in this replica's memory.
type keyRate struct {
	limiter *limits.Limiter
	burst   int64
	window  time.Duration

	decisions *prometheus.CounterVec
}

// rateKeyPrefix keeps query's buckets apart from router's (trustplane:rl:key:<id>:requests), so
// a key used with both has a limit in each.
const rateKeyPrefix = "trustplane:rl:query:key:"

func newKeyRate(l *limits.Limiter, lim Limits) *keyRate {
	return &keyRate{limiter: l, burst: int64(lim.RateBurst), window: lim.rateWindow(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "trustplane", Subsystem: "query", Name: "rate_limit_decisions_total",
			Help: "Per-key rate limit decisions by store (shared: Redis; local: this replica's bucket, without REDIS_URL or while Redis is unreachable) and decision (admitted, refused)."},
			[]string{"store", "decision"}),
	}
}

// take takes one request from keyID's bucket at now.
func (k *keyRate) take(ctx context.Context, keyID string, now time.Time) (admitted bool, g limits.Grant) {
	shared, refused, grants := k.limiter.Take(ctx, []limits.Units{{Key: rateKeyPrefix + keyID + ":requests", Limit: k.burst, Window: k.window, N: 1}}, now)
	store, decision := "local", "admitted"
	if shared {
		store = "shared"
	}
	if refused >= 0 {
		decision = "refused"
	}
	k.decisions.WithLabelValues(store, decision).Inc()
	return refused < 0, grants[0]
}

// headers sets the RateLimit-Policy and RateLimit fields of the HTTPAPI working group's draft
// (draft-ietf-httpapi-ratelimit-headers): the policy "key" with its quota (q, the burst) and
// window (w, seconds to fill from empty), and what is left of it (r) with the seconds until the
// bucket is full again (t). Seconds are rounded up.
func (k *keyRate) headers(h http.Header, g limits.Grant) {
	full := time.Duration(float64(k.window) * float64(k.burst-g.Remaining) / float64(k.burst))
	h.Set("RateLimit-Policy", fmt.Sprintf(`"key";q=%d;w=%d`, k.burst, ceilSeconds(k.window)))
	h.Set("RateLimit", fmt.Sprintf(`"key";r=%d;t=%d`, g.Remaining, ceilSeconds(full)))
}

func ceilSeconds(d time.Duration) int64 { return int64(math.Ceil(d.Seconds())) }

// rateWindow is the time a key's bucket takes to fill from empty.
func (l Limits) rateWindow() time.Duration {
	return time.Duration(float64(l.RateBurst) / l.RatePerSecond * float64(time.Second))
}
