// Command dispatcher delivers events from the broker's Kafka topic to the functions as the
// Knative Kafka broker would, reading the same Trigger manifests. It is for running
// trustplane on one machine; in a cluster Knative does this.
//
// Environment:
//
//	KAFKA_BROKERS           host:port list (required)
//	KAFKA_TOPIC             broker topic (default trustplane-events); must exist
//	KAFKA_DLQ_TOPIC         topic of KafkaSink dead-letter sinks (default trustplane-events-dlq)
//	DISPATCHER_TRIGGERS     manifest files or directories, comma-separated (default eventing/config)
//	DISPATCHER_SUBSCRIBERS  name=url list: persist=http://127.0.0.1:8082,guard=http://127.0.0.1:8083
//	DISPATCHER_GROUP_PREFIX consumer group prefix (default trustplane-trigger)
//	DISPATCHER_UNORDERED_IN_FLIGHT  deliveries in flight per partition for unordered Triggers (default 100)
//	PORT, LOG_LEVEL, SHUTDOWN_TIMEOUT  as every function (/healthz, /readyz, /metrics on PORT)
//
// Example, from the repository root:
//
//	KAFKA_BROKERS=127.0.0.1:9092 DISPATCHER_SUBSCRIBERS=persist=http://127.0.0.1:8082 \
//	PORT=8090 go run ./eventing/cmd/dispatcher
package main

import (
	"context"
	"errors"
	"os"
	"strings"

	"github.com/trustplane/trustplane/eventing/dispatcher"
	"github.com/trustplane/trustplane/functions/runtime"
)

type config struct {
	runtime.Common
	KafkaBrokers   string `envconfig:"KAFKA_BROKERS" required:"true"`
	KafkaTopic     string `envconfig:"KAFKA_TOPIC" default:"trustplane-events"`
	KafkaDLQTopic  string `envconfig:"KAFKA_DLQ_TOPIC" default:"trustplane-events-dlq"`
	Triggers       string `envconfig:"DISPATCHER_TRIGGERS" default:"eventing/config"`
	Subscribers    string `envconfig:"DISPATCHER_SUBSCRIBERS"`
	GroupPrefix    string `envconfig:"DISPATCHER_GROUP_PREFIX" default:"trustplane-trigger"`
	InFlight       int    `envconfig:"DISPATCHER_UNORDERED_IN_FLIGHT" default:"100"`
	subscribers    dispatcher.Subscribers
	brokers, paths []string
}

func (c *config) Validate() error {
	errs := []error{c.Common.Validate()}
	if c.InFlight < 1 || c.InFlight > 10000 {
		errs = append(errs, errors.New("DISPATCHER_UNORDERED_IN_FLIGHT must be between 1 and 10000"))
	}
	c.brokers = splitList(c.KafkaBrokers)
	if len(c.brokers) == 0 {
		errs = append(errs, errors.New("KAFKA_BROKERS must list at least one host:port"))
	}
	c.paths = splitList(c.Triggers)
	if len(c.paths) == 0 {
		errs = append(errs, errors.New("DISPATCHER_TRIGGERS must name at least one file or directory"))
	}
	var err error
	if c.subscribers, err = dispatcher.ParseSubscribers(c.Subscribers); err != nil {
		errs = append(errs, errors.New("DISPATCHER_SUBSCRIBERS: "+err.Error()))
	}
	return errors.Join(errs...)
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

func main() {
	runtime.Main("dispatcher", run)
}

func run(ctx context.Context) error {
	var cfg config
	if err := runtime.LoadConfig(&cfg); err != nil {
		return err
	}
	logger := runtime.NewLogger("dispatcher", cfg.LogLevel, os.Stderr)
	manifests, err := dispatcher.LoadManifests(ctx, cfg.paths...)
	if err != nil {
		return err
	}
	srv := runtime.NewServer("dispatcher", cfg.Common, logger)
	d, err := dispatcher.New(dispatcher.Config{
		Brokers:           cfg.brokers,
		Topic:             cfg.KafkaTopic,
		DeadLetterTopic:   cfg.KafkaDLQTopic,
		Subscribers:       cfg.subscribers,
		GroupPrefix:       cfg.GroupPrefix,
		UnorderedInFlight: cfg.InFlight,
		// Half the shutdown budget for an in-flight request; the rest for committing offsets.
		ShutdownGrace: cfg.ShutdownTimeout / 2,
		Logger:        logger,
		Metrics:       srv.Registry,
	}, manifests)
	if err != nil {
		return err
	}
	srv.AddReadyCheck("kafka consumer groups", d.Ready)

	// If the dispatcher fails (Kafka unreachable at start), the server stops too; on SIGTERM
	// the server's shutdown waits for the dispatcher, so offsets are committed before exit.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var runErr error
	done := make(chan struct{})
	go func() {
		runErr = d.Run(ctx)
		cancel()
		close(done)
	}()
	srv.OnShutdown(func(sctx context.Context) error {
		select {
		case <-done:
			return runErr
		case <-sctx.Done():
			return errors.New("dispatcher did not stop within SHUTDOWN_TIMEOUT")
		}
	})
	return srv.Run(ctx)
}
