package routing

import (
	"sync"
	"time"
)

// breaker is a target's circuit breaker and latency average. It outlives reloads: Router keeps
// one per provider/model.
type breaker struct {
	mu        sync.Mutex
	failures  int
	openUntil time.Time
	probing   bool
	ewma      float64 // milliseconds; 0 until the first success
}

const ewmaAlpha = 0.3

// allow reports whether the target may be tried: closed, or open past its cooldown with no
// probe running (this call becomes the probe).
func (s *breaker) allow(now time.Time, threshold int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures < threshold {
		return true
	}
	if now.Before(s.openUntil) || s.probing {
		return false
	}
	s.probing = true
	return true
}

func (s *breaker) success(latency time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures, s.probing = 0, false
	ms := float64(latency) / float64(time.Millisecond)
	if s.ewma == 0 {
		s.ewma = ms
	} else {
		s.ewma = ewmaAlpha*ms + (1-ewmaAlpha)*s.ewma
	}
}

func (s *breaker) failure(now time.Time, c CircuitConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures++
	s.probing = false
	if s.failures >= c.FailureThreshold {
		s.openUntil = now.Add(time.Duration(c.Cooldown))
	}
}

// release ends a probe that neither succeeded nor failed (the client went away).
func (s *breaker) release() {
	s.mu.Lock()
	s.probing = false
	s.mu.Unlock()
}

func (s *breaker) latency() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ewma
}
