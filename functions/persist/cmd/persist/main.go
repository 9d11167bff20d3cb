// Command persist stores telemetry delivered by the broker in ClickHouse.
package main

import (
	"context"
	"os"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/functions/persist"
	"github.com/trustplane/trustplane/functions/runtime"
)

func main() { runtime.Main("persist", run) }

func run(ctx context.Context) error {
	var cfg persist.Config
	if err := runtime.LoadConfig(&cfg); err != nil {
		return err
	}
	logger := runtime.NewLogger("persist", cfg.LogLevel, os.Stderr)
	srv := runtime.NewServer("persist", cfg.Common, logger)

	store, err := clickhouse.Open(ctx, clickhouse.Config{
		Addr: cfg.ClickHouseAddr, Database: cfg.ClickHouseDatabase, User: cfg.ClickHouseUser,
		Password: cfg.ClickHousePassword, Cluster: cfg.ClickHouseCluster,
	})
	if err != nil {
		return err
	}
	srv.OnShutdown(func(context.Context) error { return store.Close() })
	if cfg.MigrateOnStart {
		if err := clickhouse.Migrate(ctx, store.Conn(), store.MigrateOptions()); err != nil {
			return err
		}
	}
	logger.Info("connected to ClickHouse", "server_version", store.ServerVersion())
	srv.AddReadyCheck("clickhouse", store.Ping)

	commit := persist.NewGroupCommit(store, cfg.GroupCommit(), srv.Registry)
	// Registered after the store's hook, so it runs first: pending rows are written before the
	// connection closes.
	srv.OnShutdown(commit.Close)
	h, err := runtime.CloudEventsHandler(ctx, persist.NewHandler(commit, logger, srv.Registry).Receive)
	if err != nil {
		return err
	}
	srv.Handle("POST /", h)
	return srv.Run(ctx)
}
