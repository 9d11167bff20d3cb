package limits

import (
	"context"
	"sync"
	"time"
)

// MemoryStore keeps buckets in this process: the limits of a single pod.
type MemoryStore struct {
	mu      sync.Mutex
	tats    map[string]int64
	sweepAt int64
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore { return &MemoryStore{tats: map[string]int64{}} }

// Take implements Store.
func (m *MemoryStore) Take(_ context.Context, us []Units, now time.Time) (int, []Grant, error) {
	t := now.UnixMicro()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(t)
	tats := make([]int64, len(us))
	grants := make([]Grant, len(us))
	for i, u := range us {
		tat, g, ok := gcraTake(m.tats[u.Key], t, u)
		if !ok {
			return i, []Grant{g}, nil
		}
		tats[i], grants[i] = tat, g
	}
	for i, u := range us {
		m.tats[u.Key] = tats[i]
	}
	return -1, grants, nil
}

// Add implements Store.
func (m *MemoryStore) Add(_ context.Context, us []Units, now time.Time) error {
	t := now.UnixMicro()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, u := range us {
		m.tats[u.Key] = gcraAdd(m.tats[u.Key], t, u)
	}
	return nil
}

// sweep forgets full buckets (tat in the past) once a minute, so idle keys do not pile up.
func (m *MemoryStore) sweep(now int64) {
	if now < m.sweepAt {
		return
	}
	m.sweepAt = now + time.Minute.Microseconds()
	for k, tat := range m.tats {
		if tat < now {
			delete(m.tats, k)
		}
	}
}
