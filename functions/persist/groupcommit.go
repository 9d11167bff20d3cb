package persist

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/clickhouse"
)

// ErrClosed is returned for rows submitted after Close.
var ErrClosed = errors.New("persist: group commit is closed")

// GroupCommit gathers the rows of deliveries that arrive together into one ClickHouse insert,
// with at most MaxInflight inserts running at once. A batch is written as soon as it holds
// MaxRows rows. Otherwise it is written once MinInterval has passed since the previous insert
// started and no delivery arrived for Idle (everything the broker has in flight is then in the
// batch, and waiting longer only adds latency), and at the latest when its first row has waited
// MaxWait. MinInterval caps the insert rate (at most one insert per MinInterval unless batches
// fill up), so ClickHouse sees few, large inserts rather than a merge storm of small ones, while
// under load the wait overlaps with the running insert instead of adding to it.
type GroupCommit struct {
	writer clickhouse.Writer
	cfg    GroupCommitConfig

	submit   chan *request
	slots    chan struct{}
	done     chan struct{}
	closing  chan struct{}
	once     sync.Once
	inflight sync.WaitGroup

	batchRows   prometheus.Histogram
	insertTime  prometheus.Histogram
	insertFails prometheus.Counter
}

type request struct {
	batch clickhouse.Batch
	done  chan error
}

// GroupCommitConfig bounds the batches.
type GroupCommitConfig struct {
	MaxRows     int
	MinInterval time.Duration
	Idle        time.Duration
	MaxWait     time.Duration
	MaxInflight int
	// InsertTimeout bounds one insert; a delivery whose insert timed out is answered 5xx and
	// retried by the broker.
	InsertTimeout time.Duration
}

// NewGroupCommit starts a group commit writing to w. reg may be nil.
func NewGroupCommit(w clickhouse.Writer, cfg GroupCommitConfig, reg prometheus.Registerer) *GroupCommit {
	g := &GroupCommit{
		writer: w, cfg: cfg,
		submit:  make(chan *request),
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
	}
	if reg != nil {
		reg.MustRegister(g.batchRows, g.insertTime, g.insertFails)
	}
	go g.loop()
	return g
}

// Write adds b to the next insert and returns once that insert finished: nil means the rows are
// stored.
func (g *GroupCommit) Write(ctx context.Context, b clickhouse.Batch) error {
	r := &request{batch: b, done: make(chan error, 1)}
	select {
	case g.submit <- r:
	case <-g.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
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
		first   time.Time
		started time.Time // when the last insert started
		timer   = time.NewTimer(time.Hour)
	)
	timer.Stop()
	flush := func() {
		timer.Stop()
		if len(pending) == 0 {
			return
		}
		batch, n := pending, rows
		pending, rows = nil, 0
		g.slots <- struct{}{} // waits while MaxInflight inserts run; arrivals queue up meanwhile
		started = time.Now()
		g.inflight.Add(1)
		go g.insert(batch, n)
	}
	for {
		select {
		case r := <-g.submit:
			now := time.Now()
			if len(pending) == 0 {
				first = now
			}
			pending = append(pending, r)
			rows += r.batch.Len()
			if rows >= g.cfg.MaxRows {
				flush()
				continue
			}
			wait := max(started.Add(g.cfg.MinInterval).Sub(now), g.cfg.Idle)
			timer.Reset(min(wait, first.Add(g.cfg.MaxWait).Sub(now)))
		case <-timer.C:
			flush()
		case <-g.closing:
			flush()
			g.inflight.Wait()
			return
		}
	}
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
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.InsertTimeout)
	defer cancel()
	start := time.Now()
	err := g.writer.Write(ctx, merged)
	g.insertTime.Observe(time.Since(start).Seconds())
	g.batchRows.Observe(float64(rows))
	if err != nil {
		g.insertFails.Inc()
	}
	for _, r := range reqs {
		r.done <- err
	}
}

// Close writes what is pending, waits for running inserts, and refuses further rows.
func (g *GroupCommit) Close(ctx context.Context) error {
	g.once.Do(func() { close(g.closing) })
	select {
	case <-g.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
