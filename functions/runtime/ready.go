package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// ReadyCheck reports whether a dependency can be reached.
type ReadyCheck func(ctx context.Context) error

// Defaults of Server.ReadyInterval and Server.ReadyTimeout. A dependency that fails shows in
// /readyz within ReadyInterval + ReadyTimeout (4 s); the manifests' readiness probes come no
// more often than that, as more often would only read the same state again.
const (
	DefaultReadyInterval = 2 * time.Second
	DefaultReadyTimeout  = 2 * time.Second
)

// errNotChecked is a check's state until its first run has returned.
var errNotChecked = errors.New("not checked yet")

// AddReadyCheck makes /readyz depend on a dependency being reachable. The check runs in the
// background every ReadyInterval while the server serves, and /readyz answers from its latest
// result: a probe must be answered within its own timeout (a second, by default), and a check
// of a stalled dependency takes as long as its timeout, which /readyz must not wait for.
func (s *Server) AddReadyCheck(name string, check ReadyCheck) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = check
	s.states[name] = errNotChecked
	if s.checking != nil {
		go s.watch(s.checking, name, check)
	}
}

// startChecks starts every check's loop; stop ends them.
func (s *Server) startChecks() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checking = ctx
	for name, check := range s.checks {
		go s.watch(ctx, name, check)
	}
	return cancel
}

// watch runs check every ReadyInterval until ctx ends, keeping its latest result. A check that
// has not returned within ReadyTimeout is failed at once; the next run waits until it has
// returned, so that a check that ignores its context is never running twice.
func (s *Server) watch(ctx context.Context, name string, check ReadyCheck) {
	for {
		cctx, cancel := context.WithTimeout(ctx, s.ReadyTimeout)
		result := make(chan error, 1)
		go func() { result <- check(cctx) }()
		select {
		case err := <-result:
			if err != nil && cctx.Err() != nil {
				err = fmt.Errorf("no answer within %s: %w", s.ReadyTimeout, err)
			}
			s.setState(name, err)
		case <-cctx.Done():
			s.setState(name, fmt.Errorf("no answer within %s", s.ReadyTimeout))
			select {
			case <-result:
			case <-ctx.Done():
			}
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.ReadyInterval):
		}
	}
}

func (s *Server) setState(name string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.states[name] = err
}

// serveReady answers from the checks' latest results, never waiting for a check.
func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	if s.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "shutting down\n")
		return
	}
	var failed []string
	s.mu.Lock()
	for name, err := range s.states {
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", name, err))
		}
	}
	s.mu.Unlock()
	if len(failed) > 0 {
		slices.Sort(failed)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, strings.Join(failed, "\n")+"\n")
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}
