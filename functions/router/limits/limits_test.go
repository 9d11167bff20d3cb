package limits

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/trustplane/trustplane/functions/router/redistest"
)

var frozen = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func TestGCRABucket(t *testing.T) {
	for name, store := range map[string]Store{"memory": NewMemoryStore(), "redis": redisStore(t)} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b := func(n int64) []Units { return []Units{{Key: "b", Limit: 60, Window: time.Minute, N: n}} }
			for i := 0; i < 60; i++ {
				if refused, g, err := store.Take(ctx, b(1), frozen); err != nil || refused != -1 || g[0].Remaining != int64(59-i) {
					t.Fatalf("take %d: refused %d %+v %v", i, refused, g, err)
				}
			}
			refused, g, _ := store.Take(ctx, b(1), frozen)
			if refused != 0 || g[0].RetryAfter != time.Second {
				t.Fatalf("61st take: refused %d %+v, want refused with retry after 1s", refused, g)
			}
			later := frozen.Add(2 * time.Second)
			if refused, g, _ := store.Take(ctx, b(3), later); refused != 0 || g[0].Remaining != 2 {
				t.Fatalf("3 after 2s: refused %d %+v, want refused with the 2 refilled units left", refused, g)
			}
			if refused, g, _ := store.Take(ctx, b(2), later); refused != -1 || g[0].Remaining != 0 {
				t.Fatalf("2 after 2s: refused %d %+v, want the 2 refilled units", refused, g)
			}
			// Giving back and charging more move the bucket both ways.
			if err := store.Add(ctx, b(-10), later); err != nil {
				t.Fatal(err)
			}
			if refused, _, _ := store.Take(ctx, b(10), later); refused != -1 {
				t.Fatal("10 after giving back 10: refused")
			}
			if err := store.Add(ctx, b(30), later); err != nil {
				t.Fatal(err)
			}
			// A debt of 30 units is paid off in 30s; the next unit comes a second later.
			if refused, g, _ := store.Take(ctx, b(1), later.Add(30*time.Second)); refused != 0 || g[0].RetryAfter != time.Second {
				t.Fatalf("30s into a debt of 30: refused %d %+v, want refused for 1s more", refused, g)
			}

			// Several buckets are taken all or none: the second has no room, so the first
			// keeps its units.
			two := []Units{{Key: "x", Limit: 5, Window: time.Minute, N: 1}, {Key: "y", Limit: 1, Window: time.Minute, N: 2}}
			if refused, g, err := store.Take(ctx, two, frozen); err != nil || refused != 1 || g[0].Remaining != 1 {
				t.Fatalf("two buckets, the second without room: refused %d %+v %v", refused, g, err)
			}
			two[1].N = 1
			if refused, g, err := store.Take(ctx, two, frozen); err != nil || refused != -1 || g[0].Remaining != 4 || g[1].Remaining != 0 {
				t.Fatalf("two buckets with room: refused %d %+v %v, want x's 5 less one, y's 1 less one", refused, g, err)
			}
		})
	}
}

func redisStore(t *testing.T) *RedisStore {
	t.Helper()
	return redisStoreAt(t, redistest.Start(t))
}

// redisStoreAt is a store with a client of its own, as each replica has.
func redisStoreAt(t *testing.T, srv *redistest.Server) *RedisStore {
	t.Helper()
	c, err := NewRedisClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return NewRedisStore(c)
}

func TestClientGoingAwayDoesNotSwitchOffSharedLimits(t *testing.T) {
	// A call whose client leaves during its limits round trip ends that round trip; Redis did
	// not fail, so it must not count towards opening the store's circuit: the next calls are
	// still decided by the shared buckets.
	scopes := []Scope{{ID: "tenant:acme", Limit: Limit{RequestsPerMinute: 1}}}
	l := NewLimiter(redisStore(t), Options{Timeout: time.Second})
	if _, refusal := l.Admit(context.Background(), scopes, 1, frozen); refusal != nil {
		t.Fatalf("first call: %v", refusal)
	}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	for i := 0; i < 2*breakerThreshold; i++ {
		l.Admit(gone, []Scope{{ID: "tenant:other", Limit: Limit{RequestsPerMinute: 1}}}, 1, frozen)
	}
	if _, refusal := l.Admit(context.Background(), scopes, 1, frozen); refusal == nil {
		t.Error("call after clients went away: admitted, want refused by the shared limit")
	}
	if n := metricValue(l.failures); n != 0 {
		t.Errorf("%v store failures counted for clients that went away", n)
	}
}

func TestSpendFarUnderTheBudgetIsAlwaysAdmitted(t *testing.T) {
	// One call every 1.5s costing $0.0001: 200 of them spend $0.02, and a shared budget of $1 a
	// day must admit them all.
	l := NewLimiter(redisStore(t), Options{Timeout: time.Second})
	scopes := []Scope{{ID: "tenant:acme", Limit: Limit{USDPerDay: 1}}}
	now := frozen
	for i := 0; i < 200; i++ {
		adm, refusal := l.Admit(context.Background(), scopes, 1, now)
		if refusal != nil || !adm.shared {
			t.Fatalf("call %d at +%s: refusal %+v, decided in Redis %v", i, now.Sub(frozen), refusal, adm != nil && adm.shared)
		}
		adm.Settle(context.Background(), 0, 0.0001, now)
		now = now.Add(1500 * time.Millisecond)
	}
}

// metricValue reads a counter or gauge.
func metricValue(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// The store's breaker opens after breakerThreshold failures in a row, lets one probe through
// once the cooldown has passed, and closes when a probe succeeds.
func TestStoreBreakerOpensProbesAndCloses(t *testing.T) {
	b := storeBreaker{down: prometheus.NewGauge(prometheus.GaugeOpts{Name: "down"})}
	for i := 0; i < breakerThreshold; i++ {
		if ok, probe := b.allow(frozen); !ok || probe {
			t.Fatalf("failure %d: allowed %v probe %v, want closed", i, ok, probe)
		}
		b.done(frozen, false, true)
	}
	if ok, _ := b.allow(frozen.Add(breakerCooldown - time.Millisecond)); ok || metricValue(b.down) != 1 {
		t.Fatalf("within the cooldown: allowed %v, down %v", ok, metricValue(b.down))
	}
	after := frozen.Add(breakerCooldown)
	if ok, probe := b.allow(after); !ok || !probe {
		t.Fatalf("past the cooldown: allowed %v probe %v, want one probe", ok, probe)
	}
	if ok, _ := b.allow(after); ok {
		t.Fatal("a second call allowed while the probe runs")
	}
	b.done(after, true, true) // the probe failed: open for another cooldown
	if ok, _ := b.allow(after.Add(breakerCooldown - time.Millisecond)); ok {
		t.Fatal("allowed within the cooldown after a failed probe")
	}
	again := after.Add(breakerCooldown)
	if _, probe := b.allow(again); !probe {
		t.Fatal("no probe after the second cooldown")
	}
	b.release(true) // its client went away: no verdict, the next call probes
	if _, probe := b.allow(again); !probe {
		t.Fatal("no probe after a released one")
	}
	if closed := b.done(again, true, false); !closed || metricValue(b.down) != 0 {
		t.Fatalf("a successful probe: closed %v, down %v", closed, metricValue(b.down))
	}
	if ok, probe := b.allow(again); !ok || probe {
		t.Fatalf("after closing: allowed %v probe %v", ok, probe)
	}
}
