package router

import (
	"context"
	"fmt"
	"sync"
)

// Drain waits for the bookkeeping of answered calls; shutdown runs it before closing the
// recorder, so that no call goes unrecorded.
func (g *Gateway) Drain(ctx context.Context) error {
	select {
	case <-g.tails.idle():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("router: calls still being recorded: %w", ctx.Err())
	}
}

// tailCount counts the calls in their bookkeeping. Unlike a sync.WaitGroup it may gain calls
// from zero while Drain waits: when a shutdown's grace has run out, handlers still running go on
// and finish their calls, and a WaitGroup forbids that Add (it may panic).
type tailCount struct {
	mu     sync.Mutex
	n      int
	waiter chan struct{} // closed when n drops to zero; nil while no one waits
}

func (t *tailCount) add() {
	t.mu.Lock()
	t.n++
	t.mu.Unlock()
}

func (t *tailCount) done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n--; t.n == 0 && t.waiter != nil {
		close(t.waiter)
		t.waiter = nil
	}
}

// idle returns a channel that is closed once no call is in its bookkeeping.
func (t *tailCount) idle() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == 0 {
		return alreadyClosed
	}
	if t.waiter == nil {
		t.waiter = make(chan struct{})
	}
	return t.waiter
}

var alreadyClosed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()
