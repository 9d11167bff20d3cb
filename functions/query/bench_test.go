package query

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustplane/trustplane/clickhouse/chtest/gensql"
	"github.com/trustplane/trustplane/functions/auth"
	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/internal/testsupport"
)

// BenchmarkQuery (make bench-query): 10 million llm calls, 1 million observations and 100,000
// traces over 30 days in the test ClickHouse 18.16, generated inside it; query and auth run as
// processes of their own. It reports, in one run: the dashboard metric (the last 24 h, hourly,
// by model: count, p95 latency, cost) served from the rollup over HTTP, and the same answer
// from the rollup and from raw rows through the reader; the same with a 100-bin latency
// histogram (raw rows); a trace list page; a trace detail;
// and query's peak RSS under 50 concurrent dashboard requests.
func BenchmarkQuery(b *testing.B) {
	const (
		calls  = 10_000_000
		obs    = 1_000_000
		chunk  = 1_000_000
		rounds = 50
	)
	s := store(b)
	end := time.Now().UTC().Truncate(time.Hour)
	start := end.Add(-30 * 24 * time.Hour)
	spec := func(first, n, per uint64) gensql.Spec {
		return gensql.Spec{Tenant: "bench", Project: "p", Start: start, Span: 30 * 24 * time.Hour, First: first, N: n, PerTrace: per}
	}
	t0 := time.Now()
	for first := uint64(0); first < calls; first += chunk {
		if err := s.Conn().Exec(context.Background(), gensql.LLMCalls(spec(first, chunk, 100))); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Conn().Exec(context.Background(), gensql.Observations(spec(0, obs, 10))); err != nil {
		b.Fatal(err)
	}
	if err := s.Conn().Exec(context.Background(), gensql.Traces(spec(0, obs/10, 10))); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d llm calls, %d observations, %d traces in %s", calls, obs, obs/10, time.Since(t0).Round(time.Second))

	// query and auth as processes.
	bin := b.TempDir()
	root, _ := filepath.Abs("../..")
	build := exec.Command("go", "build", "-o", bin+"/", "./functions/query/cmd/query", "./functions/auth/cmd/auth")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	dir := b.TempDir()
	pepperFile, keysFile := filepath.Join(dir, "pepper"), filepath.Join(dir, "keys.json")
	if err := os.WriteFile(pepperFile, bytes.Repeat([]byte("p"), 32), 0o600); err != nil {
		b.Fatal(err)
	}
	pepper, _ := auth.LoadPepper("", pepperFile)
	key, _, err := auth.AddKey(keysFile, pepper, auth.NewKey{Tenant: "bench", Project: "p", Scopes: []authclient.Scope{authclient.ScopeQuery}}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	authPort, queryPort := testsupport.Port(b), testsupport.Port(b)
	run := func(name string, env ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(bin, name))
		cmd.Env = append(os.Environ(), env...)
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	run("auth", "PORT="+strconv.Itoa(authPort), "LISTEN_HOST=127.0.0.1", "AUTH_KEYS_FILE="+keysFile, "AUTH_PEPPER_FILE="+pepperFile)
	q := run("query", "PORT="+strconv.Itoa(queryPort), "LISTEN_HOST=127.0.0.1", "CLICKHOUSE_ADDR="+server.Addr(), "CLICKHOUSE_USER=query",
		"AUTH_URL=http://127.0.0.1:"+strconv.Itoa(authPort), "QUERY_RATE_PER_SECOND=100000", "QUERY_RATE_BURST=100000")
	base := "http://127.0.0.1:" + strconv.Itoa(queryPort)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := client.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("query not ready")
		}
	}
	dashboard := fmt.Sprintf(`{"view":"llm_calls","fromTimestamp":%q,"toTimestamp":%q,"dimensions":[{"field":"model"}],"timeDimension":{"granularity":"hour"},
		"metrics":[{"measure":"count","aggregation":"count"},{"measure":"latency","aggregation":"p95"},{"measure":"cost","aggregation":"sum"}]}`,
		end.Add(-24*time.Hour).Format(time.RFC3339), end.Format(time.RFC3339))
	do := func(method, path, body string) []byte {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, got)
		}
		return got
	}
	p50 := func(f func()) time.Duration {
		f() // warm
		var ds []time.Duration
		for range rounds {
			t := time.Now()
			f()
			ds = append(ds, time.Since(t))
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	if !bytes.Contains(do("POST", "/v1/metrics", dashboard), []byte(`"source":"rollup"`)) {
		b.Fatal("the dashboard is not served from the rollup")
	}
	httpDash := p50(func() { do("POST", "/v1/metrics", dashboard) })

	r := testReader(b, s)
	p := authclient.Principal{Tenant: "bench", Project: "p"}
	plan, bad := decodeMetrics([]byte(dashboard), views(r.features), time.Now(), defaultLimits())
	if bad != nil {
		b.Fatal(bad)
	}
	var fromRollup, fromRaw metricsAnswer
	// The two sides alternate, round by round, so that the host's load weighs on both alike.
	rollupDash, rawDash := alternating(rounds, func() {
		if fromRollup, err = r.metrics(context.Background(), p, plan, false); err != nil {
			b.Fatal(err)
		}
	}, func() {
		if fromRaw, err = r.metrics(context.Background(), p, plan, true); err != nil {
			b.Fatal(err)
		}
	})
	if !sameJSON(fromRollup.Data, fromRaw.Data) || len(fromRaw.Data) < 24 {
		b.Fatalf("the rollup and raw rows answer differently (%d and %d rows)", len(fromRollup.Data), len(fromRaw.Data))
	}
	// A 100-bin latency histogram by model over the same 24 h (raw rows: the rollup keeps no
	// row's value).
	histogram := p50(func() {
		do("POST", "/v1/metrics", strings.Replace(dashboard, `"metrics":[`, `"config":{"bins":100},"metrics":[{"measure":"latency","aggregation":"histogram"},`, 1))
	})
	list := p50(func() { do("GET", "/v1/traces?limit=50", "") })
	rng := rand.New(rand.NewPCG(15, 15))
	detail := p50(func() { do("GET", "/v1/traces/trace-"+strconv.Itoa(rng.IntN(obs/10)), "") })

	// 50 clients at once, 20 dashboards each.
	var wg sync.WaitGroup
	t1 := time.Now()
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				do("POST", "/v1/metrics", dashboard)
			}
		}()
	}
	wg.Wait()
	concurrent := time.Since(t1)
	rss := peakRSSMiB(b, q.Process.Pid)

	b.ReportMetric(float64(httpDash.Microseconds())/1000, "dashboard-http-p50-ms")
	b.ReportMetric(float64(rollupDash.Microseconds())/1000, "dashboard-rollup-p50-ms")
	b.ReportMetric(float64(rawDash.Microseconds())/1000, "dashboard-raw-p50-ms")
	b.ReportMetric(float64(rawDash)/float64(rollupDash), "raw/rollup")
	b.ReportMetric(float64(histogram.Microseconds())/1000, "histogram-100-bins-http-p50-ms")
	b.ReportMetric(float64(list.Microseconds())/1000, "trace-list-p50-ms")
	b.ReportMetric(float64(detail.Microseconds())/1000, "trace-detail-p50-ms")
	b.ReportMetric(1000/concurrent.Seconds(), "dashboards/s@50")
	b.ReportMetric(rss, "query-peak-RSS-MiB")
}

// alternating runs a and b once to warm them, then rounds times each, alternating, and
// returns each one's median.
func alternating(rounds int, a, b func()) (time.Duration, time.Duration) {
	a()
	b()
	var da, db []time.Duration
	for range rounds {
		t := time.Now()
		a()
		da = append(da, time.Since(t))
		t = time.Now()
		b()
		db = append(db, time.Since(t))
	}
	slices.Sort(da)
	slices.Sort(db)
	return da[len(da)/2], db[len(db)/2]
}

// peakRSSMiB reads a process's high-water resident set size (VmHWM).
func peakRSSMiB(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	b.Fatal("no VmHWM")
	return 0
}
