// Command ingest runs trustplane's public telemetry endpoint.
package main

import (
	"context"
	"os"

	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/functions/ingest"
	"github.com/trustplane/trustplane/functions/runtime"
	"github.com/trustplane/trustplane/kafka"
)

func main() { runtime.Main("ingest", run) }

func run(ctx context.Context) error {
	var cfg ingest.Config
	if err := runtime.LoadConfig(&cfg); err != nil {
		return err
	}
	logger := runtime.NewLogger("ingest", cfg.LogLevel, os.Stderr)
	srv := runtime.NewServer("ingest", cfg.Common, logger)

	verifier, err := authclient.New(cfg.ClientConfig, authclient.Options{Registerer: srv.Registry, Source: "/trustplane/ingest"})
	if err != nil {
		return err
	}
	producer, err := kafka.NewProducer(cfg.ProducerConfig, srv.Registry)
	if err != nil {
		return err
	}
	srv.OnShutdown(func(context.Context) error { return producer.Close() })
	srv.AddReadyCheck("kafka", producer.Ready)

	srv.Handle("/", ingest.NewHandler(verifier, producer, cfg.Limits(), cfg.RetryAfter, logger, srv.Registry))
	return srv.Run(ctx)
}
