// Package dispatcher delivers events from the broker's Kafka topic to subscribers as the
// Knative Kafka broker does, driven by the same Trigger manifests, for running trustplane on
// one machine without Knative.
//
// Semantics mirrored from knative-extensions/eventing-kafka-broker (data-plane dispatcher):
//   - each Trigger is a Kafka consumer group (<prefix>-<namespace>-<name>); an offset is
//     committed only after its event, and every earlier one of the partition, was delivered,
//     filtered out, or written to the dead-letter sink (at-least-once, nothing skipped);
//   - the annotation kafka.eventing.knative.dev/delivery.order: ordered delivers a partition
//     one event at a time, in order; without it (or "unordered") up to UnorderedInFlight events of a
//     partition are in flight at once, as the Kafka broker's default;
//   - an event is POSTed in CloudEvents binary mode with "Prefer: reply"; 2xx is success;
//     5xx, 404, 408, 409, 429 and transport errors (including the per-request timeout) are
//     retried delivery.retry times with the backoff policy (linear delay*n, exponential
//     delay*2^n for retry n); other statuses go to the dead-letter sink at once;
//   - a dead-lettered event carries knativeerrordest, knativeerrorcode, knativeerrordata
//     (base64 of at most 1024 bytes of the response body) and, for every "kne-X" response
//     header, an extension X;
//   - a CloudEvent in a successful response is a reply and is produced back to the broker
//     topic.
//
// Where it differs, deliberately: a Retry-After header on a retryable response lengthens the
// wait (bounded by delivery.retryAfterMax, or one minute); when the dead-letter sink cannot be
// written the offset is not committed and the write is retried until it succeeds or the
// dispatcher stops (the Kafka broker would commit and lose the event); a record that is not a
// CloudEvent is copied as is to the dead-letter topic instead of being discarded. Without a
// dead-letter sink a failed event is dropped with an error log, as in Knative; the trustplane
// Triggers always name one.
package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/trustplane/trustplane/kafka"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
)

// Config is what a Dispatcher needs besides the manifests.
type Config struct {
	// Brokers are the Kafka bootstrap addresses.
	Brokers []string
	// Topic is the broker topic events are read from and replies written to.
	Topic string
	// DeadLetterTopic is where a dead-letter sink of kind KafkaSink writes.
	DeadLetterTopic string
	// Subscribers resolves Trigger subscribers (and non-Kafka dead-letter sinks) to URLs.
	Subscribers Subscribers
	// GroupPrefix prefixes consumer group ids: <prefix>-<namespace>-<name>.
	GroupPrefix string
	// UnorderedInFlight bounds the deliveries of one partition running at once for Triggers
	// with unordered delivery (the Kafka broker's max.poll.records plays this part); 0 means
	// DefaultUnorderedInFlight.
	UnorderedInFlight int
	// ShutdownGrace is how long an in-flight request may still run after Run's context is
	// cancelled; after it the request is abandoned and its event redelivered on restart.
	ShutdownGrace time.Duration
	// Logger receives structured logs; event ids and types are logged, never event data.
	Logger *slog.Logger
	// Metrics, if set, is where the dispatcher's metrics are registered.
	Metrics MetricsRegisterer
	// HTTPClient sends deliveries and writes to HTTP dead-letter sinks; nil means a net/http
	// client with keep-alive and no overall timeout (each request has the delivery timeout).
	HTTPClient *http.Client
	// Sarama, if set, is the base Kafka client config (copied and adjusted per use); nil means
	// kafka.NewConfig.
	Sarama *sarama.Config
}

// deliveryOrderAnnotation chooses ordered or unordered delivery for a Trigger, as in the
// Kafka broker.
const deliveryOrderAnnotation = "kafka.eventing.knative.dev/delivery.order"

// Defaults for Config.
const (
	DefaultTopic           = kafka.DefaultTopic
	DefaultDeadLetterTopic = kafka.DefaultDeadLetterTopic
	DefaultGroupPrefix     = "trustplane-trigger"
)

// Dispatcher runs every Trigger of a set of manifests.
type Dispatcher struct {
	cfg      Config
	log      *slog.Logger
	metrics  *metrics
	triggers []*trigger
	client   *http.Client
}

// New checks the manifests and configuration without touching Kafka: every Trigger must have
// a resolvable subscriber and dead-letter sink, valid filters and a valid delivery spec.
func New(cfg Config, m *Manifests) (*Dispatcher, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("dispatcher: no Kafka brokers configured")
	}
	if cfg.Topic == "" {
		cfg.Topic = DefaultTopic
	}
	if cfg.DeadLetterTopic == "" {
		cfg.DeadLetterTopic = DefaultDeadLetterTopic
	}
	if cfg.UnorderedInFlight == 0 {
		cfg.UnorderedInFlight = DefaultUnorderedInFlight
	}
	if cfg.UnorderedInFlight < 0 {
		return nil, fmt.Errorf("unordered in-flight bound must be positive, got %d", cfg.UnorderedInFlight)
	}
	if cfg.GroupPrefix == "" {
		cfg.GroupPrefix = DefaultGroupPrefix
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Sarama == nil {
		cfg.Sarama = kafka.NewConfig("trustplane-dispatcher")
	}
	client := cfg.HTTPClient
	if client == nil {
		client = newHTTPClient()
	}
	met, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("dispatcher: metrics: %w", err)
	}
	d := &Dispatcher{cfg: cfg, log: cfg.Logger, metrics: met, client: client}
	if len(m.Triggers) == 0 {
		return nil, errors.New("dispatcher: the manifests define no Trigger")
	}
	for _, t := range m.Triggers {
		tr, err := d.newTrigger(t, m.Brokers)
		if err != nil {
			return nil, fmt.Errorf("dispatcher: Trigger %s/%s: %w", t.Namespace, t.Name, err)
		}
		d.triggers = append(d.triggers, tr)
	}
	return d, nil
}

func (d *Dispatcher) newTrigger(t *eventingv1.Trigger, brokers []*eventingv1.Broker) (*trigger, error) {
	f, err := NewFilter(t.Spec)
	if err != nil {
		return nil, err
	}
	target, err := d.cfg.Subscribers.Resolve(t.Namespace, t.Spec.Subscriber)
	if err != nil {
		return nil, fmt.Errorf("subscriber: %w", err)
	}
	del, err := newDelivery(deliverySpecFor(t, brokers))
	if err != nil {
		return nil, fmt.Errorf("delivery: %w", err)
	}
	tr := &trigger{
		d:        d,
		name:     t.Namespace + "/" + t.Name,
		group:    fmt.Sprintf("%s-%s-%s", d.cfg.GroupPrefix, t.Namespace, t.Name),
		filter:   f,
		target:   target,
		delivery: del,
	}
	if dl := del.deadLetter; dl != nil {
		if dl.Ref != nil && dl.Ref.Kind == "KafkaSink" {
			tr.deadLetter = kafkaDeadLetter{topic: d.cfg.DeadLetterTopic}
			tr.deadLetterName = "kafka topic " + d.cfg.DeadLetterTopic
		} else {
			u, err := d.cfg.Subscribers.Resolve(t.Namespace, *dl)
			if err != nil {
				return nil, fmt.Errorf("deadLetterSink: %w", err)
			}
			tr.deadLetter = httpDeadLetter{url: u}
			tr.deadLetterName = u.String()
		}
	}
	// As in the Kafka broker, delivery is unordered unless the Trigger asks for ordered.
	switch order := t.Annotations[deliveryOrderAnnotation]; order {
	case "", "unordered":
		tr.unordered = true
	case "ordered":
	default:
		return nil, fmt.Errorf("annotation %s must be ordered or unordered, got %q", deliveryOrderAnnotation, order)
	}
	tr.stats = d.metrics.forTrigger(tr.name)
	tr.logs = newOutageLogs(d.log)
	return tr, nil
}

// Triggers returns the names (namespace/name) of the Triggers the dispatcher runs.
func (d *Dispatcher) Triggers() []string {
	names := make([]string, len(d.triggers))
	for i, t := range d.triggers {
		names[i] = t.name
	}
	return names
}

// Target returns the resolved subscriber URL of a Trigger (namespace/name).
func (d *Dispatcher) Target(trigger string) (*url.URL, bool) {
	for _, t := range d.triggers {
		if t.name == trigger {
			return t.target, true
		}
	}
	return nil, false
}

// Ready reports whether every Trigger's consumer group has joined and been given partitions.
func (d *Dispatcher) Ready(context.Context) error {
	for _, t := range d.triggers {
		if !t.joined() {
			return fmt.Errorf("trigger %s: consumer group %s has not joined yet", t.name, t.group)
		}
	}
	return nil
}

// Run consumes and delivers until ctx is cancelled, then stops taking new events, lets an
// in-flight request finish (up to ShutdownGrace), commits the offsets of what was done and
// closes its Kafka clients.
func (d *Dispatcher) Run(ctx context.Context) error {
	pcfg := d.producerConfig()
	producer, err := sarama.NewSyncProducer(d.cfg.Brokers, pcfg)
	if err != nil {
		return fmt.Errorf("dispatcher: kafka producer: %w", err)
	}
	defer func() {
		if err := producer.Close(); err != nil {
			d.log.Warn("closing kafka producer", "error", err)
		}
	}()

	// Requests in flight are cut off only ShutdownGrace after ctx ends.
	requests, cutOff := context.WithCancel(context.WithoutCancel(ctx))
	defer cutOff()
	stopGrace := context.AfterFunc(ctx, func() {
		time.AfterFunc(d.cfg.ShutdownGrace, cutOff)
	})
	defer stopGrace()

	groups := make([]sarama.ConsumerGroup, 0, len(d.triggers))
	var closeOnce sync.Once
	closeGroups := func() {
		// Closing a group ends its session (committing the marked offsets) and leaves it.
		closeOnce.Do(func() {
			for _, g := range groups {
				if err := g.Close(); err != nil {
					d.log.Warn("closing consumer group", "error", err)
				}
			}
		})
	}
	defer closeGroups()
	ccfg := d.consumerConfig()
	for _, t := range d.triggers {
		g, err := sarama.NewConsumerGroup(d.cfg.Brokers, t.group, ccfg)
		if err != nil {
			return fmt.Errorf("dispatcher: consumer group %s: %w", t.group, err)
		}
		groups = append(groups, g)
	}

	d.log.Info("dispatching", "topic", d.cfg.Topic, "triggers", d.Triggers())
	var wg sync.WaitGroup
	for i, t := range d.triggers {
		t.producer = producer
		t.requests = requests
		g := groups[i]
		wg.Add(2)
		go func() {
			defer wg.Done()
			for err := range g.Errors() {
				t.logs.consumer.Log("trigger", t.name, "error", err)
			}
		}()
		go func() {
			defer wg.Done()
			t.consume(ctx, g)
		}()
	}
	<-ctx.Done()
	closeGroups()
	wg.Wait()
	d.client.CloseIdleConnections()
	d.log.Info("dispatcher stopped")
	return nil
}

func (d *Dispatcher) consumerConfig() *sarama.Config {
	c := *d.cfg.Sarama
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	// Offsets are marked strictly in order and only once their record is done, so committing
	// the marks periodically (and on close) never commits past unfinished work.
	c.Consumer.Offsets.AutoCommit.Enable = true
	c.Consumer.Offsets.AutoCommit.Interval = time.Second
	c.Consumer.Return.Errors = true
	// What sarama holds per partition: records fetched and not yet taken (256 by default), and
	// a fetch of up to 1 MiB. A record keeps its whole fetched batch in memory, so with a
	// dozen partitions the defaults hold far more than the deliveries in flight need: a
	// delivery takes longer than fetching the next records, so smaller buffers cost no
	// throughput.
	c.ChannelBufferSize = consumerBufferedRecords
	c.Consumer.Fetch.Default = consumerFetchBytes
	return &c
}

// Per-partition consumer buffering (see consumerConfig).
const (
	consumerBufferedRecords = 32
	consumerFetchBytes      = 256 << 10
)

func (d *Dispatcher) producerConfig() *sarama.Config {
	c := *d.cfg.Sarama
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Idempotent = true
	c.Net.MaxOpenRequests = 1
	c.Producer.Retry.Max = 10
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Producer.Partitioner = sarama.NewHashPartitioner
	return &c
}
