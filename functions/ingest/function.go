package ingest

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/eventing/pricing"
	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/functions/runtime"
	"github.com/trustplane/trustplane/kafka"
)

// New builds ingest: the price table (PRICES_FILE), the auth client that verifies keys, the Kafka producer that events go
// to, and the endpoint on every path (it answers 404 itself off the root). It is ready while
// Kafka is; on shutdown the producer closes once the server has drained.
func New(_ context.Context, cfg Config, log *slog.Logger) (*runtime.Function, error) {
	// The prices first: a bad file stops the start before any connection is made.
	prices, err := pricing.Load(cfg.PricesFile)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	verifier, err := authclient.New(cfg.ClientConfig, authclient.Options{Registerer: reg, Source: "/trustplane/ingest"})
	if err != nil {
		return nil, err
	}
	producer, err := kafka.NewProducer(cfg.ProducerConfig, reg)
	if err != nil {
		return nil, err
	}
	h := NewHandler(verifier, producer, HandlerOptions{Limits: cfg.Limits, RetryAfter: cfg.RetryAfter, Prices: prices, Logger: log, Registerer: reg})
	return &runtime.Function{
		Routes:   map[string]http.Handler{"/": h},
		Ready:    map[string]runtime.ReadyCheck{"kafka": producer.Ready},
		Shutdown: []func(context.Context) error{func(context.Context) error { return producer.Close() }},
		Metrics:  reg,
	}, nil
}
