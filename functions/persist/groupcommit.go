package persist

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/functions/runtime"
)

// ErrClosed is returned for rows submitted after Close.
var ErrClosed = errors.New("persist: group commit is closed")

// GroupCommit gathers the rows of deliveries that arrive together into one ClickHouse insert,
// with at most MaxInflight inserts running at once. A batch is due as soon as it holds MaxRows
// rows. Otherwise it is due once MinInterval has passed since the previous insert started and
// no delivery arrived for Idle (everything the broker has in flight is then in the batch, and
// waiting longer only adds latency); under a steady stream, which has no such pause, once its
// first row has waited MinInterval; and at the latest when its first row has waited MaxWait. A
// due batch is written when an insert slot is free, and keeps taking rows until then, so
// batches grow with the load instead of queueing. MinInterval caps the rate of small inserts,
// so ClickHouse sees few, large inserts rather than a merge storm of small ones, while under
// load the wait overlaps with the running insert instead of adding to it. A batch of LargeRows
// rows or more is already large, and does not wait for MinInterval: otherwise, with the
// broker's deliveries in flight bounded (as they are), the cap would bound throughput at
// in-flight deliveries per MinInterval.
type GroupCommit struct {
	writer clickhouse.Writer
	cfg    GroupCommitConfig

	// Deliveries queue their rows under mu and wake the loop, which takes the whole queue at
	// once: thousands of deliveries answered by one insert come back together, and handing
	// each to the loop through a channel cost a goroutine switch apiece between two inserts.
	mu     sync.Mutex
	queue  []*request
	closed bool
	wake   chan struct{} // holds a token while the queue may have requests

	slots    chan struct{}
	done     chan struct{}
	closing  chan struct{}
	once     sync.Once
	inflight sync.WaitGroup

	batchRows   prometheus.Histogram
	insertTime  prometheus.Histogram
	insertFails prometheus.Counter
	waiting     prometheus.Gauge
	// failed logs failed inserts: one line per interval however many fail, as while
	// ClickHouse is down every insert does.
	failed *runtime.RepeatedLog
}

type request struct {
	batch clickhouse.Batch
	done  chan error
}

// GroupCommitConfig bounds the batches.
type GroupCommitConfig struct {
	MaxRows int
	// LargeRows is the size from which a batch does not wait for MinInterval; 0 means never.
	LargeRows   int
	MinInterval time.Duration
	Idle        time.Duration
	MaxWait     time.Duration
	MaxInflight int
	// InsertTimeout bounds one insert; a delivery whose insert timed out is answered 5xx and
	// retried by the broker.
	InsertTimeout time.Duration
}

// NewGroupCommit starts a group commit writing to w. logger and reg may be nil.
func NewGroupCommit(w clickhouse.Writer, cfg GroupCommitConfig, logger *slog.Logger, reg prometheus.Registerer) *GroupCommit {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	g := &GroupCommit{
		writer: w, cfg: cfg,
		failed: runtime.NewRepeatedLog(logger, slog.LevelError, "insert failed: its deliveries are answered 503 for the broker to retry",
			runtime.RepeatInterval),
		wake:    make(chan struct{}, 1),
		slots:   make(chan struct{}, cfg.MaxInflight),
		done:    make(chan struct{}),
		closing: make(chan struct{}),
		batchRows: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "trustplane", Subsystem: "persist", Name: "batch_rows",
			Help: "Rows per ClickHouse insert.", Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		insertTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "trustplane", Subsystem: "persist", Name: "insert_seconds",
			Help: "Time one batch insert took.", Buckets: prometheus.DefBuckets,
		}),
		insertFails: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "trustplane", Subsystem: "persist", Name: "insert_failures_total",
			Help: "Batch inserts that failed; their deliveries were answered 5xx for the broker to retry.",
		}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "trustplane", Subsystem: "persist", Name: "waiting_deliveries",
			Help: "Deliveries whose rows wait for their insert to finish.",
		}),
	}
	if reg != nil {
		reg.MustRegister(g.batchRows, g.insertTime, g.insertFails, g.waiting)
	}
	go g.loop()
	return g
}

// Write adds b to the next insert and returns once that insert finished: nil means the rows are
// stored.
func (g *GroupCommit) Write(ctx context.Context, b clickhouse.Batch) error {
	r := &request{batch: b, done: make(chan error, 1)}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return ErrClosed
	}
	g.queue = append(g.queue, r)
	g.mu.Unlock()
	g.waiting.Inc()
	defer g.waiting.Dec()
	select {
	case g.wake <- struct{}{}:
	default: // a token is already there
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		// The rows may still be written; the caller answers 5xx and the broker redelivers,
		// which is harmless because rows de-duplicate.
		return ctx.Err()
	}
}

func (g *GroupCommit) loop() {
	defer close(g.done)
	var (
		pending []*request
		rows    int
		first   time.Time // when the batch's first row arrived
		started time.Time // when the last insert started
		due     bool      // the batch is to be written as soon as an insert slot is free
		timer   = time.NewTimer(time.Hour)
	)
	timer.Stop()
	start := func() {
		timer.Stop()
		g.inflight.Add(1)
		go g.insert(pending, rows)
		pending, rows, due = nil, 0, false
		started = time.Now()
	}
	// take moves queued requests into the batch until it is full; a full batch leaves the rest
	// queued for the next one.
	take := func() {
		if rows >= g.cfg.MaxRows {
			return
		}
		now := time.Now()
		g.mu.Lock()
		n := 0
		for n < len(g.queue) && rows < g.cfg.MaxRows {
			if len(pending) == 0 {
				first = now
			}
			pending = append(pending, g.queue[n])
			rows += g.queue[n].batch.Len()
			n++
		}
		rest := copy(g.queue, g.queue[n:])
		clear(g.queue[rest:]) // the taken requests are the batch's now: the queue lets go of them
		g.queue = g.queue[:rest]
		g.mu.Unlock()
		if n == 0 {
			return
		}
		if rows >= g.cfg.MaxRows {
			due = true
			timer.Stop()
		} else if !due {
			timer.Reset(g.deadline(rows, first, now, started).Sub(now))
		}
	}
	for {
		take()
		// While every insert slot is busy, a due batch keeps taking arrivals, so batches grow
		// with the load; only a full batch holds them back.
		var acquire chan struct{}
		if due && len(pending) > 0 {
			acquire = g.slots
		}
		select {
		case <-g.wake:
		case <-timer.C:
			due = true
		case acquire <- struct{}{}:
			start()
		case <-g.closing:
			// Write refuses rows from now on: what is queued or pending is all there is.
			for {
				take()
				if len(pending) == 0 {
					break
				}
				g.slots <- struct{}{}
				start()
			}
			g.inflight.Wait()
			return
		}
	}
}

// deadline is when a batch of rows whose first row arrived at first is due, the last row having
// arrived at last and the previous insert having started at started: once no row arrived for
// Idle, but (unless it holds LargeRows) not before MinInterval after the previous insert
// started nor, while rows keep arriving, later than MinInterval after the first row (a steady
// stream has no pause to wait for), and at the latest MaxWait after the first row.
func (g *GroupCommit) deadline(rows int, first, last, started time.Time) time.Time {
	notBefore := started.Add(g.cfg.MinInterval)
	if g.cfg.LargeRows > 0 && rows >= g.cfg.LargeRows {
		notBefore = time.Time{}
	}
	d := later(notBefore, last.Add(g.cfg.Idle))
	d = sooner(d, later(notBefore, first.Add(g.cfg.MinInterval)))
	return sooner(d, first.Add(g.cfg.MaxWait))
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func sooner(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (g *GroupCommit) insert(reqs []*request, rows int) {
	defer g.inflight.Done()
	defer func() { <-g.slots }()
	var merged clickhouse.Batch
	for _, r := range reqs {
		merged.Traces = append(merged.Traces, r.batch.Traces...)
		merged.Observations = append(merged.Observations, r.batch.Observations...)
		merged.Scores = append(merged.Scores, r.batch.Scores...)
		merged.LLMCalls = append(merged.LLMCalls, r.batch.LLMCalls...)
		merged.Findings = append(merged.Findings, r.batch.Findings...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.InsertTimeout)
	defer cancel()
	start := time.Now()
	err := g.writer.Write(ctx, merged)
	took := time.Since(start)
	g.insertTime.Observe(took.Seconds())
	g.batchRows.Observe(float64(rows))
	if err != nil {
		g.insertFails.Inc()
		g.failed.Log("rows", rows, "deliveries", len(reqs), "took", took.String(), "error", err)
	}
	for _, r := range reqs {
		r.done <- err
	}
}

// Close writes what is pending, waits for running inserts, and refuses further rows.
func (g *GroupCommit) Close(ctx context.Context) error {
	g.once.Do(func() {
		g.mu.Lock()
		g.closed = true
		g.mu.Unlock()
		close(g.closing)
	})
	select {
	case <-g.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
