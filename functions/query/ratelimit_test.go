package query

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/trustplane/trustplane/functions/auth"
	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/functions/auth/authtest"
	"github.com/trustplane/trustplane/functions/router/limits"
	"github.com/trustplane/trustplane/functions/router/redistest"
)

// rateFrozen is the replicas' clock: frozen, so that no bucket refills while a test runs and
// every count below is exact.
var rateFrozen = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// rateTimeout is the replicas' limits timeout, and their Redis client's dial, read and write
// timeouts, in these tests. The only way the timing of the machine can change a count below is
// a Redis call on loopback taking longer than it while Redis is up: the call would then be
// decided by the replica's own bucket (and the metrics checked below would show it). On the
// 2-core build machine under load the slowest of a million loopback calls took 66 ms (router's
// limits outage test); 5 s is 75 times that, so such a failure by accident is far less likely
// than one in a million.
const rateTimeout = 5 * time.Second

// rateReplica is one query pod: a handler with its own limiter, Redis client and metrics.
type rateReplica struct {
	url     string
	metrics *prometheus.Registry
}

// rateReplicas starts n handlers over one reader whose keys come from keys, each with a limiter
// of its own on the Redis server srv (nil: in memory only), as n pods share one Redis.
func rateReplicas(t *testing.T, keys *authtest.Keys, srv *redistest.Server, n int, lim Limits) []rateReplica {
	t.Helper()
	r := testReader(t, store(t))
	var out []rateReplica
	for i := 0; i < n; i++ {
		reg := prometheus.NewRegistry()
		var shared limits.Store
		if srv != nil {
			opts, err := limits.RedisOptions(srv.URL())
			if err != nil {
				t.Fatal(err)
			}
			opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = rateTimeout, rateTimeout, rateTimeout
			// One dial per attempt (go-redis makes 5, with pauses between them), so that a
			// request made while Redis is gone fails over in milliseconds, not seconds.
			opts.DialerRetries = 1
			c := redis.NewClient(opts)
			t.Cleanup(func() { c.Close() })
			shared = limits.NewRedisStore(c)
		}
		l := limits.NewLimiter(shared, limits.Options{Timeout: rateTimeout, Registerer: reg, Subsystem: "query"})
		h := NewHandler(keys.Store(), r, HandlerOptions{Limits: lim, Limiter: l, Registerer: reg, Now: func() time.Time { return rateFrozen }})
		s := httptest.NewServer(h)
		t.Cleanup(s.Close)
		out = append(out, rateReplica{url: s.URL, metrics: reg})
	}
	return out
}

// metric is the value of the replica's counter or gauge name with the labels given (name=value
// pairs); 0 when it has no such series yet.
func (r rateReplica) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	families, err := r.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	return 0
}

// decisions is the replica's count of rate limit decisions made in store ("shared", "local").
func (r rateReplica) decisions(t *testing.T, store string) float64 {
	t.Helper()
	return r.metric(t, "trustplane_query_rate_limit_decisions_total", "store", store, "decision", "admitted") +
		r.metric(t, "trustplane_query_rate_limit_decisions_total", "store", store, "decision", "refused")
}

// rateAnswer is what the tests read of an answer.
type rateAnswer struct {
	status                    int
	retryAfter, policy, limit string
	problem                   problem
}

func rateGet(t *testing.T, base, key string) rateAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/v1/traces?limit=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := rateAnswer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"),
		policy: resp.Header.Get("RateLimit-Policy"), limit: resp.Header.Get("RateLimit")}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusTooManyRequests:
		if ct := resp.Header.Get("Content-Type"); ct != contentTypeProblem {
			t.Fatalf("429 as %s: %s", ct, body)
		}
		if err := json.Unmarshal(body, &a.problem); err != nil {
			t.Fatalf("429 body %s: %v", body, err)
		}
	default:
		t.Fatalf("GET /v1/traces: %d %s", resp.StatusCode, body)
	}
	return a
}

// rateKeys are keys with scope query, of one tenant.
func rateKeys(t *testing.T, n int) (*authtest.Keys, []string) {
	t.Helper()
	file := authtest.New(t)
	var out []string
	for i := 0; i < n; i++ {
		k, _ := file.Add(auth.NewKey{Tenant: "tenant-rate", Project: "p", Scopes: []authclient.Scope{authclient.ScopeQuery}})
		out = append(out, k)
	}
	return file, out
}

// rateLimits: bursts of 5, refilling one request every 2 s (frozen clocks never refill).
func rateLimits() Limits {
	l := defaultLimits()
	l.RateBurst, l.RatePerSecond = 5, 0.5
	return l
}

// admittedAcross sends n requests with key, alternating between the replicas, and returns how
// many each admitted; every answer carries the RateLimit fields, and a refusal Retry-After
// and its problem.
func admittedAcross(t *testing.T, rs []rateReplica, key string, n int) []int {
	t.Helper()
	per := make([]int, len(rs))
	for i := 0; i < n; i++ {
		a := rateGet(t, rs[i%len(rs)].url, key)
		if a.policy != `"key";q=5;w=10` {
			t.Fatalf("RateLimit-Policy %q, want the burst of 5 and its 10 s window", a.policy)
		}
		if a.status == http.StatusOK {
			per[i%len(rs)]++
			continue
		}
		if a.retryAfter != "2" || a.limit != `"key";r=0;t=10` {
			t.Fatalf("429: Retry-After %q, RateLimit %q; want 2 (one request every 2 s) and none left for 10 s", a.retryAfter, a.limit)
		}
		if a.problem.Type != problemRateLimited || a.problem.Status != http.StatusTooManyRequests || !strings.Contains(a.problem.Detail, "0.5 requests per second (bursts of 5)") {
			t.Fatalf("429 problem %+v", a.problem)
		}
	}
	return per
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

// Two replicas sharing one Redis admit a key's burst once in all, not once each, and count
// down one shared bucket; another key has its own. With Redis gone each replica still answers,
// deciding with its own bucket: the burst per replica. Once Redis is back the replicas share
// again.
func TestRateLimitIsSharedAcrossReplicasThroughRedis(t *testing.T) {
	srv := redistest.Start(t)
	keys, k := rateKeys(t, 4)
	rs := rateReplicas(t, keys, srv, 2, rateLimits())

	// The bucket is one: its remaining count goes down across both replicas.
	for i := 0; i < 5; i++ {
		a := rateGet(t, rs[i%2].url, k[0])
		if want := fmt.Sprintf(`"key";r=%d;t=%d`, 4-i, 2*(i+1)); a.status != http.StatusOK || a.limit != want {
			t.Fatalf("request %d of key 0 (replica %d): %d, RateLimit %q, want 200 and %q", i, i%2, a.status, a.limit, want)
		}
	}
	if per := admittedAcross(t, rs, k[0], 10); sum(per) != 0 {
		t.Fatalf("key 0 after its burst: admitted %v more by the replicas, want none", per)
	}
	if per := admittedAcross(t, rs, k[1], 20); sum(per) != 5 {
		t.Fatalf("key 1: replicas admitted %v of 20, want 5 in all", per)
	}
	for i, r := range rs {
		if n := r.decisions(t, "local"); n != 0 {
			t.Fatalf("replica %d decided %v requests with its own bucket while Redis was up", i, n)
		}
		// Of the 35 requests, replica 0 had the first and every other one.
		if n, want := r.decisions(t, "shared"), []float64{18, 17}[i]; n != want {
			t.Fatalf("replica %d: %v decisions in Redis, want %v", i, n, want)
		}
	}

	// Redis gone (connections refused): each replica decides alone, its own burst per key.
	srv.Stop()
	if per := admittedAcross(t, rs, k[2], 20); per[0] != 5 || per[1] != 5 {
		t.Fatalf("key 2 with Redis down: replicas admitted %v of 20, want 5 each", per)
	}
	// key 0's shared bucket is empty, but the replicas' own ones never were used.
	if per := admittedAcross(t, rs, k[0], 20); per[0] != 5 || per[1] != 5 {
		t.Fatalf("key 0 with Redis down: replicas admitted %v of 20, want 5 each", per)
	}
	for i, r := range rs {
		if n := r.decisions(t, "local"); n != 40/2 {
			t.Fatalf("replica %d decided %v requests with its own bucket while Redis was down, want 20", i, n)
		}
		if r.metric(t, "trustplane_query_limits_store_down") != 1 || r.metric(t, "trustplane_query_limits_store_failures_total") == 0 {
			t.Fatalf("replica %d with Redis down: limits_store_down %v, limits_store_failures_total %v", i,
				r.metric(t, "trustplane_query_limits_store_down"), r.metric(t, "trustplane_query_limits_store_failures_total"))
		}
	}

	// Redis back (empty): once each replica's breaker lets a probe through (after 1 s) and it
	// succeeds, Redis decides again. The probes use key 3's bucket; the deadline only keeps a
	// broken build from hanging the test.
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for i, r := range rs {
		for before := r.decisions(t, "shared"); r.decisions(t, "shared") == before; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("replica %d: Redis not used again within 30 s of its restart", i)
			}
			rateGet(t, r.url, k[3])
		}
	}
	// key 1's bucket was lost with Redis's restart: full again, and shared.
	local := rs[0].decisions(t, "local") + rs[1].decisions(t, "local")
	if per := admittedAcross(t, rs, k[1], 20); sum(per) != 5 {
		t.Fatalf("key 1 after Redis's restart: replicas admitted %v of 20, want 5 in all", per)
	}
	if n := rs[0].decisions(t, "local") + rs[1].decisions(t, "local"); n != local {
		t.Fatalf("%v requests decided by the replicas' own buckets after Redis was back", n-local)
	}
}

// Without Redis each replica has its own bucket: the burst once per replica.
func TestRateLimitWithoutRedisIsPerReplica(t *testing.T) {
	keys, k := rateKeys(t, 1)
	rs := rateReplicas(t, keys, nil, 2, rateLimits())
	if per := admittedAcross(t, rs, k[0], 20); per[0] != 5 || per[1] != 5 {
		t.Fatalf("replicas admitted %v of 20, want 5 each", per)
	}
	for i, r := range rs {
		if n := r.decisions(t, "local"); n != 10 {
			t.Fatalf("replica %d: %v decisions with its own bucket, want 10", i, n)
		}
	}
}

func TestRateLimitConfig(t *testing.T) {
	t.Setenv("CLICKHOUSE_ADDR", "localhost:9000")
	t.Setenv("AUTH_URL", "http://auth")
	cfg := func(mutate func(*Config)) Config {
		var c Config
		if err := envconfig.Process("", &c); err != nil {
			t.Fatal(err)
		}
		mutate(&c)
		return c
	}
	if err := cfg(func(*Config) {}).Validate(); err != nil {
		t.Fatalf("the defaults: %v", err)
	}
	if err := cfg(func(c *Config) { c.RedisURL = "redis://:pw@redis.trustplane:6379/0" }).Validate(); err != nil {
		t.Fatalf("a Redis URL: %v", err)
	}
	for _, c := range []struct {
		mutate func(*Config)
		want   string
	}{
		{func(c *Config) { c.RedisURL = "http://:hunter2@redis:6379" }, "REDIS_URL is not a redis:// URL"},
		{func(c *Config) { c.RedisURL = "redis://:hunter2@redis:6379/x" }, "REDIS_URL is not a redis:// URL"},
		{func(c *Config) { c.LimitsTimeout = 0 }, "QUERY_LIMITS_TIMEOUT must be between 1ms and 1s"},
		{func(c *Config) { c.LimitsTimeout = 2 * time.Second }, "QUERY_LIMITS_TIMEOUT must be between 1ms and 1s"},
		{func(c *Config) { c.RatePerSecond = 0 }, "QUERY_RATE_PER_SECOND must be positive"},
		{func(c *Config) { c.RateBurst = 0 }, "QUERY_RATE_BURST at least 1"},
		{func(c *Config) { c.RatePerSecond = 2e6 }, "QUERY_RATE_PER_SECOND must be at most 1000000"},
		{func(c *Config) { c.RatePerSecond, c.RateBurst = 1e-6, 10 }, "must be at most 720h0m0s"},
	} {
		err := cfg(c.mutate).Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want an error saying %q", err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error quotes the password: %v", err)
		}
	}
}

// The RateLimit fields round up to whole seconds.
func TestRateLimitHeaders(t *testing.T) {
	l := defaultLimits()
	l.RateBurst, l.RatePerSecond = 100, 50 // a 2 s window
	k := newKeyRate(limits.NewLimiter(nil, limits.Options{}), l)
	for _, c := range []struct {
		remaining int64
		want      string
	}{{100, `"key";r=100;t=0`}, {99, `"key";r=99;t=1`}, {50, `"key";r=50;t=1`}, {49, `"key";r=49;t=2`}, {0, `"key";r=0;t=2`}} {
		h := http.Header{}
		k.headers(h, limits.Grant{Remaining: c.remaining})
		if got := h.Get("RateLimit"); got != c.want || h.Get("RateLimit-Policy") != `"key";q=100;w=2` {
			t.Errorf("remaining %d: RateLimit %q, RateLimit-Policy %q; want %q", c.remaining, got, h.Get("RateLimit-Policy"), c.want)
		}
	}
}
