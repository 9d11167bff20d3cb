package policy

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/trustplane/trustplane/functions/runtime"
)

// Source is the policy in force: the policy file's last good version, reloaded when the file
// changes (a ConfigMap update swaps the mounted file), or the built-in policy. A call in flight
// finishes with the table it started with.
type Source struct {
	table atomic.Pointer[Table]
	watch *runtime.FileWatch[*Table] // nil when the policy never changes
}

// Load reads the policy file at path, or serves the built-in policy when path is empty. A file
// that does not load is an error here; later, a bad version is logged and the last good one
// kept. loaded, if set, is told of every load tried (nil for success), for a metric.
func Load(path string, logger *slog.Logger, loaded func(error)) (*Source, error) {
	if path == "" {
		return Fixed(Builtin()), nil
	}
	s := &Source{}
	s.watch = &runtime.FileWatch[*Table]{
		What: "guard policy", Path: path, Logger: logger, MaxBytes: 4 << 20,
		Parse:   func(data []byte, _ func(string) ([]byte, error)) (*Table, error) { return Parse(data) },
		Install: s.table.Store,
		Loaded:  loaded,
	}
	if _, err := s.watch.Load(); err != nil {
		return nil, err
	}
	return s, nil
}

// Fixed is a source that always serves t.
func Fixed(t *Table) *Source {
	s := &Source{}
	s.table.Store(t)
	return s
}

// Table is the policy table in force.
func (s *Source) Table() *Table { return s.table.Load() }

// Run checks the policy file every interval until ctx ends, installing each valid new version;
// it fits runtime.Function.Background. A fixed source has nothing to check.
func (s *Source) Run(ctx context.Context, interval time.Duration) error {
	if s.watch == nil {
		<-ctx.Done()
		return nil
	}
	return s.watch.Run(ctx, interval)
}
