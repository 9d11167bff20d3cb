package router

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustplane/trustplane/functions/router/limits"
	"github.com/trustplane/trustplane/functions/router/openai"
	"github.com/trustplane/trustplane/functions/router/redistest"
	"github.com/trustplane/trustplane/functions/router/routing/routingtest"
)

var frozen = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// redisStoreAt is a store with a client of its own, as each replica has.
func redisStoreAt(t *testing.T, srv *redistest.Server) *limits.RedisStore {
	t.Helper()
	c, err := limits.NewRedisClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return limits.NewRedisStore(c)
}

func TestRequestsPerMinuteAcrossThreeReplicas(t *testing.T) {
	const limit = 300
	k := newKeys(t)
	redisSrv := redistest.Start(t)
	routingYAML := fmt.Sprintf(routingtest.MockRoute, fmt.Sprintf("  tenant: {requests_per_minute: %d}", limit))
	var replicas []string
	for i := 0; i < 3; i++ {
		// Each replica has its own limiter and its own Redis connections.
		_, srv := serve(t, k, routingYAML, Options{Limiter: limits.NewLimiter(redisStoreAt(t, redisSrv), limits.Options{Timeout: time.Second}), Now: func() time.Time { return frozen }})
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
	_, srv := serve(t, k, fmt.Sprintf(routingtest.MockRoute, "  key: {requests_per_minute: 100}"), Options{Now: func() time.Time { return frozen }})
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
	routingYAML := singleRoute("openai-compatible", up.URL, "") + "limits:\n  models: {gpt: {tokens_per_minute: 100}}\n"
	k := newKeys(t)
	_, srv := serve(t, k, routingYAML, Options{Now: func() time.Time { return frozen }})
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
	_, srv := serve(t, k, fmt.Sprintf(routingtest.MockRoute, "  tenant: {usd_per_day: 0.00002}"), Options{Now: func() time.Time { return frozen }})
	var costs []float64
	for i := 0; ; i++ {
		resp, body := do(t, srv.URL, "POST", PathChat, k.llm, chatBody)
		if resp.StatusCode == 429 {
			if !strings.Contains(string(body), "USD per day of tenant:acme") {
				t.Errorf("refusal %s", body)
			}
			break
		}
		var r openai.ChatResponse
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

func TestTokensPerMinuteHoldWhenTheProviderReportsNoUsage(t *testing.T) {
	// Some OpenAI-compatible servers answer without usage: the estimate must still count, as it
	// does for a stream without its usage chunk, or the limit never holds.
	up := newUpstream(t, reply(200, `{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}`))
	routingYAML := singleRoute("openai-compatible", up.URL, "") + "limits:\n  models: {gpt: {tokens_per_minute: 100}}\n"
	k := newKeys(t)
	_, srv := serve(t, k, routingYAML, Options{Now: func() time.Time { return frozen }})
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
