// Command router runs trustplane's OpenAI-compatible LLM gateway.
package main

import (
	"context"
	"os"
	"runtime/debug"

	"github.com/redis/go-redis/v9"

	"github.com/trustplane/trustplane/functions/auth"
	"github.com/trustplane/trustplane/functions/router"
	"github.com/trustplane/trustplane/functions/router/limits"
	"github.com/trustplane/trustplane/functions/router/providers"
	"github.com/trustplane/trustplane/functions/router/routing"
	"github.com/trustplane/trustplane/functions/runtime"
	"github.com/trustplane/trustplane/kafka"
)

func main() {
	// router is on every call's path and its heap is small (about 30 MiB at 1,000 calls/s):
	// collecting once the heap has grown fourfold instead of twofold (GOGC=400) cuts the
	// collector's CPU and the latency it adds to calls, for about 15 MiB more. GOGC in the
	// environment still decides.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	runtime.Main("router", run)
}

func run(ctx context.Context) error {
	var cfg router.Config
	if err := runtime.LoadConfig(&cfg); err != nil {
		return err
	}
	logger := runtime.NewLogger("router", cfg.LogLevel, os.Stderr)
	srv := runtime.NewServer("router", cfg.Common, logger)

	routes, err := routing.Load(cfg.RoutingFile, providers.NewHTTPClient(cfg.UpstreamConns), logger)
	if err != nil {
		return err
	}
	verifier, err := auth.NewClient(cfg.ClientConfig, auth.ClientOptions{Registerer: srv.Registry, Source: "/trustplane/router"})
	if err != nil {
		return err
	}
	producer, err := kafka.NewAsyncProducer(cfg.KafkaBrokers, kafka.WithTopic(cfg.KafkaTopic), kafka.WithRegisterer(srv.Registry))
	if err != nil {
		return err
	}
	srv.OnShutdown(func(context.Context) error { return producer.Close() })
	// Not a ready check: the gateway serves while Kafka is down, buffering its telemetry.
	recorder := router.NewRecorder(producer, cfg.TelemetryBuffer, cfg.TelemetryBatch, logger, srv.Registry)
	srv.OnShutdown(recorder.Close)

	var shared limits.Store
	if cfg.RedisURL != "" {
		redis.SetLogger(limits.NewRedisLog(logger))
		rc, err := limits.NewRedisClient(cfg.RedisURL)
		if err != nil {
			return err
		}
		srv.OnShutdown(func(context.Context) error { return rc.Close() })
		// Not a ready check either: while Redis is down each pod decides limits with its own
		// buckets, rather than every replica going unready at once.
		shared = limits.NewRedisStore(rc)
	}
	limiter := limits.NewLimiter(shared, limits.Options{Timeout: cfg.LimitsTimeout, Logger: logger, Registerer: srv.Registry})

	gw := router.NewGateway(routes, router.Options{
		Verifier: verifier, Limiter: limiter, Recorder: recorder,
		Capture:         router.Capture{Mode: cfg.Capture, MaxBytes: cfg.CaptureMaxBytes},
		MaxRequestBytes: cfg.MaxRequestBytes, Logger: logger, Registerer: srv.Registry,
	})
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = routes.Run(wctx, cfg.ReloadInterval) }()
	for pattern, h := range gw.Routes() {
		srv.Handle(pattern, h)
	}
	// Runs before the recorder closes (hooks run in reverse order): calls answered during the
	// drain are recorded too.
	srv.OnShutdown(gw.Drain)
	return srv.Run(ctx)
}
