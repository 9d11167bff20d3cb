// Package limits enforces router's rate limits and budgets. Requests per minute, tokens per
// minute and USD per day are GCRA buckets (the generic cell rate algorithm: a token bucket kept as
// one timestamp), held in this process (MemoryStore) or in Redis shared by every replica
// (RedisStore). A Limiter decides each call with one atomic take on the shared store, and with
// this pod's own buckets while the shared store is unreachable. query takes its per-key request
// limit through the same Limiter (Take), in the same Redis.
package limits

import (
	"context"
	"math"
	"time"
)

// Rate limits and budgets are GCRA buckets (the generic cell rate algorithm, a token bucket
// kept as one timestamp): a bucket of limit units refills at limit per window and never holds
// more than limit. Requests per minute, tokens per minute and USD per day (in micro-dollars)
// are all buckets; only their units and windows differ.

// Units are n units of one bucket: the bucket's key, its limit per window, and n.
type Units struct {
	Key    string
	Limit  int64
	Window time.Duration
	N      int64
}

// Grant is one bucket's state after a take.
type Grant struct {
	Remaining  int64         // units left in the bucket (refused: the units there are)
	RetryAfter time.Duration // when refused: how long until the units wanted are there
}

// Store holds bucket state. MemoryStore serves one pod; RedisStore shares the buckets
// between replicas.
type Store interface {
	// Take takes u.N units from every bucket of us, all or none, in one atomic step. refused
	// is the index of the first bucket without room (then nothing is taken), else -1; grants
	// has one entry per bucket when all were taken, and the refusing bucket's when refused.
	Take(ctx context.Context, us []Units, now time.Time) (refused int, grants []Grant, err error)
	// Add uses u.N more units of each bucket (or gives back -u.N) without refusing: the
	// correction once a call's real token count or cost is known.
	Add(ctx context.Context, us []Units, now time.Time) error
}

// gcraTake takes u.N units from a bucket whose tat (theoretical arrival time) is tat; tat and
// now are microseconds, a missing bucket has tat 0. ok is false when the bucket has no room.
func gcraTake(tat, now int64, u Units) (newTat int64, g Grant, ok bool) {
	window := u.Window.Microseconds()
	interval := float64(window) / float64(u.Limit)
	tat = max(tat, now)
	avail := int64(math.Floor(float64(now+window-tat) / interval))
	if avail < u.N {
		wait := float64(tat) + float64(u.N)*interval - float64(window) - float64(now)
		return tat, Grant{Remaining: max(avail, 0), RetryAfter: time.Duration(math.Ceil(wait)) * time.Microsecond}, false
	}
	return tat + int64(math.Ceil(float64(u.N)*interval)), Grant{Remaining: avail - u.N}, true
}

func gcraAdd(tat, now int64, u Units) int64 {
	interval := float64(u.Window.Microseconds()) / float64(u.Limit)
	return max(max(tat, now)+int64(math.Round(float64(u.N)*interval)), now)
}
