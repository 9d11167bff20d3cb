package persist

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/functions/runtime"
)

// New connects to ClickHouse, applies the migrations when cfg asks for it, and builds persist:
// deliveries on POST /, group-committed inserts, ready while ClickHouse answers, and shutdown
// hooks that write the pending rows before the connection closes.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*runtime.Function, error) {
	store, err := clickhouse.Open(ctx, clickhouse.Config{
		Addr: cfg.ClickHouseAddr, Database: cfg.ClickHouseDatabase, User: cfg.ClickHouseUser,
		Password: cfg.ClickHousePassword, Cluster: cfg.ClickHouseCluster,
	})
	if err != nil {
		return nil, err
	}
	if cfg.MigrateOnStart {
		if err := clickhouse.Migrate(ctx, store.Conn(), store.MigrateOptions()); err != nil {
			store.Close()
			return nil, err
		}
	}
	log.Info("connected to ClickHouse", "server_version", store.ServerVersion())

	reg := prometheus.NewRegistry()
	commit := NewGroupCommit(store, cfg.GroupCommit(), log, reg)
	return &runtime.Function{
		Routes: map[string]http.Handler{"POST /": NewHandler(commit, log, reg)},
		Ready:  map[string]runtime.ReadyCheck{"clickhouse": store.Ping},
		// Hooks run in reverse order: pending rows are written before the connection closes.
		Shutdown: []func(context.Context) error{func(context.Context) error { return store.Close() }, commit.Close},
		Metrics:  reg,
	}, nil
}
