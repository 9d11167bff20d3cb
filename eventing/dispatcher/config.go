package dispatcher

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/trustplane/trustplane/functions/runtime"
)

// Config is the dispatcher's configuration, read from the environment.
type Config struct {
	runtime.Common

	// KafkaBrokers is a comma-separated host:port list.
	KafkaBrokers string `envconfig:"KAFKA_BROKERS" required:"true"`
	// KafkaTopic is the broker topic events are read from and replies written to; it must exist.
	KafkaTopic string `envconfig:"KAFKA_TOPIC" default:"trustplane-events"`
	// KafkaDLQTopic is where dead-letter sinks of kind KafkaSink write.
	KafkaDLQTopic string `envconfig:"KAFKA_DLQ_TOPIC" default:"trustplane-events-dlq"`
	// Triggers lists the manifest files or directories, comma-separated.
	Triggers string `envconfig:"DISPATCHER_TRIGGERS" default:"eventing/config"`
	// Subscribers maps Trigger subscribers to local URLs: persist=http://127.0.0.1:8082,...
	Subscribers string `envconfig:"DISPATCHER_SUBSCRIBERS"`
	// GroupPrefix prefixes consumer group ids: <prefix>-<namespace>-<name>.
	GroupPrefix string `envconfig:"DISPATCHER_GROUP_PREFIX" default:"trustplane-trigger"`
	// UnorderedInFlight bounds the deliveries in flight per partition for unordered Triggers.
	UnorderedInFlight int `envconfig:"DISPATCHER_UNORDERED_IN_FLIGHT" default:"100"`
}

// Validate checks the configuration.
func (c Config) Validate() error {
	errs := []error{c.Common.Validate()}
	if c.UnorderedInFlight < 1 || c.UnorderedInFlight > 10000 {
		errs = append(errs, errors.New("DISPATCHER_UNORDERED_IN_FLIGHT must be between 1 and 10000"))
	}
	if len(splitList(c.KafkaBrokers)) == 0 {
		errs = append(errs, errors.New("KAFKA_BROKERS must list at least one host:port"))
	}
	if len(splitList(c.Triggers)) == 0 {
		errs = append(errs, errors.New("DISPATCHER_TRIGGERS must name at least one file or directory"))
	}
	if _, err := ParseSubscribers(c.Subscribers); err != nil {
		errs = append(errs, fmt.Errorf("DISPATCHER_SUBSCRIBERS: %w", err))
	}
	return errors.Join(errs...)
}

// settings are what the dispatcher runs with, from c and its resolved subscribers.
func (c Config) settings(subs Subscribers, log *slog.Logger, reg MetricsRegisterer) settings {
	return settings{
		Brokers:           splitList(c.KafkaBrokers),
		Topic:             c.KafkaTopic,
		DeadLetterTopic:   c.KafkaDLQTopic,
		Subscribers:       subs,
		GroupPrefix:       c.GroupPrefix,
		UnorderedInFlight: c.UnorderedInFlight,
		// Half the shutdown budget for an in-flight request; the rest for committing offsets.
		ShutdownGrace: c.ShutdownTimeout / 2,
		Logger:        log,
		Metrics:       reg,
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
