package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"
)

// Producer writes events to Kafka. Send returns one error per event, in the
// order given: nil means Kafka acknowledged that event (it is durable); any
// other value means it may not have been written and the caller must not
// report it as accepted.
type Producer interface {
	Send(ctx context.Context, events []cloudevents.Event) []error
	Close() error
}

// Errors Send reports for events Kafka did not acknowledge.
var (
	ErrClosed     = errors.New("kafka: producer is closed")
	ErrAckTimeout = errors.New("kafka: no acknowledgement in time")
)

// DefaultAckTimeout bounds how long Send waits for Kafka to acknowledge an
// event when the caller's context has no earlier deadline.
const DefaultAckTimeout = 10 * time.Second

// Option changes how NewAsyncProducer builds a producer.
type Option func(*options)

type options struct {
	topic      string
	config     *sarama.Config
	ackTimeout time.Duration
	registerer prometheus.Registerer
}

// WithTopic sets the topic events are written to (default DefaultTopic).
func WithTopic(topic string) Option { return func(o *options) { o.topic = topic } }

// WithConfig replaces the sarama configuration (default NewConfig("trustplane")).
// Successes and errors must be returned; NewAsyncProducer turns both on.
func WithConfig(cfg *sarama.Config) Option { return func(o *options) { o.config = cfg } }

// WithAckTimeout sets how long Send waits for acknowledgements (default
// DefaultAckTimeout).
func WithAckTimeout(d time.Duration) Option { return func(o *options) { o.ackTimeout = d } }

// WithRegisterer registers the producer's metrics with r.
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.registerer = r } }

// AsyncProducer is the Producer built on sarama's AsyncProducer. Messages of
// all concurrent Send calls share sarama's batches; each call waits only for
// the acknowledgements of its own events.
type AsyncProducer struct {
	topic      string
	ackTimeout time.Duration
	client     sarama.Client
	sp         sarama.AsyncProducer
	metrics    *producerMetrics

	// mu guards sending on sp.Input against Close: sarama closes that
	// channel when it shuts down, and a send on it then would panic.
	mu      sync.RWMutex
	closed  bool
	closing chan struct{}

	drained   sync.WaitGroup // the goroutines reading successes and errors
	closeOnce sync.Once
	closeErr  error

	readySem chan struct{} // at most one readiness probe in flight
}

var _ Producer = (*AsyncProducer)(nil)

// ticket travels in ProducerMessage.Metadata and brings the outcome back to
// the Send call waiting for it.
type ticket struct {
	index int
	start time.Time
	done  chan<- outcome // buffered for every message of the call: never blocks
}

type outcome struct {
	index int
	err   error
}

// NewAsyncProducer connects to the brokers and starts the producer.
func NewAsyncProducer(brokers []string, opts ...Option) (*AsyncProducer, error) {
	o := options{topic: DefaultTopic, ackTimeout: DefaultAckTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if len(brokers) == 0 {
		return nil, errors.New("kafka: no broker addresses")
	}
	if err := (Topic{Name: o.topic, Partitions: 1, ReplicationFactor: 1}).Validate(); err != nil {
		return nil, err
	}
	if o.ackTimeout <= 0 {
		return nil, fmt.Errorf("kafka: ack timeout must be positive, got %s", o.ackTimeout)
	}
	if o.config == nil {
		o.config = NewConfig("trustplane")
	}
	o.config.Producer.Return.Successes = true
	o.config.Producer.Return.Errors = true

	metrics, err := newProducerMetrics(o.registerer)
	if err != nil {
		return nil, err
	}
	client, err := sarama.NewClient(brokers, o.config)
	if err != nil {
		return nil, fmt.Errorf("kafka: connect to %v: %w", brokers, err)
	}
	sp, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("kafka: start producer: %w", err)
	}
	p := &AsyncProducer{
		topic:      o.topic,
		ackTimeout: o.ackTimeout,
		client:     client,
		sp:         sp,
		metrics:    metrics,
		closing:    make(chan struct{}),
		readySem:   make(chan struct{}, 1),
	}
	p.drained.Add(2)
	go p.readSuccesses()
	go p.readErrors()
	return p, nil
}

func (p *AsyncProducer) readSuccesses() {
	defer p.drained.Done()
	for m := range p.sp.Successes() {
		t := m.Metadata.(*ticket)
		p.metrics.produced.Inc()
		p.metrics.ackSeconds.Observe(time.Since(t.start).Seconds())
		t.done <- outcome{index: t.index}
	}
}

func (p *AsyncProducer) readErrors() {
	defer p.drained.Done()
	for pe := range p.sp.Errors() {
		t := pe.Msg.Metadata.(*ticket)
		p.metrics.failed.WithLabelValues("kafka").Inc()
		t.done <- outcome{index: t.index, err: fmt.Errorf("kafka: produce to %s: %w", p.topic, pe.Err)}
	}
}

// Send writes the events and waits until Kafka acknowledged or refused each
// of them, the context ends, or the ack timeout passes. Events without an
// outcome by then get ErrAckTimeout or the context's error: they may still be
// written later, so a caller that retries can produce duplicates (rows are
// keyed by the payload's id, so a duplicate replaces its own row), but never
// loses an event it was told was stored.
func (p *AsyncProducer) Send(ctx context.Context, events []cloudevents.Event) []error {
	errs := make([]error, len(events))
	if len(events) == 0 {
		return errs
	}
	timer := time.NewTimer(p.ackTimeout)
	defer timer.Stop()

	done := make(chan outcome, len(events))
	waiting := make([]bool, len(events))
	pending := p.enqueue(ctx, timer.C, events, errs, waiting, done)

	for pending > 0 {
		select {
		case r := <-done:
			waiting[r.index] = false
			errs[r.index] = r.err
			pending--
		case <-ctx.Done():
			p.abandon(errs, waiting, "canceled", ctx.Err())
			return errs
		case <-timer.C:
			p.abandon(errs, waiting, "timeout", fmt.Errorf("%w (%s)", ErrAckTimeout, p.ackTimeout))
			return errs
		}
	}
	return errs
}

// enqueue hands the events to sarama and returns how many it took. Events it
// could not hand over get their error in errs.
func (p *AsyncProducer) enqueue(ctx context.Context, timeout <-chan time.Time, events []cloudevents.Event, errs []error, waiting []bool, done chan<- outcome) int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		for i := range errs {
			errs[i] = ErrClosed
		}
		p.metrics.failed.WithLabelValues("closed").Add(float64(len(errs)))
		return 0
	}
	pending := 0
	for i := range events {
		if err := events[i].Validate(); err != nil {
			errs[i] = fmt.Errorf("kafka: encode event %q: invalid CloudEvent: %w", events[i].ID(), err)
			p.metrics.failed.WithLabelValues("encode").Inc()
			continue
		}
		msg := &sarama.ProducerMessage{Topic: p.topic}
		if err := kafka_sarama.WriteProducerMessage(ctx, binding.ToMessage(&events[i]), msg); err != nil {
			errs[i] = fmt.Errorf("kafka: encode event %q: %w", events[i].ID(), err)
			p.metrics.failed.WithLabelValues("encode").Inc()
			continue
		}
		msg.Metadata = &ticket{index: i, start: time.Now(), done: done}
		var stop error
		select {
		case p.sp.Input() <- msg:
			waiting[i] = true
			pending++
			continue
		case <-ctx.Done():
			stop = ctx.Err()
		case <-timeout:
			stop = fmt.Errorf("%w (%s): producer queue full", ErrAckTimeout, p.ackTimeout)
		case <-p.closing:
			stop = ErrClosed
		}
		for j := i; j < len(events); j++ {
			if errs[j] == nil {
				errs[j] = stop
			}
		}
		p.metrics.failed.WithLabelValues("not_sent").Add(float64(len(events) - i))
		break
	}
	return pending
}

// abandon gives every event still waiting for an acknowledgement the error.
func (p *AsyncProducer) abandon(errs []error, waiting []bool, reason string, err error) {
	for i, w := range waiting {
		if w {
			errs[i] = err
			p.metrics.failed.WithLabelValues(reason).Inc()
		}
	}
}

// Ready reports whether a broker answers a metadata request for the topic.
// It is meant for /readyz: a producer that cannot reach Kafka would only
// answer 503s.
func (p *AsyncProducer) Ready(ctx context.Context) error {
	select {
	case p.readySem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	result := make(chan error, 1)
	go func() {
		// sarama takes no context; its own timeouts end this goroutine.
		defer func() { <-p.readySem }()
		result <- p.client.RefreshMetadata(p.topic)
	}()
	select {
	case err := <-result:
		if err != nil {
			return fmt.Errorf("kafka: metadata for %s: %w", p.topic, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kafka: metadata for %s: %w", p.topic, ctx.Err())
	}
}

// Close stops accepting events, waits until sarama delivered or failed every
// message already handed to it (their Send calls get their outcomes), and
// disconnects.
func (p *AsyncProducer) Close() error {
	p.closeOnce.Do(func() {
		close(p.closing)
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		// AsyncClose, not Close: sarama's Close drains the successes and
		// errors channels itself, which would take outcomes away from the
		// Send calls waiting for them.
		p.sp.AsyncClose()
		p.drained.Wait()
		p.closeErr = p.client.Close()
	})
	return p.closeErr
}

type producerMetrics struct {
	produced   prometheus.Counter
	failed     *prometheus.CounterVec
	ackSeconds prometheus.Histogram
}

func newProducerMetrics(r prometheus.Registerer) (*producerMetrics, error) {
	m := &producerMetrics{
		produced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trustplane_kafka_produced_events_total",
			Help: "Events Kafka acknowledged.",
		}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustplane_kafka_failed_events_total",
			Help: "Events not acknowledged, by reason (kafka, timeout, canceled, encode, not_sent, closed).",
		}, []string{"reason"}),
		ackSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "trustplane_kafka_ack_seconds",
			Help:    "Time from handing an event to the producer until Kafka acknowledged it.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5ms .. ~4s
		}),
	}
	if r == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.produced, m.failed, m.ackSeconds} {
		if err := r.Register(c); err != nil {
			return nil, fmt.Errorf("kafka: register metrics: %w", err)
		}
	}
	return m, nil
}
