package runtime

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// RepeatInterval is how often a RepeatedLog logs a failure that goes on.
const RepeatInterval = 10 * time.Second

// RepeatedLog is the log line of a failure that repeats for as long as a dependency is down:
// an insert, a delivery or a produce that fails for every event. Logged each time, it is one
// line per event, thousands a second during an outage, which buries everything else and
// costs the disk. RepeatedLog logs the first occurrence at once, with its details, then at
// most one line per interval: the details of the latest occurrence and how many occurred in
// the interval ("repeated"). An interval without any ends the run, and the next occurrence
// is logged at once again. The lines of one RepeatedLog are therefore at least an interval
// apart. Counts belong in metrics as well: this keeps the log readable, it does not count.
type RepeatedLog struct {
	logger   *slog.Logger
	level    slog.Level
	msg      string
	interval time.Duration
	after    func(time.Duration, func()) // time.AfterFunc; a test ends intervals itself

	mu      sync.Mutex
	running bool // an interval is under way: occurrences are counted, not logged
	count   int
	last    []any
}

// NewRepeatedLog logs msg at level on logger, at most once per interval.
func NewRepeatedLog(logger *slog.Logger, level slog.Level, msg string, interval time.Duration) *RepeatedLog {
	return &RepeatedLog{logger: logger, level: level, msg: msg, interval: interval,
		after: func(d time.Duration, f func()) { time.AfterFunc(d, f) }}
}

// Log records one occurrence; args are its attributes, as for slog.Logger.Log.
func (r *RepeatedLog) Log(args ...any) {
	if !r.logger.Enabled(context.Background(), r.level) {
		return
	}
	r.mu.Lock()
	if r.running {
		r.count++
		r.last = args
		r.mu.Unlock()
		return
	}
	r.running = true
	r.mu.Unlock()
	r.logger.Log(context.Background(), r.level, r.msg, args...)
	r.after(r.interval, r.endInterval)
}

// endInterval logs what the interval counted, and starts the next one if it counted any.
func (r *RepeatedLog) endInterval() {
	r.mu.Lock()
	n, last := r.count, r.last
	r.count, r.last = 0, nil
	if n == 0 {
		r.running = false
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	r.logger.Log(context.Background(), r.level, r.msg, slices.Concat(last, []any{"repeated", n, "interval", r.interval.String()})...)
	r.after(r.interval, r.endInterval)
}
