package router

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/functions/router/routing"
	"github.com/trustplane/trustplane/functions/runtime"
	"github.com/trustplane/trustplane/internal/testsupport"
)

// While auth is unreachable every call is answered 503, and the log says so in a line per
// interval, not one per call.
func TestAuthUnavailableIsLoggedPerIntervalNotPerCall(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // nothing listens there any more
	client, err := authclient.New(authclient.ClientConfig{URL: dead.URL, CacheTTL: time.Second, NegativeCacheTTL: time.Second, CacheSize: 10, Timeout: time.Second}, authclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var logs testsupport.Log
	gw := NewGateway(routing.Fixed(mustRouting(t, "providers: [{name: m, type: mock}]\nmodels: [{name: gpt, targets: [{provider: m, model: mock}]}]\n")), Options{Verifier: client, Logger: logs.Logger()})
	srv := httptest.NewServer(mux(gw))
	defer srv.Close()
	key, _, err := authclient.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	const calls = 50
	start := time.Now()
	codes := make([]int, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := do(t, srv.URL, http.MethodPost, PathChat, key, `{"model":"gpt","messages":[{"role":"user","content":"Hi"}]}`)
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	for i, code := range codes {
		if code != http.StatusServiceUnavailable {
			t.Fatalf("call %d while auth is down: %d, want 503", i, code)
		}
	}
	// Lines of one RepeatedLog are at least an interval apart.
	bound := 1 + int(elapsed/runtime.RepeatInterval)
	if n := logs.Count("auth unavailable: calls answered 503"); n < 1 || n > bound {
		t.Errorf("%d lines for %d calls over %s, want 1 to %d", n, calls, elapsed.Round(time.Millisecond), bound)
	}
	if n := len(logs.Lines()); n > bound {
		t.Errorf("%d lines in all, want at most %d: %v", n, bound, logs.Lines())
	}
}
