package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Function is what a function's New builds: its routes, and what the runtime runs around them.
// Every function has the same shape: New(ctx, cfg, log) returns a *Function, and its main hands
// that to Serve.
type Function struct {
	// Routes maps net/http ServeMux patterns ("POST /", "/v1/") to handlers. Each route's
	// requests are counted and timed.
	Routes map[string]http.Handler
	// Ready names the dependencies /readyz reports.
	Ready map[string]ReadyCheck
	// Background tasks run beside the server until the context Serve was given ends, and are
	// waited for before Shutdown runs (a consumer commits its offsets there). One that returns
	// an error before that stops the function with that error.
	Background []func(ctx context.Context) error
	// Shutdown hooks run once the server has drained and the background tasks have returned,
	// in reverse order, so a buffer added after its sink is flushed before the sink closes.
	Shutdown []func(context.Context) error
	// Metrics gathers the function's own metrics, served on /metrics beside the runtime's;
	// nil when it has none.
	Metrics prometheus.Gatherer
}

// Serve runs fn until ctx ends: its routes plus /healthz, /readyz and /metrics on cfg's port,
// then a graceful stop (not ready, drain in-flight requests, wait for the background tasks,
// run the shutdown hooks) within cfg.ShutdownTimeout.
func Serve(ctx context.Context, name string, cfg Common, log *slog.Logger, fn *Function) error {
	srv := NewServer(name, cfg, log)
	fn.Mount(srv)
	if len(fn.Background) == 0 {
		return srv.Run(ctx)
	}

	// A background task that fails stops the server; on a stop, the server's drain comes
	// first and the tasks are waited for before the hooks flush what they leave.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, task := range fn.Background {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := task(ctx); err != nil && ctx.Err() == nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				mu.Unlock()
				cancel()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	// Registered last, so it runs first among the hooks.
	srv.OnShutdown(func(sctx context.Context) error {
		select {
		case <-done:
			return nil
		case <-sctx.Done():
			return errors.New("background tasks did not stop within SHUTDOWN_TIMEOUT")
		}
	})
	err := srv.Run(ctx)
	mu.Lock()
	defer mu.Unlock()
	return errors.Join(append(errs, err)...)
}

// Mount adds fn's routes, ready checks, metrics and shutdown hooks to srv, for Serve and for a
// test that serves fn on a listener of its own or polls readiness faster. It does not run the
// background tasks.
func (fn *Function) Mount(srv *Server) {
	if fn.Metrics != nil {
		srv.gatherers = append(srv.gatherers, fn.Metrics)
	}
	for pattern, h := range fn.Routes {
		srv.Handle(pattern, h)
	}
	for check, ready := range fn.Ready {
		srv.AddReadyCheck(check, ready)
	}
	for _, hook := range fn.Shutdown {
		srv.OnShutdown(hook)
	}
}
