// Command routerbench measures router's gateway overhead: the same open-loop load (requests
// started at a fixed rate whatever the answers do) is sent to a mock OpenAI upstream directly
// and through a router process in front of it, non-streaming and streaming, and the latency
// percentiles are compared. It also samples the router's resident memory. With -guard it
// measures what the inline content checks add instead: two router processes, one with the
// checks off (ROUTER_GUARD=false) and one with the full built-in policy, requests alternating
// between them.
//
// Everything router needs runs in this process: the mock upstream, the auth function (a real
// key store) and an embedded Kafka-protocol broker for the llm-call events.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/trustplane/trustplane/functions/auth"
	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/functions/runtime"
	"github.com/trustplane/trustplane/internal/testsupport"
	"github.com/trustplane/trustplane/kafka"
	"github.com/trustplane/trustplane/kafka/embedded"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "routerbench:", err)
		os.Exit(1)
	}
}

func run() error {
	routerBin := flag.String("router", "bin/router", "the router binary")
	duration := flag.Duration("duration", 5*time.Second, "how long each rate is held")
	ratesFlag := flag.String("rates", "1000,5000", "request rates to measure, per second")
	promptBytes := flag.Int("prompt-bytes", 0, "make the prompt about this long (a conversation's history; default: one short sentence)")
	guard := flag.Bool("guard", false, "compare router with the content checks off and with the full built-in policy, instead of direct and router")
	sequential := flag.Bool("sequential", false, "measure direct, then router, each alone at the rate (default: alternate requests between them, each at the rate)")
	flag.Parse()
	var rates []int
	for _, s := range strings.Split(*ratesFlag, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || r <= 0 {
			return fmt.Errorf("bad rate %q", s)
		}
		rates = append(rates, r)
	}

	dir, err := os.MkdirTemp("", "routerbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	upstream := httptest.NewServer(http.HandlerFunc(mockUpstream))
	defer upstream.Close()
	authURL, key, closeAuth, err := startAuth()
	if err != nil {
		return err
	}
	defer closeAuth()
	broker, err := embedded.Start(embedded.Config{Partitions: 3})
	if err != nil {
		return err
	}
	defer broker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = kafka.EnsureTopics(ctx, broker.Addrs(), kafka.EventsTopic().ForBrokers(1))
	cancel()
	if err != nil {
		return err
	}

	routing := filepath.Join(dir, "routing.yaml")
	if err := os.WriteFile(routing, []byte(fmt.Sprintf(`
providers: [{name: mock, type: openai-compatible, base_url: %q}]
models: [{name: bench, targets: [{provider: mock, model: bench-upstream}]}]
`, upstream.URL+"/v1")), 0o600); err != nil {
		return err
	}
	startRouter := func(env ...string) (string, *exec.Cmd, error) {
		port, err := testsupport.FreePort()
		if err != nil {
			return "", nil, err
		}
		cmd := exec.Command(*routerBin)
		cmd.Env = append(append(os.Environ(), "PORT="+strconv.Itoa(port), "AUTH_URL="+authURL, "KAFKA_BROKERS="+strings.Join(broker.Addrs(), ","),
			"ROUTER_CONFIG="+routing, "LOG_LEVEL=warn", "ROUTER_CAPTURE=truncated"), env...)
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			return "", nil, fmt.Errorf("start %s: %w (run make build first)", *routerBin, err)
		}
		url := "http://127.0.0.1:" + strconv.Itoa(port)
		return url, cmd, waitReady(url + "/readyz")
	}
	stopRouter := func(cmd *exec.Cmd) {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
	}
	// The subject is the router measured (its overhead, CPU and memory); the reference is what
	// it is compared with.
	routerURL, cmd, err := startRouter()
	if cmd != nil {
		defer stopRouter(cmd)
	}
	if err != nil {
		return err
	}
	refName, subjName, refURL, refAuthz := "direct", "router", upstream.URL, ""
	if *guard {
		offURL, off, err := startRouter("ROUTER_GUARD=false")
		if off != nil {
			defer stopRouter(off)
		}
		if err != nil {
			return err
		}
		refName, subjName, refURL, refAuthz = "guard off", "guard on", offURL, "Bearer "+key
	}

	// Connections are capped so that a stall cannot open thousands of them; requests then
	// queue in the client, and that wait counts in their latency.
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512, IdleConnTimeout: time.Minute}}
	targets := []target{{refName, refURL + "/v1/chat/completions", refAuthz}, {subjName, routerURL + "/v1/chat/completions", "Bearer " + key}}
	filler := "Earlier in this conversation: lorem ipsum dolor sit amet.\n"
	if *guard {
		// Prose, as a conversation's history is: the content checks read it as they read any
		// prompt (lorem ipsum repeated reads to the injection model as an obfuscation).
		filler = "We reviewed the quarterly figures, and sales grew in every region while costs fell slightly.\n"
	}
	prompt := strings.Repeat(filler, *promptBytes/len(filler)) + "Say hello in five words."
	bodies := map[bool][]byte{
		false: []byte(fmt.Sprintf(`{"model":"bench","messages":[{"role":"user","content":%q}]}`, prompt)),
		true:  []byte(fmt.Sprintf(`{"model":"bench","stream":true,"messages":[{"role":"user","content":%q}]}`, prompt)),
	}
	// Warm up connections and the auth cache.
	load(client, targets, bodies[false], 200, time.Second)

	how := fmt.Sprintf("%s and %s requests alternating, each at the rate", refName, subjName)
	if *sequential {
		how = fmt.Sprintf("%s alone, then %s alone, each at the rate", refName, subjName)
	}
	what := "gateway overhead"
	if *guard {
		what = "overhead of the content checks (full built-in policy, both sides)"
	}
	fmt.Printf("%s, %s per step, %s, chat requests of %d bytes, on %s\n\n", what, *duration, how, len(bodies[false]), machine())
	fmt.Printf("| rate (req/s) | mode | %[1]s p50 | %[2]s p50 | overhead p50 | %[1]s p99 | %[2]s p99 | overhead p99 | in-router mean | content checks mean | %[2]s CPU per call | errors | %[2]s RSS peak |\n", refName, subjName)
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, rate := range rates {
		for _, stream := range []bool{false, true} {
			sampler := startRSS(cmd.Process.Pid)
			sum0, n0 := overheadTotals(routerURL)
			gsum0, gn0 := histogramTotals(routerURL, "trustplane_router_guard_seconds")
			cpu0 := cpuTime(cmd.Process.Pid)
			var res []result
			if *sequential {
				for _, tg := range targets {
					res = append(res, load(client, []target{tg}, bodies[stream], rate, *duration)...)
				}
			} else {
				res = load(client, targets, bodies[stream], rate, *duration)
			}
			sum1, n1 := overheadTotals(routerURL)
			gsum1, gn1 := histogramTotals(routerURL, "trustplane_router_guard_seconds")
			cpuPerCall := (cpuTime(cmd.Process.Pid) - cpu0) / time.Duration(max(1, n1-n0))
			rss := sampler.stop()
			inRouter := time.Duration(0)
			if n1 > n0 {
				inRouter = time.Duration((sum1 - sum0) / (n1 - n0) * float64(time.Second))
			}
			checks := "-"
			if gn1 > gn0 {
				checks = ms(time.Duration((gsum1 - gsum0) / (gn1 - gn0) * float64(time.Second)))
			}
			mode := "non-streaming"
			if stream {
				mode = "streaming"
			}
			fmt.Printf("| %d | %s | %s | %s | **%s** | %s | %s | **%s** | %s | %s | %s | %d / %d | %.1f MiB |\n", rate, mode,
				ms(res[0].p50), ms(res[1].p50), ms(res[1].p50-res[0].p50),
				ms(res[0].p99), ms(res[1].p99), ms(res[1].p99-res[0].p99), ms(inRouter), checks, ms(cpuPerCall),
				res[0].errors+res[1].errors, res[0].n+res[1].n, float64(rss)/(1<<20))
		}
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d.Microseconds())/1000) }

func machine() string {
	cpus := 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		cpus = strings.Count(string(b), "processor\t:")
	}
	return fmt.Sprintf("%d CPUs (load generator, mock upstream, auth, Kafka and router share them)", cpus)
}

const completion = `{"id":"chatcmpl-bench","object":"chat.completion","created":1764410400,"model":"bench-upstream",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello there, nice to meet."},"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":14,"completion_tokens":6,"total_tokens":20}}`

var chunks = func() [][]byte {
	var out [][]byte
	for i, w := range []string{"Hello", " there,", " nice", " to", " meet."} {
		role := ""
		if i == 0 {
			role = `"role":"assistant",`
		}
		out = append(out, []byte(fmt.Sprintf(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1764410400,"model":"bench-upstream","choices":[{"index":0,"delta":{%s"content":%q},"finish_reason":null}],"usage":null}`+"\n\n", role, w)))
	}
	out = append(out,
		[]byte(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1764410400,"model":"bench-upstream","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}`+"\n\n"),
		[]byte(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1764410400,"model":"bench-upstream","choices":[],"usage":{"prompt_tokens":14,"completion_tokens":6,"total_tokens":20}}`+"\n\n"),
		[]byte("data: [DONE]\n\n"))
	return out
}()

// mockUpstream answers like OpenAI, instantly: a completion, or a stream of chunks.
func mockUpstream(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if !bytes.Contains(body, []byte(`"stream":true`)) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, completion)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	f := w.(http.Flusher)
	for _, c := range chunks {
		_, _ = w.Write(c)
		f.Flush()
	}
}

func startAuth() (url, key string, stop func(), err error) {
	pepper, err := auth.NewPepper(bytes.Repeat([]byte("b"), 32))
	if err != nil {
		return "", "", nil, err
	}
	key, rec, err := auth.NewRecord(pepper, auth.NewKey{Tenant: "bench", Project: "bench", Scopes: []authclient.Scope{authclient.ScopeLLM}}, time.Now(), func(string) bool { return false })
	if err != nil {
		return "", "", nil, err
	}
	store, err := auth.NewStore(pepper, []auth.Record{rec})
	if err != nil {
		return "", "", nil, err
	}
	srv := httptest.NewServer(runtime.CloudEventsHandler(auth.NewHandler(store, slog.New(slog.DiscardHandler))))
	return srv.URL, key, srv.Close, nil
}

type target struct {
	name, url, authz string
}

type result struct {
	n, errors int
	p50, p99  time.Duration
}

// load sends requests to the targets in turn, starting them at rate per second per target
// for d whatever the answers do (open loop), and measures each from its start to the end of
// its body. Interleaving makes every target see the same machine: on a shared machine the
// background load changes from second to second.
func load(client *http.Client, targets []target, body []byte, rate int, d time.Duration) []result {
	perTarget := int(float64(rate) * d.Seconds())
	total := perTarget * len(targets)
	lat := make([]time.Duration, total)
	failed := make([]bool, total)
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rate*len(targets))
	start := time.Now()
	for i := 0; i < total; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		wg.Add(1)
		go func(i int, tg target) {
			defer wg.Done()
			t0 := time.Now()
			req, _ := http.NewRequest(http.MethodPost, tg.url, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if tg.authz != "" {
				req.Header.Set("Authorization", tg.authz)
			}
			resp, err := client.Do(req)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != http.StatusOK {
					err = errors.New(resp.Status)
				}
			}
			lat[i], failed[i] = time.Since(t0), err != nil
		}(i, targets[i%len(targets)])
	}
	wg.Wait()
	out := make([]result, len(targets))
	for k := range targets {
		var ok []time.Duration
		for i := k; i < total; i += len(targets) {
			if failed[i] {
				out[k].errors++
				continue
			}
			ok = append(ok, lat[i])
		}
		sort.Slice(ok, func(i, j int) bool { return ok[i] < ok[j] })
		out[k].n = perTarget
		if len(ok) > 0 {
			out[k].p50, out[k].p99 = ok[len(ok)*50/100], ok[min(len(ok)-1, len(ok)*99/100)]
		}
	}
	return out
}

// rssSampler records the highest VmRSS of a process.
type rssSampler struct {
	done chan struct{}
	peak chan int64
}

func startRSS(pid int) *rssSampler {
	s := &rssSampler{done: make(chan struct{}), peak: make(chan int64, 1)}
	go func() {
		var peak int64
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			peak = max(peak, vmRSS(pid))
			select {
			case <-s.done:
				s.peak <- peak
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) stop() int64 {
	close(s.done)
	return <-s.peak
}

func vmRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpuTime is the user plus system CPU time a process has used (/proc/<pid>/stat, in clock
// ticks of 10ms).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start after the last ')'.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// overheadTotals reads router's own measure of its overhead (total minus provider time) from
// its metrics: the histogram's sum in seconds and its count.
func overheadTotals(routerURL string) (sum, count float64) {
	return histogramTotals(routerURL, "trustplane_router_gateway_overhead_seconds")
}

// histogramTotals reads a histogram's sum and count from router's metrics.
func histogramTotals(routerURL, metric string) (sum, count float64) {
	resp, err := http.Get(routerURL + "/metrics")
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, _ := strconv.ParseFloat(strings.TrimSpace(value), 64)
		switch name {
		case metric + "_sum":
			sum = v
		case metric + "_count":
			count = v
		}
	}
	return sum, count
}

func waitReady(url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("router at %s not ready", url)
}
