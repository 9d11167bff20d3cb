// Command persist stores telemetry delivered by the broker in ClickHouse.
package main

import (
	"context"
	"os"

	"github.com/trustplane/trustplane/functions/persist"
	"github.com/trustplane/trustplane/functions/runtime"
)

func main() { runtime.Main("persist", run) }

func run(ctx context.Context) error {
	var cfg persist.Config
	if err := runtime.LoadConfig(&cfg); err != nil {
		return err
	}
	log := runtime.NewLogger("persist", cfg.LogLevel, os.Stderr)
	fn, err := persist.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return runtime.Serve(ctx, "persist", cfg.Common, log, fn)
}
