package persist

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/trustplane/trustplane/clickhouse/chtest"
	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/functions/runtime"
	"github.com/trustplane/trustplane/internal/testsupport"
)

func counterValue(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	for k, v := range want {
		found := false
		for _, l := range m.GetLabel() {
			found = found || l.GetName() == k && l.GetValue() == v
		}
		if !found {
			return false
		}
	}
	return true
}

// waitReadyz polls persist's /readyz until it answers code and returns the body.
func waitReadyz(t *testing.T, base string, code int) string {
	t.Helper()
	for {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == code {
			return body.String()
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// While ClickHouse is stalled (SIGSTOP: connections stay open, nothing answers), persist
// answers every delivery 503 and /readyz 503 naming ClickHouse, and its log stays readable: a
// few lines per failure kind and RepeatInterval, not one per delivery. Before, every delivery
// logged an ERROR of its own: 4,800 lines in a 30 s stall with the broker retrying.
func TestStalledClickHouseIsLoggedPerIntervalNotPerDelivery(t *testing.T) {
	own := chtest.Start(t)
	// Killed at the end: the connections the stall left hold 18.16's graceful shutdown for 10 s.
	t.Cleanup(own.Kill)
	t.Setenv("CLICKHOUSE_ADDR", own.Addr())
	t.Setenv("CLICKHOUSE_DATABASE", "stalled")
	// Short enough that the stalled inserts end within the test; the broker's retries would
	// bring the deliveries back.
	t.Setenv("PERSIST_INSERT_TIMEOUT", "500ms")
	var cfg Config
	if err := runtime.LoadConfig(&cfg); err != nil {
		t.Fatal(err)
	}
	var logs testsupport.Log
	ctx, cancel := context.WithCancel(context.Background())
	fn, err := New(ctx, cfg, logs.Logger())
	if err != nil {
		t.Fatal(err)
	}
	srv := runtime.NewServer("persist", cfg.Common, logs.Logger())
	srv.ReadyInterval, srv.ReadyTimeout = 10*time.Millisecond, 100*time.Millisecond
	fn.Mount(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	base := "http://" + ln.Addr().String()
	waitReadyz(t, base, http.StatusOK)
	// An insert gets only 500 ms here, which a busy ClickHouse can miss (just after the stall it
	// also works through what the stalled connections sent): like the broker, the test sends a
	// delivery answered 503 again, for up to 30 s, which only a stalled machine uses up.
	storedWithRetries := func(id, data string) (int, string) {
		code, body := postBinary(t, base, binaryHeaders(id, catalog.TypeTrace), data)
		for deadline := time.Now().Add(30 * time.Second); code == http.StatusServiceUnavailable && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
			code, body = postBinary(t, base, binaryHeaders(id, catalog.TypeTrace), data)
		}
		return code, body
	}
	if code, body := storedWithRetries("before", `{"id":"t0","timestamp":"2026-11-29T10:00:00Z"}`); code != http.StatusOK {
		t.Fatalf("delivery before the stall: %d %s", code, body)
	}
	failedBefore := counterValue(t, fn.Metrics, "trustplane_persist_events_total", map[string]string{"outcome": "failed"})

	if err := own.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			_ = own.Resume()
		}
	})
	stalled := time.Now()
	before := len(logs.Lines())
	// The ping fails by its own read deadline (from the check's context) or by the check's
	// timeout, whichever comes first: either way /readyz names ClickHouse.
	if body := waitReadyz(t, base, http.StatusServiceUnavailable); !strings.HasPrefix(body, "clickhouse: ") {
		t.Errorf("/readyz during the stall: %q, want it to name ClickHouse", body)
	}
	const deliveries = 300
	var wg sync.WaitGroup
	codes := make([]int, deliveries)
	for i := range deliveries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = postBinary(t, base, binaryHeaders(fmt.Sprint("e", i), catalog.TypeTrace),
				fmt.Sprintf(`{"id":"t%d","timestamp":"2026-11-29T10:00:00Z"}`, i))
		}()
	}
	wg.Wait()
	elapsed := time.Since(stalled)
	for i, code := range codes {
		if code != http.StatusServiceUnavailable {
			t.Fatalf("delivery %d during the stall: %d, want 503 for the broker to retry", i, code)
		}
	}
	lines := testsupport.AtLeast(logs.Lines()[before:], slog.LevelWarn)
	// Two failure kinds (the insert, the delivery), each a line at first and at most one per
	// RepeatInterval after that, so the bound depends on the stall's length, not on the
	// deliveries: lines of one kind are at least an interval apart.
	bound := 2 * (1 + int(elapsed/runtime.RepeatInterval))
	if len(lines) > bound || len(lines) == 0 {
		t.Fatalf("%d warning/error lines for %d deliveries in a %s stall, want 1 to %d:\n%v", len(lines), deliveries, elapsed.Round(time.Millisecond), bound, lines)
	}
	for _, l := range lines {
		if l["error"] == nil {
			t.Errorf("a failure line without the error: %v", l)
		}
	}
	reg := fn.Metrics
	if n := counterValue(t, reg, "trustplane_persist_events_total", map[string]string{"outcome": "failed"}) - failedBefore; n != deliveries {
		t.Errorf("events_total{outcome=failed} = %v, want %d: the counts are in the metrics", n, deliveries)
	}
	if n := counterValue(t, reg, "trustplane_persist_insert_failures_total", nil); n < 1 {
		t.Errorf("insert_failures_total = %v, want the failed inserts counted", n)
	}
	t.Logf("%d deliveries in a %s stall: %d warning/error lines (%v failed inserts)", deliveries, elapsed.Round(time.Millisecond), len(lines),
		counterValue(t, reg, "trustplane_persist_insert_failures_total", nil))

	if err := own.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	waitReadyz(t, base, http.StatusOK)
	if code, body := storedWithRetries("after", `{"id":"t1","timestamp":"2026-11-29T10:00:00Z"}`); code != http.StatusOK {
		t.Fatalf("delivery after the stall: %d %s", code, body)
	}
}
