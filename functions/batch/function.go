package batch

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/functions/runtime"
)

// New builds batch: the ClickHouse connection and the retention job, answering the scheduled
// CloudEvents at POST /.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*runtime.Function, error) {
	rules, err := ParseRetention(cfg.Retention)
	if err != nil {
		return nil, err
	}
	store, err := clickhouse.Open(ctx, cfg.clickhouse())
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	ret := NewRetention(store.Conn(), cfg.ClickHouseDatabase, cfg.ClickHouseCluster, rules, cfg.MutationTimeout, log, reg)
	log.Info("retention rules", "projects", len(rules))
	return &runtime.Function{
		Routes:   map[string]http.Handler{"POST /": runtime.CloudEventsHandler(ret.Handler(time.Now))},
		Ready:    map[string]runtime.ReadyCheck{"clickhouse": store.Ping},
		Shutdown: []func(context.Context) error{func(context.Context) error { return store.Close() }},
		Metrics:  reg,
	}, nil
}
