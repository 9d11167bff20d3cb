// Command router runs trustplane's OpenAI-compatible LLM gateway.
package main

import (
	"context"
	"os"

	"github.com/trustplane/trustplane/functions/router"
	"github.com/trustplane/trustplane/functions/runtime"
)

func main() { runtime.Main("router", run) }

func run(ctx context.Context) error {
	var cfg router.Config
	if err := runtime.LoadConfig(&cfg); err != nil {
		return err
	}
	log := runtime.NewLogger("router", cfg.LogLevel, os.Stderr)
	fn, err := router.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return runtime.Serve(ctx, "router", cfg.Common, log, fn)
}
