package persist

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/functions/runtime"
	"github.com/trustplane/trustplane/internal/testsupport"
)

// The write path: rows/s through persist's group commit (each delivery's rows submitted on their
// own, sharing inserts with the deliveries in flight), and through persist whole (binary-mode
// HTTP deliveries to persist running in a process of its own, whose CPU time and peak RSS are
// reported), against a raw clickhouse-go batch insert of the same rows. Decoding alone is
// BenchmarkDecode.
// Run with: go test -run '^$' -bench . ./functions/persist/

const (
	benchRows        = 20000
	benchConcurrency = 2000 // deliveries in flight, as the dispatcher keeps them
)

var benchText = `{"text":"` + strings.Repeat("lorem ipsum ", 85) + `"}`

// benchData is the data of the i-th benchmark observation, ~2.3 KB.
func benchData(i int) string {
	return fmt.Sprintf(`{"id":"obs-%d","trace_id":"trace-%d","type":"GENERATION","name":"llm","start_time":"2026-11-29T10:00:00Z","end_time":"2026-11-29T10:00:01Z",`+
		`"model":"gpt-x","input":%s,"output":%s,"usage":{"prompt_tokens":100,"completion_tokens":200,"total_tokens":300},"cost":{"total":0.001},"metadata":{"k":"v"}}`,
		i, i/10, benchText, benchText)
}

func benchEvents(n int) []cloudevents.Event {
	out := make([]cloudevents.Event, n)
	for i := range out {
		out[i] = telemetry(fmt.Sprintf("evt-%d", i), catalog.TypeObservation, benchData(i))
	}
	return out
}

func BenchmarkWritePath(b *testing.B) {
	events := benchEvents(benchRows)
	ctx := context.Background()

	batches := make([]clickhouse.Batch, len(events))
	for i, e := range events {
		batch, err := Rows(e, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		batches[i] = batch
	}

	// The raw insert in batches of as many rows as deliveries are in flight (the most one group
	// commit can gather), and in larger batches of 5,000.
	for _, size := range []int{benchConcurrency, 5000} {
		b.Run(fmt.Sprintf("raw-clickhouse-go-batch-%d", size), func(b *testing.B) {
			st := openStore(b)
			query := "INSERT INTO " + st.MigrateOptions().Database + ".observations (tenant_id, project_id, id, event_source, event_id, version, " +
				"metadata_keys, metadata_values, trace_id, parent_observation_id, type, name, start_time, end_time, completion_start_time, model, " +
				"model_parameters, input, output, prompt_tokens, completion_tokens, total_tokens, input_cost, output_cost, total_cost, level, status_message)"
			rows := make([]clickhouse.Observation, len(batches))
			for i, batch := range batches {
				rows[i] = batch.Observations[0]
			}
			for b.Loop() {
				for start := 0; start < len(rows); start += size {
					batch, err := st.Conn().PrepareBatch(ctx, query)
					if err != nil {
						b.Fatal(err)
					}
					for _, o := range rows[start:min(start+size, len(rows))] {
						if err := batch.Append(o.TenantID, o.ProjectID, o.ID, o.EventSource, o.EventID, o.Version,
							[]string{"k"}, []string{"v"}, o.TraceID, o.ParentObservationID, o.Type, o.Name, o.StartTime, o.EndTime,
							time.Unix(0, 0).UTC(), o.Model, o.ModelParameters, o.Input, o.Output, o.PromptTokens, o.CompletionTokens,
							o.TotalTokens, o.InputCost, o.OutputCost, o.TotalCost, o.Level, o.StatusMessage); err != nil {
							b.Fatal(err)
						}
					}
					if err := batch.Send(); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(benchRows*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}

	b.Run(fmt.Sprintf("persist-group-commit-%d-in-flight", benchConcurrency), func(b *testing.B) {
		st := openStore(b)
		cfg := defaultConfig(b)
		reg := prometheus.NewRegistry()
		g := NewGroupCommit(st, cfg.GroupCommit(), nil, reg)
		defer g.Close(ctx)
		for b.Loop() {
			// Each of the deliveries in flight is a client of its own, as the broker's are:
			// it sends its next rows as soon as the previous ones are stored.
			var wg sync.WaitGroup
			for w := range benchConcurrency {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < len(batches); i += benchConcurrency {
						if err := g.Write(ctx, batches[i]); err != nil {
							b.Error(err)
						}
					}
				}()
			}
			wg.Wait()
		}
		b.ReportMetric(float64(benchRows*b.N)/b.Elapsed().Seconds(), "rows/s")
		var h prometheusHistogram
		h.read(b, reg, "trustplane_persist_batch_rows")
		b.ReportMetric(float64(h.sum)/float64(h.count), "rows/insert")
		var ins prometheusHistogram
		ins.read(b, reg, "trustplane_persist_insert_seconds")
		b.ReportMetric(ins.sumf/float64(ins.count)*1000, "ms/insert")
	})

	b.Run(fmt.Sprintf("persist-http-%d-in-flight", benchConcurrency), func(b *testing.B) {
		p := startPersist(b, openStore(b).MigrateOptions().Database)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchConcurrency, MaxConnsPerHost: benchConcurrency}}
		ingestTime := time.Now().UTC().Format(time.RFC3339Nano)
		cpu := p.cpuTime(b)
		for b.Loop() {
			next := make(chan int)
			var wg sync.WaitGroup
			for range benchConcurrency {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range next {
						if err := deliverBinary(client, p.url, i, ingestTime); err != nil {
							b.Error(err)
						}
					}
				}()
			}
			for i := range benchRows {
				next <- i
			}
			close(next)
			wg.Wait()
		}
		cpu = p.cpuTime(b) - cpu
		b.ReportMetric(float64(benchRows*b.N)/b.Elapsed().Seconds(), "rows/s")
		b.ReportMetric(float64(cpu.Microseconds())/float64(benchRows*b.N), "persist-cpu-µs/delivery")
		b.ReportMetric(p.peakRSS(b), "persist-peak-RSS-MiB")
		b.ReportMetric(p.metric(b, "trustplane_persist_batch_rows_sum")/p.metric(b, "trustplane_persist_batch_rows_count"), "rows/insert")
	})
}

// deliverBinary posts the i-th observation as the broker delivers it: binary mode, with the
// extensions ingest stamps.
func deliverBinary(client *http.Client, url string, i int, ingestTime string) error {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(benchData(i)))
	if err != nil {
		return err
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("Ce-Specversion", "1.0")
	h.Set("Ce-Id", "evt-"+strconv.Itoa(i))
	h.Set("Ce-Source", "/bench")
	h.Set("Ce-Type", catalog.TypeObservation)
	h.Set("Ce-Tenantid", "acme")
	h.Set("Ce-Projectid", "web")
	h.Set("Ce-Ingesttime", ingestTime)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("delivery %d: %d %s", i, resp.StatusCode, body)
	}
	return nil
}

// Environment of the persist process the delivery benchmark starts: the test binary itself,
// serving persist (see TestMain).
const (
	benchServeEnv      = "PERSIST_BENCH_SERVE"
	benchCPUProfileEnv = "PERSIST_BENCH_CPUPROFILE"
)

type persistProcess struct {
	pid int
	url string
}

// startPersist runs persist, with the configuration a deployment gets, in a child process
// writing to database. PERSIST_BENCH_CPUPROFILE names a file for the child's CPU profile.
func startPersist(b *testing.B, database string) *persistProcess {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), benchServeEnv+"=1", "CLICKHOUSE_ADDR="+server.Addr(), "CLICKHOUSE_DATABASE="+database, "LOG_LEVEL=warn")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	b.Cleanup(func() {
		stdin.Close() // the child drains and exits when its stdin closes
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("persist process did not start: %v", err)
	}
	return &persistProcess{pid: cmd.Process.Pid, url: "http://" + strings.TrimSpace(addr)}
}

// cpuTime is the user plus system CPU time the process used so far.
func (p *persistProcess) cpuTime(b *testing.B) time.Duration {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses: state is the first, utime and
	// stime (in clock ticks of 1/100 s) the 12th and 13th.
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("cannot read /proc/%d/stat: %s", p.pid, raw)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// metric reads one sample of the process's /metrics.
func (p *persistProcess) metric(b *testing.B, name string) float64 {
	b.Helper()
	resp, err := http.Get(p.url + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				b.Fatal(err)
			}
			return f
		}
	}
	b.Fatalf("no metric %s", name)
	return 0
}

// peakRSS is the process's peak resident set size (VmHWM) in MiB.
func (p *persistProcess) peakRSS(b *testing.B) float64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(raw)) {
		if kb, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(kb), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return n / 1024
		}
	}
	b.Fatalf("no VmHWM in /proc/%d/status", p.pid)
	return 0
}

// benchServe is the child process of startPersist: it serves persist on a free port, prints the
// address, and shuts down (writing what is pending) when its stdin closes.
func benchServe() int {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	if err := serveForBench(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "persist:", err)
		return 1
	}
	return 0
}

func serveForBench(ctx context.Context) error {
	var cfg Config
	if err := runtime.LoadConfig(&cfg); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fn, err := New(ctx, cfg, log)
	if err != nil {
		return err
	}
	srv := runtime.NewServer("persist", cfg.Common, log)
	fn.Mount(srv)
	stopProfile, err := testsupport.CPUProfile(benchCPUProfileEnv)
	if err != nil {
		return err
	}
	defer stopProfile()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	return srv.Serve(ctx, ln)
}

// BenchmarkDecode is the per-delivery CPU cost of checking an event against its schema and
// mapping it to a row (observations with ~1 KB of input and of output).
func BenchmarkDecode(b *testing.B) {
	events := benchEvents(100)
	for i := 0; b.Loop(); i++ {
		if _, err := Rows(events[i%len(events)], time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
