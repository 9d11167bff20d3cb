package router

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/kafka"
)

// Recorder produces llm-call events to Kafka off the response path. Record never blocks: events
// wait in a bounded buffer that one goroutine drains in batches into the producer. When the
// buffer is full (Kafka down or slow for long enough), new events are dropped, counted in
// trustplane_router_telemetry_dropped_total and logged at most once per logEvery.
type Recorder struct {
	producer kafka.Producer
	buf      chan cloudevents.Event
	batch    int
	logger   *slog.Logger
	logEvery time.Duration

	done      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once

	mu         sync.Mutex
	dropped    int64 // since the last log line
	lastLogged time.Time

	produced, failed, drops prometheus.Counter
	queued                  prometheus.GaugeFunc
	producedN, droppedN     atomic.Int64
}

// Stats are a recorder's totals so far.
type Stats struct {
	Produced, Dropped int64
	Buffered          int
}

// Stats returns the totals: events acknowledged by Kafka, dropped, and waiting.
func (r *Recorder) Stats() Stats {
	return Stats{Produced: r.producedN.Load(), Dropped: r.droppedN.Load(), Buffered: len(r.buf)}
}

// NewRecorder starts the draining goroutine. capacity bounds the buffer; batch bounds one Send.
func NewRecorder(p kafka.Producer, capacity, batch int, logger *slog.Logger, reg prometheus.Registerer) *Recorder {
	r := &Recorder{
		producer: p, buf: make(chan cloudevents.Event, capacity), batch: max(batch, 1), logger: logger,
		logEvery: 10 * time.Second, done: make(chan struct{}), stopped: make(chan struct{}),
		produced: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "trustplane", Subsystem: "router", Name: "telemetry_produced_total",
			Help: "llm-call events acknowledged by Kafka."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "trustplane", Subsystem: "router", Name: "telemetry_failed_total",
			Help: "llm-call events Kafka did not acknowledge (lost)."}),
		drops: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "trustplane", Subsystem: "router", Name: "telemetry_dropped_total",
			Help: "llm-call events dropped because the buffer was full."}),
	}
	r.queued = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "trustplane", Subsystem: "router", Name: "telemetry_buffered",
		Help: "llm-call events waiting for Kafka."}, func() float64 { return float64(len(r.buf)) })
	if reg != nil {
		reg.MustRegister(r.produced, r.failed, r.drops, r.queued)
	}
	go r.drain()
	return r
}

// Record queues e, or drops it when the buffer is full.
func (r *Recorder) Record(e cloudevents.Event) {
	select {
	case r.buf <- e:
		return
	case <-r.done:
	default:
	}
	r.drops.Inc()
	r.droppedN.Add(1)
	r.mu.Lock()
	r.dropped++
	if time.Since(r.lastLogged) >= r.logEvery {
		r.logger.Warn("telemetry buffer full: llm-call events dropped", "dropped", r.dropped, "buffer", cap(r.buf))
		r.dropped, r.lastLogged = 0, time.Now()
	}
	r.mu.Unlock()
}

// lingerTime is how long the first event of a batch waits for others.
const lingerTime = 50 * time.Millisecond

func (r *Recorder) drain() {
	defer close(r.stopped)
	batch := make([]cloudevents.Event, 0, r.batch)
	for {
		select {
		case e := <-r.buf:
			batch = append(batch[:0], e)
		case <-r.done:
			r.flush(batch[:0])
			return
		}
		// Linger briefly so that events trickling in share one Send: fewer, larger produce
		// requests cost the gateway less CPU than one per call.
		linger := time.NewTimer(lingerTime)
	fill:
		for len(batch) < r.batch {
			select {
			case e := <-r.buf:
				batch = append(batch, e)
			case <-linger.C:
				break fill
			case <-r.done:
				break fill
			}
		}
		linger.Stop()
		r.send(batch)
	}
}

// send retries a batch Kafka did not take until it is taken or the recorder closes, so while
// Kafka is down events wait in the buffer (and new ones are dropped once it is full) rather
// than being lost one batch at a time.
func (r *Recorder) send(batch []cloudevents.Event) {
	backoff := 100 * time.Millisecond
	for {
		pending := batch[:0]
		for i, err := range r.producer.Send(context.Background(), batch) {
			if err != nil {
				pending = append(pending, batch[i])
			}
		}
		r.countProduced(len(batch) - len(pending))
		if len(pending) == 0 {
			return
		}
		batch = pending
		r.logger.Warn("Kafka did not acknowledge llm-call events; retrying", "events", len(batch))
		select {
		case <-time.After(backoff):
			backoff = min(2*backoff, 5*time.Second)
		case <-r.done:
			r.failed.Add(float64(len(batch)))
			r.logger.Error("llm-call events lost at shutdown: Kafka did not acknowledge them", "events", len(batch))
			return
		}
	}
}

func (r *Recorder) countProduced(n int) {
	r.produced.Add(float64(n))
	r.producedN.Add(int64(n))
}

// flush sends what is buffered once, at shutdown.
func (r *Recorder) flush(batch []cloudevents.Event) {
	for {
		select {
		case e := <-r.buf:
			batch = append(batch, e)
			continue
		default:
		}
		break
	}
	if len(batch) == 0 {
		return
	}
	var lost int
	for _, err := range r.producer.Send(context.Background(), batch) {
		if err != nil {
			lost++
		}
	}
	r.countProduced(len(batch) - lost)
	if lost > 0 {
		r.failed.Add(float64(lost))
		r.logger.Error("llm-call events lost at shutdown: Kafka did not acknowledge them", "events", lost)
	}
}

// Close stops accepting events, sends what is buffered, and returns when done or when ctx ends.
func (r *Recorder) Close(ctx context.Context) error {
	r.closeOnce.Do(func() { close(r.done) })
	select {
	case <-r.stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
