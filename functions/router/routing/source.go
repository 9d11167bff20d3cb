package routing

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/trustplane/trustplane/functions/runtime"
)

// Source is the routing in force: the routing file's last good version, reloaded when the file
// or a provider key file it names changes (a ConfigMap or Secret update swaps the mounted files),
// or the built-in mock routing. Calls in flight finish with the table they started with.
type Source struct {
	table atomic.Pointer[Table]
	watch *runtime.FileWatch[*Table] // nil when the routing never changes
}

// Load reads the routing file at path, or serves the built-in mock routing when path is empty.
// A file that does not load is an error here; later, a bad version is logged and the last good
// one kept.
func Load(path string, client *http.Client, logger *slog.Logger) (*Source, error) {
	if path == "" {
		logger.Warn("ROUTER_CONFIG is not set: serving the built-in mock models (no real provider is called)")
		t, err := Parse([]byte(MockConfig), client, os.Getenv, os.ReadFile)
		if err != nil {
			return nil, fmt.Errorf("built-in mock routing: %w", err)
		}
		return Fixed(t), nil
	}
	s := &Source{}
	s.watch = &runtime.FileWatch[*Table]{
		What: "routing config", Path: path, Logger: logger,
		Parse: func(data []byte, read func(string) ([]byte, error)) (*Table, error) {
			return Parse(data, client, os.Getenv, read)
		},
		Install: s.table.Store,
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

// Table is the routing to serve a call with.
func (s *Source) Table() *Table { return s.table.Load() }

// Run checks the routing file every interval until ctx ends, installing each valid new version;
// it fits runtime.Function.Background. A fixed source has nothing to check.
func (s *Source) Run(ctx context.Context, interval time.Duration) error {
	if s.watch == nil {
		<-ctx.Done()
		return nil
	}
	return s.watch.Run(ctx, interval)
}
