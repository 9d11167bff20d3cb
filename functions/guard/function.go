package guard

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/functions/guard/policy"
	"github.com/trustplane/trustplane/functions/runtime"
)

// New builds guard: the detectors and the policy file with its reloads, deliveries on POST /
// answered with finding events, and GET /policy. It depends on nothing at run time, so it has
// no readiness checks beyond serving.
func New(_ context.Context, cfg Config, log *slog.Logger) (*runtime.Function, error) {
	reg := prometheus.NewRegistry()
	checks, err := policy.Open(cfg.Config, "guard", log, reg)
	if err != nil {
		return nil, err
	}
	h := NewHandler(checks, log, reg)
	return &runtime.Function{
		Routes: map[string]http.Handler{
			"POST /":      h,
			"GET /policy": http.HandlerFunc(h.ServePolicy),
		},
		Background: []func(context.Context) error{func(ctx context.Context) error { return checks.Policies.Run(ctx, cfg.ReloadInterval) }},
		Metrics:    reg,
	}, nil
}
