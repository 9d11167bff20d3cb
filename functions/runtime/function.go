package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Function is what a function's New builds: its routes, and what the runtime runs around them.
// Every function has the same shape: New(ctx, cfg, log) returns a *Function, and its main hands
// New to Run.
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

// Config is a function's configuration as Run loads it: a struct that embeds Common (which
// gives it the unexported common method) and checks itself with Validate.
type Config interface {
	Validator
	common() Common
}

func (c Common) common() Common { return c }

// Run is a function's whole main: it loads the function's Config from the environment and
// validates it, builds the logger, calls build (the function's New) and serves what it returns
// until SIGTERM or SIGINT, exiting non-zero on failure. A function that must set something up
// before New (a process-wide setting) passes a build that does it and then calls New.
func Run[C any, P interface {
	*C
	Config
}](name string, build func(ctx context.Context, cfg C, log *slog.Logger) (*Function, error)) {
	Main(name, func(ctx context.Context) error { return run[C, P](ctx, name, build) })
}

func run[C any, P interface {
	*C
	Config
}](ctx context.Context, name string, build func(ctx context.Context, cfg C, log *slog.Logger) (*Function, error)) error {
	var cfg C
	if err := LoadConfig(P(&cfg)); err != nil {
		return err
	}
	common := P(&cfg).common()
	log := NewLogger(name, common.LogLevel, os.Stderr)
	fn, err := build(ctx, cfg, log)
	if err != nil {
		return err
	}
	return Serve(ctx, name, common, log, fn)
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
