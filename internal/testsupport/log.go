package testsupport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
)

// Buffer is an io.Writer that goroutines may share, keeping all that was written: the output
// of a child process or a text logger.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String is all that was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Log is a destination for a JSON slog.Handler that keeps every line, decoded, so that a test
// can count what a function logged; goroutines may share it.
type Log struct {
	mu    sync.Mutex
	lines []map[string]any
}

// Logger is a JSON logger, at debug level, writing to l.
func (l *Log) Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Write takes one JSON line, as slog's JSON handler writes each record in one call.
func (l *Log) Write(p []byte) (int, error) {
	var m map[string]any
	if err := json.Unmarshal(p, &m); err != nil {
		return 0, fmt.Errorf("testsupport: not one JSON log line: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, m)
	return len(p), nil
}

// Lines returns the lines logged so far.
func (l *Log) Lines() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]map[string]any(nil), l.lines...)
}

// Count is the number of lines whose message is msg.
func (l *Log) Count(msg string) int {
	n := 0
	for _, m := range l.Lines() {
		if m[slog.MessageKey] == msg {
			n++
		}
	}
	return n
}

// AtLeast returns the lines of lines logged at level or above.
func AtLeast(lines []map[string]any, level slog.Level) []map[string]any {
	var out []map[string]any
	for _, m := range lines {
		var lv slog.Level
		if s, _ := m[slog.LevelKey].(string); lv.UnmarshalText([]byte(s)) == nil && lv >= level {
			out = append(out, m)
		}
	}
	return out
}
