// Command auth is the trustplane auth function: it answers CloudEvents verify requests for API
// keys from the key file named by AUTH_KEYS_FILE, reloading the file when it changes.
package main

import (
	"context"
	"os"

	"github.com/trustplane/trustplane/functions/auth"
	"github.com/trustplane/trustplane/functions/runtime"
)

func main() {
	runtime.Main("auth", func(ctx context.Context) error {
		var cfg auth.Config
		if err := runtime.LoadConfig(&cfg); err != nil {
			return err
		}
		pepper, err := cfg.LoadPepper()
		if err != nil {
			return err
		}
		logger := runtime.NewLogger("auth", cfg.LogLevel, os.Stderr)
		srv := runtime.NewServer("auth", cfg.Common, logger)
		store, err := auth.OpenStore(cfg.KeysFile, pepper, logger, auth.NewStoreMetrics(srv.Registry))
		if err != nil {
			return err
		}
		srv.AddReadyCheck("keys", store.Ready)
		go store.Watch(ctx, cfg.ReloadInterval)
		srv.Handle("POST /", runtime.CloudEventsHandler(auth.NewHandler(store, logger)))
		return srv.Run(ctx)
	})
}
