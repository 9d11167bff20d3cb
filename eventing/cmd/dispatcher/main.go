// Command dispatcher delivers events from the broker's Kafka topic to the functions as the
// Knative Kafka broker would, reading the same Trigger manifests, for running trustplane on
// one machine. Its configuration is in eventing/dispatcher's README.
package main

import (
	"context"
	"os"

	"github.com/trustplane/trustplane/eventing/dispatcher"
	"github.com/trustplane/trustplane/functions/runtime"
)

func main() { runtime.Main("dispatcher", run) }

func run(ctx context.Context) error {
	var cfg dispatcher.Config
	if err := runtime.LoadConfig(&cfg); err != nil {
		return err
	}
	log := runtime.NewLogger("dispatcher", cfg.LogLevel, os.Stderr)
	fn, err := dispatcher.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return runtime.Serve(ctx, "dispatcher", cfg.Common, log, fn)
}
