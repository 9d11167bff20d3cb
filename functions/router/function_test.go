package router

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trustplane/trustplane/functions/runtime"
)

// New builds the whole function from its configuration: the gateway's routes, the routing
// file's reloads beside the server, and the hooks that drain the gateway, flush the recorder and
// close the producer at shutdown.
func TestNewBuildsTheFunction(t *testing.T) {
	t.Setenv("KAFKA_BROKERS", strings.Join(brokers, ","))
	t.Setenv("KAFKA_TOPIC", newTopic(t))
	t.Setenv("AUTH_URL", "http://127.0.0.1:1")
	t.Setenv("GOGC", "100") // Go's own default: New applies it to the test process too
	var cfg Config
	if err := runtime.LoadConfig(&cfg); err != nil {
		t.Fatal(err)
	}
	fn, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for i := len(fn.Shutdown) - 1; i >= 0; i-- {
			if err := fn.Shutdown[i](ctx); err != nil {
				t.Errorf("shutdown hook %d: %v", i, err)
			}
		}
	}()
	for _, pattern := range []string{"POST " + PathChat, "POST " + PathEmbeddings, "GET " + PathModels, "GET " + PathPolicy, "/v1/"} {
		if fn.Routes[pattern] == nil {
			t.Errorf("no route %s", pattern)
		}
	}
	if len(fn.Background) != 2 || len(fn.Shutdown) != 3 || fn.Metrics == nil {
		t.Errorf("%d background tasks, %d shutdown hooks, metrics %v; want the routing and policy reloads, drain, flush and close, and metrics",
			len(fn.Background), len(fn.Shutdown), fn.Metrics)
	}
	mux := http.NewServeMux()
	for pattern, h := range fn.Routes {
		mux.Handle(pattern, h)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, body := do(t, srv.URL, "GET", "/v1/nothing", "", "")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "invalid_request_error") {
		t.Errorf("GET /v1/nothing: %d %s", resp.StatusCode, body)
	}
}
