package router

import (
	"context"
	"log/slog"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/functions/guard/policy"
	"github.com/trustplane/trustplane/functions/router/limits"
	"github.com/trustplane/trustplane/functions/router/providers"
	"github.com/trustplane/trustplane/functions/router/routing"
	"github.com/trustplane/trustplane/functions/runtime"
	"github.com/trustplane/trustplane/kafka"
)

// New builds router from a validated cfg: the routing file and its reloads, the auth client,
// the limiter (its buckets in Redis when REDIS_URL is set), the Kafka producer with the recorder
// of llm-call events, and the gateway serving them. Neither Kafka nor Redis is a readiness check:
// while Kafka is down the recorder buffers, and while Redis is down each pod decides limits with
// its own buckets, rather than every replica going unready at once. Nothing is dialled here, so
// ctx is not needed yet.
func New(_ context.Context, cfg Config, log *slog.Logger) (*runtime.Function, error) {
	if percent, err := gcPercent(cfg.GOGC); err == nil { // Validate has checked it
		debug.SetGCPercent(percent)
	}
	reg := prometheus.NewRegistry()
	fn := &runtime.Function{Metrics: reg}

	routes, err := routing.Load(cfg.RoutingFile, providers.NewHTTPClient(cfg.UpstreamConns), log)
	if err != nil {
		return nil, err
	}
	fn.Background = append(fn.Background, func(ctx context.Context) error { return routes.Run(ctx, cfg.ReloadInterval) })
	verifier, err := authclient.New(cfg.ClientConfig, authclient.Options{Registerer: reg, Source: EventSource})
	if err != nil {
		return nil, err
	}
	var shared limits.Store
	if cfg.RedisURL != "" {
		redis.SetLogger(limits.NewRedisLog(log))
		rc, err := limits.NewRedisClient(cfg.RedisURL)
		if err != nil {
			return nil, err
		}
		fn.Shutdown = append(fn.Shutdown, func(context.Context) error { return rc.Close() })
		shared = limits.NewRedisStore(rc)
	}
	limiter := limits.NewLimiter(shared, limits.Options{Timeout: cfg.LimitsTimeout, Logger: log, Registerer: reg})

	producer, err := kafka.NewProducer(cfg.ProducerConfig, reg)
	if err != nil {
		for _, hook := range fn.Shutdown {
			_ = hook(context.Background())
		}
		return nil, err
	}
	// Shutdown hooks run in reverse: the gateway's drain, then the recorder's flush, then the
	// producer.
	fn.Shutdown = append(fn.Shutdown, func(context.Context) error { return producer.Close() })
	recorder := NewRecorder(producer, cfg.TelemetryBuffer, cfg.TelemetryBatch, log, reg)
	fn.Shutdown = append(fn.Shutdown, recorder.Close)

	var guard *Guard
	if cfg.Guard {
		checks, err := policy.Open(cfg.Config, "router", log, reg)
		if err != nil {
			return nil, err
		}
		fn.Background = append(fn.Background, func(ctx context.Context) error { return checks.Policies.Run(ctx, cfg.Config.ReloadInterval) })
		guard = NewGuard(checks, reg)
	}
	gw := NewGateway(routes, Options{
		Verifier: verifier, Limiter: limiter, Recorder: recorder, Guard: guard,
		Capture:         Capture{Mode: cfg.Capture, MaxBytes: cfg.CaptureMaxBytes},
		MaxRequestBytes: cfg.MaxRequestBytes, Logger: log, Registerer: reg,
	})
	fn.Routes = gw.Routes()
	// Calls answered during the drain are recorded too.
	fn.Shutdown = append(fn.Shutdown, gw.Drain)
	return fn, nil
}
