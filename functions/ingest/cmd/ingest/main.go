// Command ingest runs trustplane's public telemetry endpoint.
package main

import (
	"context"
	"os"

	"github.com/trustplane/trustplane/functions/ingest"
	"github.com/trustplane/trustplane/functions/runtime"
)

func main() { runtime.Main("ingest", run) }

func run(ctx context.Context) error {
	var cfg ingest.Config
	if err := runtime.LoadConfig(&cfg); err != nil {
		return err
	}
	log := runtime.NewLogger("ingest", cfg.LogLevel, os.Stderr)
	fn, err := ingest.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return runtime.Serve(ctx, "ingest", cfg.Common, log, fn)
}
