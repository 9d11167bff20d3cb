package router

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/trustplane/trustplane/functions/auth"
	"github.com/trustplane/trustplane/functions/router/redistest"
)

var frozen = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func TestGCRABucket(t *testing.T) {
	for name, store := range map[string]Store{"memory": NewMemoryStore(), "redis": redisStore(t)} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b := func(n int64) []Units { return []Units{{Key: "b", Limit: 60, Window: time.Minute, N: n}} }
			for i := 0; i < 60; i++ {
				if refused, g, err := store.Take(ctx, b(1), frozen); err != nil || refused != -1 || g[0].Remaining != int64(59-i) {
					t.Fatalf("take %d: refused %d %+v %v", i, refused, g, err)
				}
			}
			refused, g, _ := store.Take(ctx, b(1), frozen)
			if refused != 0 || g[0].RetryAfter != time.Second {
				t.Fatalf("61st take: refused %d %+v, want refused with retry after 1s", refused, g)
			}
			later := frozen.Add(2 * time.Second)
			if refused, g, _ := store.Take(ctx, b(3), later); refused != 0 || g[0].Remaining != 2 {
				t.Fatalf("3 after 2s: refused %d %+v, want refused with the 2 refilled units left", refused, g)
			}
			if refused, g, _ := store.Take(ctx, b(2), later); refused != -1 || g[0].Remaining != 0 {
				t.Fatalf("2 after 2s: refused %d %+v, want the 2 refilled units", refused, g)
			}
			// Giving back and charging more move the bucket both ways.
			if err := store.Add(ctx, b(-10), later); err != nil {
				t.Fatal(err)
			}
			if refused, _, _ := store.Take(ctx, b(10), later); refused != -1 {
				t.Fatal("10 after giving back 10: refused")
			}
			if err := store.Add(ctx, b(30), later); err != nil {
				t.Fatal(err)
			}
			// A debt of 30 units is paid off in 30s; the next unit comes a second later.
			if refused, g, _ := store.Take(ctx, b(1), later.Add(30*time.Second)); refused != 0 || g[0].RetryAfter != time.Second {
				t.Fatalf("30s into a debt of 30: refused %d %+v, want refused for 1s more", refused, g)
			}

			// Several buckets are taken all or none: the second has no room, so the first
			// keeps its units.
			two := []Units{{Key: "x", Limit: 5, Window: time.Minute, N: 1}, {Key: "y", Limit: 1, Window: time.Minute, N: 2}}
			if refused, g, err := store.Take(ctx, two, frozen); err != nil || refused != 1 || g[0].Remaining != 1 {
				t.Fatalf("two buckets, the second without room: refused %d %+v %v", refused, g, err)
			}
			two[1].N = 1
			if refused, g, err := store.Take(ctx, two, frozen); err != nil || refused != -1 || g[0].Remaining != 4 || g[1].Remaining != 0 {
				t.Fatalf("two buckets with room: refused %d %+v %v, want x's 5 less one, y's 1 less one", refused, g, err)
			}
		})
	}
}

func redisStore(t *testing.T) *RedisStore {
	t.Helper()
	return redisStoreAt(t, redistest.Start(t))
}

// redisStoreAt is a store with a client of its own, as each replica has.
func redisStoreAt(t *testing.T, srv *redistest.Server) *RedisStore {
	t.Helper()
	c, err := NewRedisClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return NewRedisStore(c)
}

const mockRoute = `
providers: [{name: m, type: mock}]
models:
  - name: gpt
    targets: [{provider: m, model: mock}]
prices:
  mock: {input_per_mtok: 1, output_per_mtok: 2}
limits:
%s
`

func TestRequestsPerMinuteAcrossThreeReplicas(t *testing.T) {
	const limit = 300
	k := newKeys(t)
	redisSrv := redistest.Start(t)
	routing := fmt.Sprintf(mockRoute, fmt.Sprintf("  tenant: {requests_per_minute: %d}", limit))
	var replicas []string
	for i := 0; i < 3; i++ {
		// Each replica has its own limiter and its own Redis connections.
		_, srv := serve(t, k, routing, Options{Limiter: NewLimiter(redisStoreAt(t, redisSrv), LimiterOptions{Timeout: time.Second}), Now: func() time.Time { return frozen }})
		replicas = append(replicas, srv.URL)
	}
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	var badRefusal atomic.Value
	for w := 0; w < 12; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 75; i++ {
				resp, body := do(t, replicas[(w+i)%3], "POST", PathChat, k.llm, chatBody)
				switch resp.StatusCode {
				case 200:
					admitted.Add(1)
				case 429:
					refused.Add(1)
					if resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "rate_limit_exceeded") {
						badRefusal.Store(fmt.Sprintf("%v %s", resp.Header, body))
					}
				default:
					badRefusal.Store(fmt.Sprintf("status %d: %s", resp.StatusCode, body))
				}
			}
		}()
	}
	wg.Wait()
	if v := badRefusal.Load(); v != nil {
		t.Errorf("bad answer: %v", v)
	}
	// Every call is decided in Redis in one atomic step: exactly the limit is admitted.
	if n := admitted.Load(); n != limit {
		t.Errorf("admitted %d of 900 across 3 replicas, want %d", n, limit)
	}
	if admitted.Load()+refused.Load() != 900 {
		t.Errorf("admitted %d + refused %d != 900", admitted.Load(), refused.Load())
	}
	t.Logf("admitted %d, refused %d", admitted.Load(), refused.Load())
}

func TestPerKeyLimitFromTheKeyRecord(t *testing.T) {
	k := newKeys(t)
	_, srv := serve(t, k, fmt.Sprintf(mockRoute, "  key: {requests_per_minute: 100}"), Options{Now: func() time.Time { return frozen }})
	for i := 0; i < 2; i++ {
		resp, body := do(t, srv.URL, "POST", PathChat, k.limited, chatBody)
		if resp.StatusCode != 200 || resp.Header.Get("X-Ratelimit-Limit-Requests") != "2" || resp.Header.Get("X-Ratelimit-Remaining-Requests") != fmt.Sprint(1-i) {
			t.Fatalf("call %d: %d %v %s", i, resp.StatusCode, resp.Header, body)
		}
	}
	resp, body := do(t, srv.URL, "POST", PathChat, k.limited, chatBody)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "30" || !strings.Contains(string(body), "requests per minute of key:") {
		t.Errorf("third call: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// The refusal names the limit it hit in OpenAI's headers too: 2 a minute, none left, full
	// again in a minute (time is frozen).
	if h := resp.Header; h.Get("X-Ratelimit-Limit-Requests") != "2" || h.Get("X-Ratelimit-Remaining-Requests") != "0" || h.Get("X-Ratelimit-Reset-Requests") != "1m0s" {
		t.Errorf("third call's rate limit headers: %v", h)
	}
	// Another key of another tenant is not affected; it has the configured default.
	if resp, _ := do(t, srv.URL, "POST", PathChat, k.llm, chatBody); resp.StatusCode != 200 || resp.Header.Get("X-Ratelimit-Limit-Requests") != "100" {
		t.Errorf("other key: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestTokensPerMinuteAreCorrectedWithUsage(t *testing.T) {
	// The prompt is estimated at a few tokens; the upstream reports 60 per call.
	up := newUpstream(t, reply(200, `{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":50,"completion_tokens":10,"total_tokens":60}}`))
	routing := singleRoute("openai-compatible", up.URL, "") + "limits:\n  models: {gpt: {tokens_per_minute: 100}}\n"
	k := newKeys(t)
	_, srv := serve(t, k, routing, Options{Now: func() time.Time { return frozen }})
	for i := 0; i < 2; i++ {
		if resp, body := do(t, srv.URL, "POST", PathChat, k.llm, chatBody); resp.StatusCode != 200 {
			t.Fatalf("call %d: %d %s", i, resp.StatusCode, body)
		}
	}
	// 120 of 100 tokens used: the debt refuses the next call until it has refilled.
	resp, body := do(t, srv.URL, "POST", PathChat, k.llm, chatBody)
	if resp.StatusCode != 429 || !strings.Contains(string(body), "tokens per minute of model:gpt") {
		t.Errorf("third call: %d %s", resp.StatusCode, body)
	}
	if h := resp.Header; h.Get("X-Ratelimit-Limit-Tokens") != "100" || h.Get("X-Ratelimit-Remaining-Tokens") != "0" || h.Get("X-Ratelimit-Reset-Tokens") == "" {
		t.Errorf("third call's rate limit headers: %v", h)
	}
}

func TestDailyBudget(t *testing.T) {
	// Each mock call costs its tokens at $1/M in and $2/M out, about 11 micro-dollars; the
	// budget of 20 admits calls until it is spent.
	k := newKeys(t)
	_, srv := serve(t, k, fmt.Sprintf(mockRoute, "  tenant: {usd_per_day: 0.00002}"), Options{Now: func() time.Time { return frozen }})
	var costs []float64
	for i := 0; ; i++ {
		resp, body := do(t, srv.URL, "POST", PathChat, k.llm, chatBody)
		if resp.StatusCode == 429 {
			if !strings.Contains(string(body), "USD per day of tenant:acme") {
				t.Errorf("refusal %s", body)
			}
			break
		}
		var r ChatResponse
		_ = json.Unmarshal(body, &r)
		costs = append(costs, float64(r.Usage.PromptTokens)*1e-6+float64(r.Usage.CompletionTokens)*2e-6)
		if i > 10 {
			t.Fatal("the budget never refused")
		}
	}
	// A call is admitted while any budget is left, so the spend passes the budget by at most
	// one call.
	var spent float64
	for _, c := range costs[:len(costs)-1] {
		spent += c
	}
	if len(costs) < 2 || spent >= 20e-6 || spent+costs[len(costs)-1] < 20e-6 {
		t.Errorf("admitted %d calls costing %v; all but the last must fit in the budget", len(costs), costs)
	}
	if resp, _ := do(t, srv.URL, "GET", PathModels, k.llm, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("listing models is not limited: %d", resp.StatusCode)
	}
}

func TestScopesUseTheKeyRecordsLimits(t *testing.T) {
	cfg := mustRouting(t, fmt.Sprintf(mockRoute, "  key: {requests_per_minute: 100, tokens_per_minute: 1000, usd_per_day: 5}\n  tenants: {acme: {usd_per_day: 50}}\n  models: {gpt: {requests_per_minute: 7}}"))
	own := cfg.scopes(auth.Principal{KeyID: "k1", Tenant: "acme", Limits: &auth.Limits{RequestsPerMinute: 2, USDPerDay: 0.5}}, "gpt")
	want := []scopeLimit{
		{id: "key:k1", limit: Limit{RequestsPerMinute: 2, USDPerDay: 0.5}},
		{id: "tenant:acme", limit: Limit{USDPerDay: 50}},
		{id: "model:gpt", limit: Limit{RequestsPerMinute: 7}},
	}
	if fmt.Sprint(own) != fmt.Sprint(want) {
		t.Errorf("scopes %v, want %v", own, want)
	}
	def := cfg.scopes(auth.Principal{KeyID: "k2", Tenant: "other"}, "mock")
	if len(def) != 2 || def[0].limit != (Limit{RequestsPerMinute: 100, TokensPerMinute: 1000, USDPerDay: 5}) || def[1].limit != (Limit{}) {
		t.Errorf("default scopes %v", def)
	}
}

func TestClientGoingAwayDoesNotSwitchOffSharedLimits(t *testing.T) {
	// A call whose client leaves during its limits round trip ends that round trip; Redis did
	// not fail, so it must not count towards opening the store's circuit: the next calls are
	// still decided by the shared buckets.
	scopes := []scopeLimit{{id: "tenant:acme", limit: Limit{RequestsPerMinute: 1}}}
	l := NewLimiter(redisStore(t), LimiterOptions{Timeout: time.Second})
	if _, refusal := l.Admit(context.Background(), scopes, 1, frozen); refusal != nil {
		t.Fatalf("first call: %v", refusal)
	}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	for i := 0; i < 2*breakerThreshold; i++ {
		l.Admit(gone, []scopeLimit{{id: "tenant:other", limit: Limit{RequestsPerMinute: 1}}}, 1, frozen)
	}
	if _, refusal := l.Admit(context.Background(), scopes, 1, frozen); refusal == nil {
		t.Error("call after clients went away: admitted, want refused by the shared limit")
	}
	if n := metricValue(l.failures); n != 0 {
		t.Errorf("%v store failures counted for clients that went away", n)
	}
}

func TestSpendFarUnderTheBudgetIsAlwaysAdmitted(t *testing.T) {
	// One call every 1.5s costing $0.0001: 200 of them spend $0.02, and a shared budget of $1 a
	// day must admit them all.
	l := NewLimiter(redisStore(t), LimiterOptions{Timeout: time.Second})
	scopes := []scopeLimit{{id: "tenant:acme", limit: Limit{USDPerDay: 1}}}
	now := frozen
	for i := 0; i < 200; i++ {
		adm, refusal := l.Admit(context.Background(), scopes, 1, now)
		if refusal != nil || !adm.shared {
			t.Fatalf("call %d at +%s: refusal %+v, decided in Redis %v", i, now.Sub(frozen), refusal, adm != nil && adm.shared)
		}
		adm.Settle(context.Background(), 0, 0.0001, now)
		now = now.Add(1500 * time.Millisecond)
	}
}

func TestTokensPerMinuteHoldWhenTheProviderReportsNoUsage(t *testing.T) {
	// Some OpenAI-compatible servers answer without usage: the estimate must still count, as it
	// does for a stream without its usage chunk, or the limit never holds.
	up := newUpstream(t, reply(200, `{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}`))
	routing := singleRoute("openai-compatible", up.URL, "") + "limits:\n  models: {gpt: {tokens_per_minute: 100}}\n"
	k := newKeys(t)
	_, srv := serve(t, k, routing, Options{Now: func() time.Time { return frozen }})
	for i := 0; i < 10; i++ {
		resp, body := do(t, srv.URL, "POST", PathChat, k.llm, chatBody)
		if resp.StatusCode == 429 {
			if !strings.Contains(string(body), "tokens per minute of model:gpt") {
				t.Errorf("refusal %s", body)
			}
			return
		}
		if resp.StatusCode != 200 {
			t.Fatalf("call %d: %d %s", i, resp.StatusCode, body)
		}
	}
	t.Errorf("10 calls of about %d tokens each admitted under a limit of 100 tokens a minute", estimateTokens([]byte(chatBody)))
}

// metricValue reads a counter or gauge.
func metricValue(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// The store's breaker opens after breakerThreshold failures in a row, lets one probe through
// once the cooldown has passed, and closes when a probe succeeds.
func TestStoreBreakerOpensProbesAndCloses(t *testing.T) {
	b := storeBreaker{down: prometheus.NewGauge(prometheus.GaugeOpts{Name: "down"})}
	for i := 0; i < breakerThreshold; i++ {
		if ok, probe := b.allow(frozen); !ok || probe {
			t.Fatalf("failure %d: allowed %v probe %v, want closed", i, ok, probe)
		}
		b.done(frozen, false, true)
	}
	if ok, _ := b.allow(frozen.Add(breakerCooldown - time.Millisecond)); ok || metricValue(b.down) != 1 {
		t.Fatalf("within the cooldown: allowed %v, down %v", ok, metricValue(b.down))
	}
	after := frozen.Add(breakerCooldown)
	if ok, probe := b.allow(after); !ok || !probe {
		t.Fatalf("past the cooldown: allowed %v probe %v, want one probe", ok, probe)
	}
	if ok, _ := b.allow(after); ok {
		t.Fatal("a second call allowed while the probe runs")
	}
	b.done(after, true, true) // the probe failed: open for another cooldown
	if ok, _ := b.allow(after.Add(breakerCooldown - time.Millisecond)); ok {
		t.Fatal("allowed within the cooldown after a failed probe")
	}
	again := after.Add(breakerCooldown)
	if _, probe := b.allow(again); !probe {
		t.Fatal("no probe after the second cooldown")
	}
	b.release(true) // its client went away: no verdict, the next call probes
	if _, probe := b.allow(again); !probe {
		t.Fatal("no probe after a released one")
	}
	if closed := b.done(again, true, false); !closed || metricValue(b.down) != 0 {
		t.Fatalf("a successful probe: closed %v, down %v", closed, metricValue(b.down))
	}
	if ok, probe := b.allow(again); !ok || probe {
		t.Fatalf("after closing: allowed %v probe %v", ok, probe)
	}
}
