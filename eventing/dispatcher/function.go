package dispatcher

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/functions/runtime"
)

// New reads the Trigger manifests and builds the dispatcher: it consumes and delivers in the
// background, is ready once every Trigger's consumer group has joined, and on a stop commits
// the offsets of what was delivered before it returns. Kafka is first contacted when it runs.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*runtime.Function, error) {
	subs, err := ParseSubscribers(cfg.Subscribers)
	if err != nil {
		return nil, err
	}
	manifests, err := LoadManifests(ctx, splitList(cfg.Triggers)...)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	d, err := newDispatcher(cfg.settings(subs, log, reg), manifests)
	if err != nil {
		return nil, err
	}
	return &runtime.Function{
		Ready:      map[string]runtime.ReadyCheck{"kafka consumer groups": d.Ready},
		Background: []func(context.Context) error{d.Run},
		Metrics:    reg,
	}, nil
}
