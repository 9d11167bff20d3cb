package auth

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/functions/runtime"
)

// New builds the auth function: the key store over cfg's key file, polled for changes every
// AUTH_RELOAD_INTERVAL, answering verify requests on POST /. It is ready once a key file is
// loaded, which New requires: a missing or bad file stops the function from starting.
func New(_ context.Context, cfg Config, log *slog.Logger) (*runtime.Function, error) {
	pepper, err := cfg.LoadPepper()
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	store, err := OpenStore(cfg.KeysFile, pepper, log, NewStoreMetrics(reg))
	if err != nil {
		return nil, err
	}
	return &runtime.Function{
		Routes:     map[string]http.Handler{"POST /": runtime.CloudEventsHandler(NewHandler(store, log))},
		Ready:      map[string]runtime.ReadyCheck{"keys": store.Ready},
		Background: []func(context.Context) error{func(ctx context.Context) error { return store.Watch(ctx, cfg.ReloadInterval) }},
		Metrics:    reg,
	}, nil
}
