package query

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/functions/router/limits"
	"github.com/trustplane/trustplane/functions/runtime"
)

// New builds query: the auth client that verifies keys, the ClickHouse reader (read-only
// user), the per-key rate limiter (its buckets in Redis when REDIS_URL is set), and the API
// under /v1/. It is ready while ClickHouse answers (Redis is no readiness check: while it is
// unreachable each replica limits keys with its own buckets); it checks every minute whether
// guard's findings table exists.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*runtime.Function, error) {
	reg := prometheus.NewRegistry()
	verifier, err := authclient.New(cfg.ClientConfig, authclient.Options{Registerer: reg, Source: "/trustplane/query"})
	if err != nil {
		return nil, err
	}
	store, err := clickhouse.Open(ctx, cfg.clickhouse())
	if err != nil {
		return nil, err
	}
	r := newReader(store.Conn(), cfg.ClickHouseDatabase, store.Features(), cfg.Limits)
	if err := r.refreshFindings(ctx); err != nil {
		store.Close()
		return nil, err
	}
	shutdown := []func(context.Context) error{func(context.Context) error { return store.Close() }}
	var shared limits.Store
	if cfg.RedisURL != "" {
		redis.SetLogger(limits.NewRedisLog(log))
		rc, err := limits.NewRedisClient(cfg.RedisURL)
		if err != nil {
			store.Close()
			return nil, err
		}
		shutdown = append(shutdown, func(context.Context) error { return rc.Close() })
		shared = limits.NewRedisStore(rc)
	}
	limiter := limits.NewLimiter(shared, limits.Options{Timeout: cfg.LimitsTimeout, Logger: log, Registerer: reg, Subsystem: "query"})
	h := NewHandler(verifier, r, HandlerOptions{Limits: cfg.Limits, Limiter: limiter, Logger: log, Registerer: reg})
	return &runtime.Function{
		Routes: map[string]http.Handler{"/": h},
		Ready:  map[string]runtime.ReadyCheck{"clickhouse": store.Ping},
		Background: []func(context.Context) error{func(ctx context.Context) error {
			t := time.NewTicker(time.Minute)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-t.C:
					if err := r.refreshFindings(ctx); err != nil {
						log.Warn("cannot check for the findings table", "error", err)
					}
				}
			}
		}},
		Shutdown: shutdown,
		Metrics:  reg,
	}, nil
}
