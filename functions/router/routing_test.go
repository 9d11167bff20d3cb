package router

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustplane/trustplane/functions/router/routing"
	"github.com/trustplane/trustplane/functions/router/routing/routingtest"
)

func TestFallbackOnRateLimitAndServerError(t *testing.T) {
	for _, failure := range []http.HandlerFunc{
		reply(429, `{"error":{"message":"rate limited","type":"requests"}}`, "Retry-After", "1"),
		reply(503, `{"error":{"message":"unavailable"}}`),
	} {
		a, b := newUpstream(t, failure), newUpstream(t, reply(200, openAICompletion))
		f := newFixture(t, routingtest.TwoTargets("priority", a.URL, b.URL, ""), Options{})
		resp, body := f.do(t, "POST", PathChat, f.keys.llm, chatBody)
		if resp.StatusCode != 200 || a.count() != 1 || b.count() != 1 {
			t.Fatalf("status %d (%s); upstream a %d, b %d requests", resp.StatusCode, body, a.count(), b.count())
		}
		c := f.calls(t, 1)[resp.Header.Get(HeaderCallID)]
		if len(c.Attempts) != 2 || c.Attempts[0].Provider != "a" || c.Attempts[0].Status != "error" || c.Attempts[0].StatusCode == 0 ||
			c.Attempts[1].Provider != "b" || c.Attempts[1].Status != "success" || c.Provider != "b" {
			t.Errorf("attempts %+v", c.Attempts)
		}
	}
}

// A target that refuses router's credentials (401, 403) is a misconfigured target, not a bad
// request: the call falls back to the next target, and does not come back round to it.
func TestFallbackWhenATargetRefusesRoutersCredentials(t *testing.T) {
	for _, status := range []int{401, 403} {
		refusing := reply(status, `{"error":{"message":"not allowed","type":"permission_error"}}`)
		a, b := newUpstream(t, refusing), newUpstream(t, reply(200, openAICompletion))
		f := newFixture(t, routingtest.TwoTargets("priority", a.URL, b.URL, ""), Options{})
		resp, body := f.do(t, "POST", PathChat, f.keys.llm, chatBody)
		if resp.StatusCode != 200 || a.count() != 1 || b.count() != 1 {
			t.Fatalf("%d: status %d (%s); upstream a %d, b %d requests", status, resp.StatusCode, body, a.count(), b.count())
		}
		c := f.calls(t, 1)[resp.Header.Get(HeaderCallID)]
		if len(c.Attempts) != 2 || c.Attempts[0].StatusCode != status || c.Provider != "b" {
			t.Errorf("%d: attempts %+v", status, c.Attempts)
		}

		// Both refuse: each is asked once, and the client hears 502, not a 401/403 of its own.
		a, b = newUpstream(t, refusing), newUpstream(t, refusing)
		f = newFixture(t, routingtest.TwoTargets("priority", a.URL, b.URL, ""), Options{})
		resp, body = f.do(t, "POST", PathChat, f.keys.llm, chatBody)
		if resp.StatusCode != http.StatusBadGateway || a.count() != 1 || b.count() != 1 {
			t.Errorf("%d from both: status %d (%s); upstream a %d, b %d requests", status, resp.StatusCode, body, a.count(), b.count())
		}
		f.calls(t, 1)
	}
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	var first, second atomic.Int64
	up := newUpstream(t,
		func(w http.ResponseWriter, r *http.Request) {
			first.Store(time.Now().UnixNano())
			reply(429, `{"error":{"message":"slow down"}}`, "Retry-After", "1")(w, r)
		},
		func(w http.ResponseWriter, r *http.Request) {
			second.Store(time.Now().UnixNano())
			reply(200, openAICompletion)(w, r)
		})
	f := newFixture(t, singleRoute("openai-compatible", up.URL, ""), Options{})
	if resp, body := f.do(t, "POST", PathChat, f.keys.llm, chatBody); resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if gap := time.Duration(second.Load() - first.Load()); gap < time.Second {
		t.Errorf("retried after %s, before the 1s Retry-After", gap)
	}
	c := f.calls(t, 1)
	for _, call := range c {
		// The wait is neither provider nor gateway time. Gateway time is a fraction of a
		// millisecond; it reaches 1 s only if the process stalls that long, and the slowest of
		// a million loopback calls on the 2-core build machine under load took 66 ms: the
		// chance of an accidental failure is far below one in a million.
		if call.Latency.GatewayMs >= 1000 || call.Latency.TotalMs < 1000 {
			t.Errorf("latency %+v", call.Latency)
		}
	}

	// A Retry-After beyond max_backoff ends the retries: the client gets the 429 and the wait.
	up2 := newUpstream(t, reply(429, `{"error":{"message":"come back later"}}`, "Retry-After", "120"))
	f2 := newFixture(t, singleRoute("openai-compatible", up2.URL, ""), Options{})
	resp, _ := f2.do(t, "POST", PathChat, f2.keys.llm, chatBody)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "120" || up2.count() != 1 {
		t.Errorf("status %d Retry-After %q after %d attempts", resp.StatusCode, resp.Header.Get("Retry-After"), up2.count())
	}
}

// hang answers only when the request is cancelled.
func hang(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

func TestTimeoutPerTarget(t *testing.T) {
	a, b := newUpstream(t, hang), newUpstream(t, reply(200, openAICompletion))
	routingYAML := strings.Replace(routingtest.TwoTargets("priority", a.URL, b.URL, ""), "weight: 3}", "weight: 3, timeout: 200ms}", 1)
	f := newFixture(t, routingYAML, Options{})
	// a never answers, so its timeout always ends its attempt; b has its default 60 s, which a
	// loopback call (66 ms at worst in a million on the build machine) never comes near.
	resp, body := f.do(t, "POST", PathChat, f.keys.llm, chatBody)
	if resp.StatusCode != 200 || b.count() != 1 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	c := f.calls(t, 1)[resp.Header.Get(HeaderCallID)]
	if len(c.Attempts) != 2 || !strings.Contains(c.Attempts[0].Error, "deadline") || c.Attempts[0].StatusCode != 0 {
		t.Errorf("attempts %+v", c.Attempts)
	}

	// With no target left, a timeout is a 504.
	f2 := newFixture(t, strings.Replace(singleRoute("openai-compatible", a.URL, ""), "model: upstream-model}", "model: upstream-model, timeout: 100ms}", 1), Options{})
	if resp, body := f2.do(t, "POST", PathChat, f2.keys.llm, chatBody); resp.StatusCode != 504 || !strings.Contains(string(body), "upstream_timeout") {
		t.Errorf("status %d: %s", resp.StatusCode, body)
	}
}

func TestCircuitBreakerShedsAFailingTargetAndProbesItBack(t *testing.T) {
	var healthy atomic.Bool
	a := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if healthy.Load() {
			reply(200, openAICompletion)(w, r)
			return
		}
		reply(500, `{"error":{"message":"down"}}`)(w, r)
	})
	b := newUpstream(t, reply(200, openAICompletion))
	var now atomic.Int64 // the circuit's clock, moved by the test
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	f := newFixture(t, routingtest.TwoTargets("priority", a.URL, b.URL, "circuit: {failure_threshold: 2, cooldown: 1m}\n"), Options{Now: clock})
	call := func() {
		t.Helper()
		if resp, body := f.do(t, "POST", PathChat, f.keys.llm, chatBody); resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	}
	call()
	call() // a's second consecutive failure opens its circuit
	call()
	call()
	if a.count() != 2 || b.count() != 4 {
		t.Fatalf("open circuit: a got %d requests (want 2), b %d (want 4)", a.count(), b.count())
	}
	healthy.Store(true)
	now.Add(int64(time.Minute + time.Second)) // past the cooldown: the next call probes a
	call()
	call()
	if a.count() != 4 || b.count() != 4 {
		t.Errorf("after the probe: a got %d requests (want 4), b %d (want 4)", a.count(), b.count())
	}
	f.calls(t, 6)
}

func TestWeightedStrategySpreadsByWeight(t *testing.T) {
	a, b := newUpstream(t, reply(200, openAICompletion)), newUpstream(t, reply(200, openAICompletion))
	k := newKeys(t)
	// A seeded source: the 200 draws are the same on every run, so the test cannot fail by
	// chance (unseeded, a >= 2b fails for about 1 run in 250 at weights 3:1).
	_, srv := serve(t, k, routingtest.TwoTargets("weighted", a.URL, b.URL, ""), Options{Rand: rand.New(rand.NewPCG(1, 2))})
	for i := 0; i < 200; i++ {
		if resp, _ := do(t, srv.URL, "POST", PathChat, k.llm, chatBody); resp.StatusCode != 200 {
			t.Fatal(resp.Status)
		}
	}
	// Weights 3:1; both are used, a about three times as often.
	if a.count()+b.count() != 200 || b.count() == 0 || a.count() < 2*b.count() {
		t.Errorf("a served %d, b %d", a.count(), b.count())
	}
}

func TestLeastLatencyPrefersTheFasterTarget(t *testing.T) {
	slow := func(w http.ResponseWriter, r *http.Request) {
		// Slow by a margin that a busy machine's delays on the fast target do not reach.
		time.Sleep(500 * time.Millisecond)
		reply(200, openAICompletion)(w, r)
	}
	a, b := newUpstream(t, slow), newUpstream(t, reply(200, openAICompletion))
	k := newKeys(t)
	_, srv := serve(t, k, routingtest.TwoTargets("least-latency", a.URL, b.URL, ""), Options{})
	for i := 0; i < 10; i++ {
		if resp, _ := do(t, srv.URL, "POST", PathChat, k.llm, chatBody); resp.StatusCode != 200 {
			t.Fatal(resp.Status)
		}
	}
	// Each target is measured once, then the faster one takes every call. a's average is at
	// least 500 ms; b's (α 0.3) passes it only if one of b's loopback calls takes over 1.6 s,
	// or several over 500 ms, and the slowest of a million took 66 ms on the 2-core build
	// machine under load: an accidental failure is far below one in a million.
	if a.count() != 1 || b.count() != 9 {
		t.Errorf("slow a served %d, fast b %d", a.count(), b.count())
	}
}

func TestRoutingFileIsReloadedOnChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "routing.yaml")
	write := func(s string) {
		// Replace the file the way a ConfigMap update does: a new file renamed into place.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf(routingtest.MockRoute, "  key: {}"))
	refused := make(chan struct{}, 1)
	routes, err := routing.Load(path, http.DefaultClient, slog.New(errorSignal{refused}))
	if err != nil {
		t.Fatal(err)
	}
	k := newKeys(t)
	_, srv := serveSource(t, k, routes, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	watching := make(chan struct{})
	go func() { _ = routes.Run(ctx, 20*time.Millisecond); close(watching) }()
	defer func() { cancel(); <-watching }()

	models := func() string {
		_, body := do(t, srv.URL, "GET", PathModels, k.llm, "")
		return string(body)
	}
	// The watcher looks every 20 ms; 30 s is the bound only a stalled machine could reach.
	eventually := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(models(), want) && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		if !strings.Contains(models(), want) {
			t.Fatalf("models %s never contained %s", models(), want)
		}
	}
	write(strings.Replace(fmt.Sprintf(routingtest.MockRoute, "  key: {}"), "  - name: gpt\n", "  - name: gpt-new\n    targets: [{provider: m, model: mock}]\n  - name: gpt\n", 1))
	eventually(`"id":"gpt-new"`)
	// A broken file is refused; the last good routing keeps serving.
	select {
	case <-refused:
		t.Fatal("a good routing file was refused")
	default:
	}
	write("models: [oops")
	select {
	case <-refused: // the watcher read the broken file and refused it
	case <-time.After(30 * time.Second):
		t.Fatal("the broken file was never refused")
	}
	if !strings.Contains(models(), `"id":"gpt-new"`) {
		t.Errorf("a bad file replaced the routing: %s", models())
	}
}

// errorSignal is a log handler that signals each error record (a refused routing file) and
// drops everything else.
type errorSignal struct{ c chan struct{} }

func (h errorSignal) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h errorSignal) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h errorSignal) WithGroup(string) slog.Handler                { return h }
func (h errorSignal) Handle(context.Context, slog.Record) error {
	select {
	case h.c <- struct{}{}:
	default:
	}
	return nil
}

func TestRotatedProviderKeyIsReloaded(t *testing.T) {
	up := newUpstream(t, reply(200, openAICompletion))
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "openai")
	if err := os.WriteFile(keyFile, []byte("sk-old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "routing.yaml")
	routingYAML := fmt.Sprintf("providers: [{name: p, type: openai, base_url: %q, api_key_file: %q}]\nmodels: [{name: gpt, targets: [{provider: p, model: m}]}]\n", up.URL, keyFile)
	if err := os.WriteFile(path, []byte(routingYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	routes, err := routing.Load(path, http.DefaultClient, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	k := newKeys(t)
	_, srv := serveSource(t, k, routes, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	watching := make(chan struct{})
	go func() { _ = routes.Run(ctx, 20*time.Millisecond); close(watching) }()
	defer func() { cancel(); <-watching }()
	do(t, srv.URL, "POST", PathChat, k.llm, chatBody)
	if err := os.WriteFile(keyFile, []byte("sk-new\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The watcher looks every 20 ms; 30 s is the bound only a stalled machine could reach.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		do(t, srv.URL, "POST", PathChat, k.llm, chatBody)
		if up.request(up.count()-1).header.Get("Authorization") == "Bearer sk-new" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if first, last := up.request(0).header.Get("Authorization"), up.request(up.count()-1).header.Get("Authorization"); first != "Bearer sk-old" || last != "Bearer sk-new" {
		t.Errorf("first call used %q, last %q", first, last)
	}
}
