package query

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/functions/runtime"
)

// New builds query: the auth client that verifies keys, the ClickHouse reader (read-only
// user), and the API under /v1/. It is ready while ClickHouse answers; it checks every minute
// whether guard's findings table exists.
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
	h := NewHandler(verifier, r, HandlerOptions{Limits: cfg.Limits, Logger: log, Registerer: reg})
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
		Shutdown: []func(context.Context) error{func(context.Context) error { return store.Close() }},
		Metrics:  reg,
	}, nil
}
