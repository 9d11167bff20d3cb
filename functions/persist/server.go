package persist

import (
	"context"
	"log/slog"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/functions/runtime"
)

// NewServer connects to ClickHouse, applies the migrations when cfg asks for it, and returns
// persist's server, ready to Run: deliveries on POST /, group-committed inserts, and shutdown
// hooks that write the pending rows before the connection closes.
func NewServer(ctx context.Context, cfg Config, logger *slog.Logger) (*runtime.Server, error) {
	srv := runtime.NewServer("persist", cfg.Common, logger)
	store, err := clickhouse.Open(ctx, clickhouse.Config{
		Addr: cfg.ClickHouseAddr, Database: cfg.ClickHouseDatabase, User: cfg.ClickHouseUser,
		Password: cfg.ClickHousePassword, Cluster: cfg.ClickHouseCluster,
	})
	if err != nil {
		return nil, err
	}
	srv.OnShutdown(func(context.Context) error { return store.Close() })
	if cfg.MigrateOnStart {
		if err := clickhouse.Migrate(ctx, store.Conn(), store.MigrateOptions()); err != nil {
			store.Close()
			return nil, err
		}
	}
	logger.Info("connected to ClickHouse", "server_version", store.ServerVersion())
	srv.AddReadyCheck("clickhouse", store.Ping)

	commit := NewGroupCommit(store, cfg.GroupCommit(), logger, srv.Registry)
	// Registered after the store's hook, so it runs first: pending rows are written before the
	// connection closes.
	srv.OnShutdown(commit.Close)
	srv.Handle("POST /", NewHandler(commit, logger, srv.Registry))
	return srv, nil
}
