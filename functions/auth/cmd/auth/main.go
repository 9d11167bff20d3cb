// Command auth is the trustplane auth function: it answers CloudEvents verify requests for API
// keys from the key file named by AUTH_KEYS_FILE, reloading the file when it changes.
package main

import (
	"context"
	"os"

	"github.com/trustplane/trustplane/functions/auth"
	"github.com/trustplane/trustplane/functions/runtime"
)

func main() { runtime.Main("auth", run) }

func run(ctx context.Context) error {
	var cfg auth.Config
	if err := runtime.LoadConfig(&cfg); err != nil {
		return err
	}
	log := runtime.NewLogger("auth", cfg.LogLevel, os.Stderr)
	fn, err := auth.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return runtime.Serve(ctx, "auth", cfg.Common, log, fn)
}
