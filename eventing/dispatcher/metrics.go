package dispatcher

import (
	"github.com/prometheus/client_golang/prometheus"
)

// MetricsRegisterer is where metrics are registered (a *prometheus.Registry satisfies it).
type MetricsRegisterer = prometheus.Registerer

type metrics struct {
	delivered, retries, deadLettered, filtered, replies, dropped, invalid *prometheus.CounterVec
	latency                                                               *prometheus.HistogramVec
}

type triggerMetrics struct {
	delivered, retries, deadLettered, filtered, replies, dropped, invalid prometheus.Counter
	latency                                                               prometheus.ObserverVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "trustplane", Subsystem: "dispatcher", Name: name, Help: help,
		}, []string{"trigger"})
	}
	m := &metrics{
		delivered:    counter("events_delivered_total", "Events the subscriber acknowledged with 2xx."),
		retries:      counter("delivery_retries_total", "Delivery attempts repeated after a retryable failure."),
		deadLettered: counter("events_dead_lettered_total", "Events written to the dead-letter sink after failing."),
		filtered:     counter("events_filtered_total", "Events skipped because the Trigger's filter did not match."),
		replies:      counter("replies_total", "Reply events produced back to the broker topic."),
		dropped:      counter("events_dropped_total", "Failed events dropped because the Trigger has no dead-letter sink."),
		invalid:      counter("records_invalid_total", "Records that were not CloudEvents, copied to the dead-letter topic."),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "trustplane", Subsystem: "dispatcher", Name: "delivery_duration_seconds",
			Help:    "Time from the first delivery attempt to the final outcome, retries included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"trigger", "outcome"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.delivered, m.retries, m.deadLettered, m.filtered, m.replies, m.dropped, m.invalid, m.latency} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) forTrigger(name string) triggerMetrics {
	return triggerMetrics{
		delivered:    m.delivered.WithLabelValues(name),
		retries:      m.retries.WithLabelValues(name),
		deadLettered: m.deadLettered.WithLabelValues(name),
		filtered:     m.filtered.WithLabelValues(name),
		replies:      m.replies.WithLabelValues(name),
		dropped:      m.dropped.WithLabelValues(name),
		invalid:      m.invalid.WithLabelValues(name),
		latency:      m.latency.MustCurryWith(prometheus.Labels{"trigger": name}),
	}
}
