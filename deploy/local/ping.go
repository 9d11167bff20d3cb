package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/uuid"
	"github.com/robfig/cron/v3"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	"sigs.k8s.io/yaml"
)

// pingSource is a PingSource manifest as the local run follows it: on its schedule, the same
// dev.knative.sources.ping event a PingSource sends, to batch (the only sink of the local
// PingSources).
type pingSource struct {
	name     string
	schedule cron.Schedule
	data     string
}

// loadPingSources reads the PingSources of a manifest file (other documents are skipped).
func loadPingSources(path string) ([]pingSource, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pingsources: %w", err)
	}
	var out []pingSource
	for _, doc := range strings.Split("\n"+string(raw), "\n---\n") {
		var ps sourcesv1.PingSource
		if err := yaml.Unmarshal([]byte(doc), &ps); err != nil {
			return nil, fmt.Errorf("pingsources: %s: %w", path, err)
		}
		if ps.Kind != "PingSource" {
			continue
		}
		spec := ps.Spec.Schedule
		if ps.Spec.Timezone != "" {
			spec = "CRON_TZ=" + ps.Spec.Timezone + " " + spec
		}
		sched, err := cron.ParseStandard(spec)
		if err != nil {
			return nil, fmt.Errorf("pingsources: %s: PingSource %s: schedule %q: %w", path, ps.Name, spec, err)
		}
		out = append(out, pingSource{name: ps.Name, schedule: sched, data: ps.Spec.Data})
	}
	return out, nil
}

// run sends the event at each scheduled time until ctx ends.
func (p pingSource) run(ctx context.Context, target string, log *slog.Logger) {
	client, err := cloudevents.NewClientHTTP(cloudevents.WithTarget(target))
	if err != nil {
		log.Error("pingsource: no client", "pingsource", p.name, "error", err)
		return
	}
	for {
		next := p.schedule.Next(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		e := cloudevents.NewEvent()
		e.SetID(uuid.NewString())
		e.SetSource("/local/pingsources/" + p.name)
		e.SetType("dev.knative.sources.ping")
		e.SetTime(next)
		if err := e.SetData(cloudevents.ApplicationJSON, []byte(p.data)); err != nil {
			log.Error("pingsource: bad data", "pingsource", p.name, "error", err)
			return
		}
		if res := client.Send(ctx, e); !cloudevents.IsACK(res) {
			log.Warn("pingsource: batch did not take the event", "pingsource", p.name, "error", res)
		} else {
			log.Info("pingsource: event sent", "pingsource", p.name, "to", target)
		}
	}
}
