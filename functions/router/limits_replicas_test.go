package router

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/functions/router/limits"
	"github.com/trustplane/trustplane/functions/router/openai"
	"github.com/trustplane/trustplane/functions/router/redistest"
)

// replica is one router pod: a gateway with its own limiter, Redis connections and metrics.
type replica struct {
	url     string
	metrics *prometheus.Registry
}

// metric is the value of the replica's counter or gauge name.
func (r replica) metric(t *testing.T, name string) float64 {
	t.Helper()
	families, err := r.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			if m := f.GetMetric()[0]; m.Counter != nil {
				return m.Counter.GetValue()
			}
			return f.GetMetric()[0].Gauge.GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// replicas starts n gateways sharing the Redis server srv, as n pods share one Redis. Bucket
// time is frozen, so that no bucket refills while a test runs.
func replicas(t *testing.T, k keys, srv *redistest.Server, n int, routingYAML string, timeout time.Duration) []replica {
	t.Helper()
	var out []replica
	for i := 0; i < n; i++ {
		reg := prometheus.NewRegistry()
		l := limits.NewLimiter(redisStoreAt(t, srv), limits.Options{Timeout: timeout, Registerer: reg})
		_, gw := serve(t, k, routingYAML, Options{Limiter: l, Now: func() time.Time { return frozen }})
		out = append(out, replica{url: gw.URL, metrics: reg})
	}
	return out
}

// oneConnection is a client that keeps one connection: a server reads a connection's next
// request only once the handler of the one before has returned, its bookkeeping (the budget's
// charge) included. So each worker with its own has at most one call in flight, admitted but
// not yet charged: with w workers, at most w calls are in flight.
func oneConnection() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
}

func chatVia(t *testing.T, c *http.Client, base, key, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+PathChat, strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// budgetRoute: a mock call of budgetBody costs $0.005 (5 tokens at $1,000 per million; the
// price makes a call an exact number of micro-dollars), and takes 5 ms, so that calls overlap.
const budgetRoute = `
providers: [{name: m, type: mock, latency: 5ms}]
models:
  - name: gpt
    targets: [{provider: m, model: mock}]
prices:
  mock: {input_per_mtok: 1000, output_per_mtok: 1000}
limits:
  tenant: {usd_per_day: %v}
`

const (
	budgetBody     = `{"model":"gpt","messages":[{"role":"user","content":"Hi"}]}`
	budgetCallCost = 0.005
)

// A USD budget shared by 3 replicas through Redis admits, all replicas together, no more calls
// than the budget pays for plus the calls in flight when it ran out, whether the calls come in
// a burst, at a steady pace, or against a budget smaller than one call.
func TestBudgetAcrossThreeReplicasOvershootsByAtMostTheCallsInFlight(t *testing.T) {
	for _, c := range []struct {
		name          string
		budgetCalls   float64 // the budget, in calls
		workers, each int     // workers, each sending its calls one after the other
		pause         time.Duration
	}{
		{name: "burst", budgetCalls: 10, workers: 30, each: 10},
		{name: "steady", budgetCalls: 10, workers: 3, each: 20, pause: 10 * time.Millisecond},
		{name: "tiny budget, burst", budgetCalls: 0.5, workers: 30, each: 3},
		{name: "tiny budget, one at a time", budgetCalls: 0.5, workers: 1, each: 30},
	} {
		t.Run(c.name, func(t *testing.T) {
			k := newKeys(t)
			rs := replicas(t, k, redistest.Start(t), 3, fmt.Sprintf(budgetRoute, c.budgetCalls*budgetCallCost), time.Second)
			var admitted, refused atomic.Int64
			var wg sync.WaitGroup
			for w := 0; w < c.workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// One replica per worker, so its one connection keeps one call in flight.
					client, base := oneConnection(), rs[w%len(rs)].url
					for i := 0; i < c.each; i++ {
						switch code, body := chatVia(t, client, base, k.llm, budgetBody); code {
						case http.StatusOK:
							var r openai.ChatResponse
							if err := json.Unmarshal(body, &r); err != nil || r.Usage == nil || r.Usage.TotalTokens != 5 {
								t.Errorf("answer %s: want 5 tokens, costing $%v", body, budgetCallCost)
							}
							admitted.Add(1)
						case http.StatusTooManyRequests:
							if !strings.Contains(string(body), "USD per day of tenant:acme") {
								t.Errorf("refusal %s", body)
							}
							refused.Add(1)
						default:
							t.Errorf("status %d: %s", code, body)
						}
						time.Sleep(c.pause)
					}
				}()
			}
			wg.Wait()
			for i, r := range rs {
				if n := r.metric(t, "trustplane_router_limits_local_total"); n != 0 {
					t.Errorf("replica %d decided %v calls without Redis", i, n)
				}
			}
			// A call is admitted while any budget is left: the whole budget is used, and at
			// most the calls in flight (one per worker) pass it.
			paid := int64(c.budgetCalls + 0.999)
			least, most := min(paid, int64(c.workers*c.each)), paid+int64(c.workers)
			if c.workers == 1 {
				most = paid // one at a time: the charge is made before the next call is read
			}
			n := admitted.Load()
			t.Logf("admitted %d, refused %d; budget pays for %v calls, %d workers", n, refused.Load(), c.budgetCalls, c.workers)
			if n < least || n > most {
				t.Errorf("admitted %d calls across 3 replicas, want %d to %d (the budget's %v calls plus at most one in flight per worker)", n, least, most, c.budgetCalls)
			}
			if n+refused.Load() != int64(c.workers*c.each) {
				t.Errorf("admitted %d + refused %d != %d calls", n, refused.Load(), c.workers*c.each)
			}
		})
	}
}
