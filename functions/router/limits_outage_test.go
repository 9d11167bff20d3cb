package router

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/trustplane/trustplane/functions/router/limits"
	"github.com/trustplane/trustplane/functions/router/redistest"
	"github.com/trustplane/trustplane/functions/router/routing/routingtest"
)

// When Redis goes away (killed: connections refused) or stalls (frozen: connections open,
// nothing answers) under load, no call waits on it longer than the limits timeout, each pod
// goes on deciding limits with its own buckets (not admitting everything), and once Redis is
// back the shared buckets decide again.
func TestRedisOutageKeepsCallsFastAndLimitsPerPod(t *testing.T) {
	for _, outage := range []struct {
		name       string
		start, end func(*redistest.Server) error
	}{
		{"killed", func(s *redistest.Server) error { s.Stop(); return nil }, (*redistest.Server).Restart},
		{"frozen", (*redistest.Server).Pause, (*redistest.Server).Resume},
	} {
		t.Run(outage.name, func(t *testing.T) { testRedisOutage(t, outage.start, outage.end) })
	}
}

func testRedisOutage(t *testing.T, start, end func(*redistest.Server) error) {
	const (
		limit       = 20 // requests per minute of tenant acme; time is frozen, so nothing refills
		timeout     = 50 * time.Millisecond
		workers     = 4 // per pod
		outageFor   = 2500 * time.Millisecond
		settleAfter = 30 * time.Second // only keeps a broken build from hanging the test
	)
	// A call takes at most the timeout for its admission, plus the timeout its connection's
	// previous call spent on its correction (the budget's charge) before the server read the
	// next request. The 250 ms on top are for the machine's scheduling: they are four times the
	// slowest of a million loopback calls on the 2-core build machine under load (66 ms), and in
	// ten runs of this test (some 32,000 calls) the slowest took 56 ms, its 99th percentile 5 ms,
	// so a call passes the bound by accident far less than once in a million.
	const bound = 2*timeout + 250*time.Millisecond

	srv := redistest.Start(t)
	k := newKeys(t)
	pods := replicas(t, k, srv, 2, fmt.Sprintf(routingtest.MockRoute, fmt.Sprintf("  tenant: {requests_per_minute: %d, usd_per_day: 1000}", limit)), timeout)

	type result struct {
		pod     int
		status  int
		latency time.Duration
	}
	var mu sync.Mutex
	var results []result
	counts := func() (admitted, all int) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range results {
			if r.status == http.StatusOK {
				admitted++
			}
		}
		return admitted, len(results)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for p := range pods {
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := oneConnection()
				for {
					select {
					case <-stop:
						return
					default:
					}
					began := time.Now()
					code, body := chatVia(t, client, pods[p].url, k.llm, chatBody)
					if code != http.StatusOK && code != http.StatusTooManyRequests {
						t.Errorf("pod %d: status %d: %s", p, code, body)
					}
					mu.Lock()
					results = append(results, result{p, code, time.Since(began)})
					mu.Unlock()
					// Paced (some 1,500 calls a second in all), so that the latencies are
					// the calls', not a queue on a machine the load itself saturates.
					time.Sleep(5 * time.Millisecond)
				}
			}()
		}
	}
	var once sync.Once
	stopLoad := func() {
		once.Do(func() {
			close(stop)
			wg.Wait()
		})
	}
	defer stopLoad()

	// With Redis up the shared bucket decides for both pods: the limit, then refusals.
	for deadline := time.Now().Add(settleAfter); ; time.Sleep(10 * time.Millisecond) {
		admitted, all := counts()
		if admitted >= limit && all >= 4*limit {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with Redis up: %d admitted of %d calls", admitted, all)
		}
	}
	admitted, before := counts()
	// A call whose script outlives the timeout on a busy host is decided by its pod's own
	// bucket, which still holds its limit before the outage: each such call may add one
	// admission (or cost one, when its script took from the shared bucket all the same). That
	// more than 20 of these calls miss a 50 ms deadline on loopback is far less likely than one
	// in a million (the reasoning is at the end of this test); a pod that decided alone with
	// Redis up would fail it every time.
	early := int(pods[0].metric(t, "trustplane_router_limits_local_total") + pods[1].metric(t, "trustplane_router_limits_local_total"))
	if early > limit {
		t.Fatalf("with Redis up: %d of %d calls decided by the pods' own buckets, want Redis to decide nearly all", early, before)
	}
	if admitted < limit-early || admitted > limit+early {
		t.Fatalf("with Redis up: %d admitted across 2 pods, want the shared limit %d, give or take the %d decided by a pod's own bucket", admitted, limit, early)
	}

	if err := start(srv); err != nil {
		t.Fatal(err)
	}
	time.Sleep(outageFor)
	for i, p := range pods {
		if p.metric(t, "trustplane_router_limits_store_down") != 1 || p.metric(t, "trustplane_router_limits_store_failures_total") == 0 {
			t.Errorf("pod %d during the outage: limits_store_down %v, limits_store_failures_total %v", i, p.metric(t, "trustplane_router_limits_store_down"), p.metric(t, "trustplane_router_limits_store_failures_total"))
		}
	}
	stopLoad()
	if err := end(srv); err != nil {
		t.Fatal(err)
	}

	// Each pod's own buckets decided while Redis was away: each admitted its own limit, and no
	// more (the shared bucket was used up before the outage).
	var perPod [2]int
	var latencies []time.Duration
	for _, r := range results {
		if r.status == http.StatusOK {
			perPod[r.pod]++
		}
		latencies = append(latencies, r.latency)
	}
	outageCalls := len(results) - before
	for i, p := range pods {
		if n := p.metric(t, "trustplane_router_limits_local_total"); n < limit {
			t.Errorf("pod %d decided %v calls with its own buckets during the outage, want at least %d", i, n, limit)
		}
	}
	if total := perPod[0] + perPod[1]; total < 3*limit-early || total > 3*limit+early {
		t.Errorf("admitted %v (per pod) in all: want the shared %d before the outage plus each pod's own %d, give or take the %d decided by a pod's own bucket with Redis up", perPod, limit, limit, early)
	}
	slices.Sort(latencies)
	t.Logf("%d calls before the outage, %d during it; latency p50 %s, p99 %s, max %s", before, outageCalls,
		latencies[len(latencies)/2], latencies[len(latencies)*99/100], latencies[len(latencies)-1])
	if worst := latencies[len(latencies)-1]; worst > bound {
		t.Errorf("a call took %s, over the bound of %s", worst, bound)
	}
	if outageCalls < 10*limit {
		t.Errorf("only %d calls during the outage: too few to use up each pod's own limit", outageCalls)
	}

	// Back: once each pod's breaker has probed Redis and closed, the shared bucket decides
	// again. Probes use another key, so that they do not take from acme's bucket.
	for i, p := range pods {
		for deadline := time.Now().Add(settleAfter); p.metric(t, "trustplane_router_limits_store_down") != 0; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("pod %d never used Redis again", i)
			}
			began := time.Now()
			chatVia(t, http.DefaultClient, p.url, k.limited, chatBody)
			if took := time.Since(began); took > bound {
				t.Errorf("pod %d: a call after the outage took %s, over the bound of %s", i, took, bound)
			}
		}
	}
	// Emptied, the shared bucket admits the limit once across both pods: their own buckets
	// are used up, so only Redis can admit these calls.
	admin, err := limits.NewRedisClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	decided := []float64{pods[0].metric(t, "trustplane_router_limits_local_total"), pods[1].metric(t, "trustplane_router_limits_local_total")}
	again := 0
	for i := 0; i < 3*limit; i++ {
		if code, _ := chatVia(t, http.DefaultClient, pods[i%2].url, k.llm, chatBody); code == http.StatusOK {
			again++
		}
	}
	// A call whose script outlives the timeout on a busy host is decided by its pod's own
	// bucket, used up (time is frozen), and may still have taken from the shared one: each such
	// call may cost one admission, never add one. That more than a third of these 60 sequential
	// calls miss a 50 ms deadline on loopback, with the slowest of a million under load at
	// 66 ms, is far less likely than one in a million; a pod that kept deciding alone would
	// fail it every time.
	local := 0
	for i, p := range pods {
		local += int(p.metric(t, "trustplane_router_limits_local_total") - decided[i])
	}
	if local > limit {
		t.Errorf("after the outage: %d of %d calls decided by the pods' own buckets, want Redis to decide nearly all", local, 3*limit)
	}
	if again > limit || again < limit-local {
		t.Errorf("after the outage: %d of %d calls admitted across 2 pods, want the shared limit %d, less at most the %d decided by a pod's own bucket", again, 3*limit, limit, local)
	}
}
