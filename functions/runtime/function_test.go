package runtime

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/internal/testsupport"
)

// waitServing polls url until it answers; Serve opens its listener itself. Listening takes
// microseconds; the 30 s bound is only reached by a machine stalled that long.
func waitServing(t *testing.T, url string, done <-chan error) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		select {
		case err := <-done:
			t.Fatalf("Serve returned before serving: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("%s never answered", url)
}

// Serve wires a Function's routes, checks, metrics and hooks, and on a stop waits for the
// background tasks before the hooks run.
func TestServeRunsAFunction(t *testing.T) {
	port := testsupport.Port(t)
	reg := prometheus.NewRegistry()
	calls := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_calls_total", Help: "calls"})
	reg.MustRegister(calls)

	var mu sync.Mutex
	var order []string
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	fn := &Function{
		Routes: map[string]http.Handler{"GET /hello": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			calls.Inc()
			w.WriteHeader(http.StatusTeapot)
		})},
		Ready: map[string]ReadyCheck{"dependency": func(context.Context) error { return nil }},
		Background: []func(context.Context) error{func(ctx context.Context) error {
			<-ctx.Done()
			note("background stopped")
			return nil
		}},
		Shutdown: []func(context.Context) error{
			func(context.Context) error { note("close sink"); return nil },
			func(context.Context) error { note("flush buffer"); return nil },
		},
		Metrics: reg,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, "test", Common{Port: port, ShutdownTimeout: 5 * time.Second}, slog.New(slog.DiscardHandler), fn)
	}()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	waitServing(t, base+"/healthz", done)

	if code, _ := get(t, base+"/hello"); code != http.StatusTeapot {
		t.Errorf("route answered %d", code)
	}
	// The checks run in the background, so /readyz may not have a result yet ("not checked
	// yet"); the first check takes microseconds, and 30 s is only reached by a stalled machine.
	code, body := get(t, base+"/readyz")
	for deadline := time.Now().Add(30 * time.Second); code != http.StatusOK && time.Now().Before(deadline); code, body = get(t, base+"/readyz") {
		time.Sleep(time.Millisecond)
	}
	if code != http.StatusOK {
		t.Errorf("readyz %d %q", code, body)
	}
	_, metrics := get(t, base+"/metrics")
	for _, want := range []string{"test_calls_total 1", `trustplane_http_requests_total{code="418",function="test",route="GET /hello"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, ","); got != "background stopped,flush buffer,close sink" {
		t.Errorf("stop ran as %s", got)
	}
}

// A background task that fails stops the function with its error, and the hooks still run.
func TestServeStopsWhenABackgroundTaskFails(t *testing.T) {
	flushed := make(chan struct{})
	fn := &Function{
		Background: []func(context.Context) error{func(context.Context) error { return errors.New("consumer group lost") }},
		Shutdown:   []func(context.Context) error{func(context.Context) error { close(flushed); return nil }},
	}
	err := Serve(context.Background(), "test", Common{Port: testsupport.Port(t), ShutdownTimeout: 5 * time.Second}, slog.New(slog.DiscardHandler), fn)
	if err == nil || !strings.Contains(err.Error(), "consumer group lost") {
		t.Fatalf("Serve returned %v, want the task's error", err)
	}
	select {
	case <-flushed:
	default:
		t.Error("shutdown hooks did not run after the task failed")
	}
}

type runConfig struct {
	Common
	Greeting string `envconfig:"TEST_GREETING" required:"true"`
}

func (c runConfig) Validate() error {
	if c.Greeting == "bye" {
		return errors.New("TEST_GREETING must not be bye")
	}
	return c.Common.Validate()
}

// run, the body of Run, loads and validates the Config before build sees it, and serves what
// build returns until the context ends.
func TestRunLoadsConfigThenBuildsAndServes(t *testing.T) {
	built := 0
	build := func(_ context.Context, cfg runConfig, log *slog.Logger) (*Function, error) {
		built++
		if cfg.Greeting != "hello" || log == nil {
			t.Errorf("build got greeting %q, logger %v", cfg.Greeting, log)
		}
		return &Function{Shutdown: []func(context.Context) error{func(context.Context) error { built++; return nil }}}, nil
	}

	t.Setenv("TEST_GREETING", "bye")
	if err := run(context.Background(), "test", build); err == nil || !strings.Contains(err.Error(), "must not be bye") {
		t.Fatalf("run with an invalid config returned %v", err)
	}
	if built != 0 {
		t.Fatal("build ran on an invalid config")
	}

	t.Setenv("TEST_GREETING", "hello")
	t.Setenv("PORT", strconv.Itoa(testsupport.Port(t)))
	t.Setenv("LISTEN_HOST", "127.0.0.1")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := run(ctx, "test", build); err != nil {
		t.Fatal(err)
	}
	if built != 2 {
		t.Errorf("build and its shutdown hook ran %d times together, want 2", built)
	}
}
