package ingest

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/trustplane/trustplane/functions/auth"
	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/functions/auth/authtest"
	"github.com/trustplane/trustplane/functions/runtime"
	"github.com/trustplane/trustplane/internal/testsupport"
	"github.com/trustplane/trustplane/kafka"
)

// BenchmarkOTLPvsCollector sends the same GenAI spans, in exports of 100 over OTLP/HTTP
// protobuf, to ingest and to the OpenTelemetry Collector (OTLP receiver, contrib's Kafka
// exporter, built from otelbench/, its own module), each a process of its own producing to the
// same real Kafka broker; the sides alternate, OTLP_BENCH_ROUNDS times. A side's run ends when
// every record it owes is in Kafka, so a side that answers before Kafka acknowledged (the
// collector's sending queue) is timed to the same point as one that answers after. Run with
// `make bench-otlp`.
func BenchmarkOTLPvsCollector(b *testing.B) {
	spans := envInt("OTLP_BENCH_SPANS", 100_000)
	rounds := envInt("OTLP_BENCH_ROUNDS", 2)
	const perExport, perTrace, clients = 100, 10, 8
	exports := genAIExports(64, perExport, perTrace)
	bin := b.TempDir()
	build(b, ".", filepath.Join(bin, "ingest"), "./cmd/ingest")
	build(b, "otelbench", filepath.Join(bin, "otelcol"), "./cmd/otelcol")
	authURL, key := benchAuth(b)

	type side struct {
		name string
		// records are what one export of perExport spans writes to Kafka.
		records int
		start   func(topic string) (url string, pid int)
	}
	sides := []side{
		{"ingest", perExport + perExport/perTrace, func(topic string) (string, int) {
			port := testsupport.Port(b)
			pid := startProcess(b, filepath.Join(bin, "ingest"), nil, "PORT="+strconv.Itoa(port), "LISTEN_HOST=127.0.0.1",
				"AUTH_URL="+authURL, "KAFKA_BROKERS="+strings.Join(brokers, ","), "KAFKA_TOPIC="+topic, "LOG_LEVEL=warn")
			return fmt.Sprintf("http://127.0.0.1:%d%s", port, PathTraces), pid
		}},
		{"collector-as-shipped", 1, func(topic string) (string, int) { return startCollector(b, bin, topic, false) }},
		{"collector-partition-traces-by-id", perExport / perTrace, func(topic string) (string, int) { return startCollector(b, bin, topic, true) }},
	}
	for round := range rounds {
		for _, s := range sides {
			b.Run(fmt.Sprintf("%s/round=%d", s.name, round+1), func(b *testing.B) {
				topic := newTopic(b)
				url, pid := s.start(topic)
				waitExportable(b, url, key)
				base := topicRecords(b, topic) // the readiness probes' records
				posts := spans / perExport
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
				var next atomic.Int64
				var lat latencies
				var wg sync.WaitGroup
				cpu0 := cpuSeconds(b, pid)
				start := time.Now()
				for range clients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							i := int(next.Add(1)) - 1
							if i >= posts {
								return
							}
							req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(exports[i%len(exports)]))
							req.Header.Set("Authorization", "Bearer "+key)
							req.Header.Set("Content-Type", contentTypeProtobuf)
							t0 := time.Now()
							resp, err := client.Do(req)
							if err != nil {
								b.Error(err)
								return
							}
							_, _ = io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							if resp.StatusCode != http.StatusOK {
								b.Errorf("status %d", resp.StatusCode)
								return
							}
							lat.add(time.Since(t0))
						}
					}()
				}
				wg.Wait()
				answered := time.Since(start)
				want := base + int64(posts*s.records)
				for deadline := time.Now().Add(2 * time.Minute); topicRecords(b, topic) < want; time.Sleep(20 * time.Millisecond) {
					if time.Now().After(deadline) {
						b.Fatalf("%d of %d records in Kafka after 2 minutes", topicRecords(b, topic)-base, want-base)
					}
				}
				elapsed := time.Since(start)
				cpu := cpuSeconds(b, pid) - cpu0
				slices.Sort(lat.d)
				q := func(p float64) float64 { return float64(lat.d[int(p*float64(len(lat.d)-1))].Microseconds()) / 1000 }
				n := posts * perExport
				b.ReportMetric(float64(n)/elapsed.Seconds(), "spans/s")
				b.ReportMetric(cpu*100_000/float64(n), "CPU-s/100k-spans")
				b.ReportMetric(q(0.50), "p50-ms")
				b.ReportMetric(q(0.99), "p99-ms")
				b.ReportMetric(answered.Seconds(), "answered-s")
				b.ReportMetric(elapsed.Seconds(), "in-kafka-s")
				b.ReportMetric(float64(want-base)/float64(n), "records/span")
				b.ReportMetric(peakRSS(b, pid), "peak-RSS-MiB")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// genAIExports are n OTLP protobuf exports of perExport GenAI chat spans each, in traces of
// perTrace spans (the first of each its root), with ids from a seeded generator.
func genAIExports(n, perExport, perTrace int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	out := make([][]byte, n)
	for i := range out {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "bench-app")
		rs.Resource().Attributes().PutStr("telemetry.sdk.language", "go")
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("bench")
		var traceID pcommon.TraceID
		var rootID pcommon.SpanID
		for j := range perExport {
			s := ss.Spans().AppendEmpty()
			var id pcommon.SpanID
			putRandom(rng, id[:])
			if j%perTrace == 0 {
				putRandom(rng, traceID[:])
				rootID = id
			} else {
				s.SetParentSpanID(rootID)
			}
			s.SetTraceID(traceID)
			s.SetSpanID(id)
			s.SetName("chat gpt-4o-mini")
			s.SetKind(ptrace.SpanKindClient)
			s.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(j) * time.Millisecond)))
			s.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(j)*time.Millisecond + 800*time.Millisecond)))
			a := s.Attributes()
			a.PutStr("gen_ai.operation.name", "chat")
			a.PutStr("gen_ai.provider.name", "openai")
			a.PutStr("gen_ai.request.model", "gpt-4o-mini")
			a.PutStr("gen_ai.response.model", "gpt-4o-mini-2024-07-18")
			a.PutDouble("gen_ai.request.temperature", 0.2)
			a.PutInt("gen_ai.usage.input_tokens", 21)
			a.PutInt("gen_ai.usage.output_tokens", 2)
			a.PutStr("gen_ai.response.id", fmt.Sprintf("chatcmpl-%d-%d", i, j))
			a.PutStr("gen_ai.input.messages", `[{"role":"user","parts":[{"type":"text","content":"What is the capital of France? Answer in one word, please."}]}]`)
			a.PutStr("gen_ai.output.messages", `[{"role":"assistant","parts":[{"type":"text","content":"Paris."}],"finish_reason":"stop"}]`)
		}
		b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		if err != nil {
			panic(err)
		}
		out[i] = b
	}
	return out
}

func putRandom(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	b[0] |= 1 // never all zeros
}

func build(b *testing.B, dir, out, pkg string) {
	b.Helper()
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = dir
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build %s in %s: %v\n%s", pkg, dir, err, msg)
	}
}

// benchAuth is the auth function serving one ingest key, in this process: ingest's client
// caches its answer, so after the first export it costs nothing on either side.
func benchAuth(b *testing.B) (url, key string) {
	pepper := authtest.Pepper(b)
	key, rec, err := auth.NewRecord(pepper, auth.NewKey{Tenant: "bench", Project: "p", Scopes: []authclient.Scope{authclient.ScopeIngest}}, time.Now(), nil)
	if err != nil {
		b.Fatal(err)
	}
	store, err := auth.NewStore(pepper, []auth.Record{rec})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(runtime.CloudEventsHandler(auth.NewHandler(store, slog.New(slog.DiscardHandler))))
	b.Cleanup(srv.Close)
	return srv.URL, key
}

func startProcess(b *testing.B, path string, args []string, env ...string) int {
	b.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr testsupport.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if b.Failed() {
			b.Logf("%s output:\n%s", filepath.Base(path), stderr.String())
		}
	})
	return cmd.Process.Pid
}

// startCollector runs the collector with the OTLP/HTTP receiver and the Kafka exporter in
// their default configuration, but for the broker, the topic and (byTrace) one record per
// trace instead of one per export. Its own telemetry is off, so that it binds no port of its
// own.
func startCollector(b *testing.B, bin, topic string, byTrace bool) (string, int) {
	port := testsupport.Port(b)
	config := fmt.Sprintf(`receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
exporters:
  kafka:
    brokers: [%s]
    traces:
      topic: %s
    partition_traces_by_id: %t
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [kafka]
`, port, strings.Join(brokers, ", "), topic, byTrace)
	file := filepath.Join(b.TempDir(), "otelcol.yaml")
	if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
		b.Fatal(err)
	}
	pid := startProcess(b, filepath.Join(bin, "otelcol"), []string{"--config=file:" + file})
	return fmt.Sprintf("http://127.0.0.1:%d%s", port, PathTraces), pid
}

// waitExportable posts one export until the endpoint answers 200 (it writes records the run
// counts as its base).
func waitExportable(b *testing.B, url, key string) {
	b.Helper()
	probe := genAIExports(1, 1, 1)[0]
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(probe))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", contentTypeProtobuf)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not take an export within 2 minutes", url)
		}
	}
}

// topicRecords is how many records the topic holds (the sum of its partitions' end offsets).
func topicRecords(b *testing.B, topic string) int64 {
	b.Helper()
	client, err := sarama.NewClient(brokers, kafka.NewConfig("bench-offsets"))
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, p := range parts {
		off, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			b.Fatal(err)
		}
		n += off
	}
	return n
}

// peakRSS is a process's peak resident set (VmHWM), in MiB.
func peakRSS(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	b.Fatal("no VmHWM in /proc/<pid>/status")
	return 0
}

// cpuSeconds is the user and system CPU a process has used.
func cpuSeconds(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // clock ticks; 100 per second on Linux
}

// BenchmarkOTLPDecodeAndMap is the part of an export ingest spends the most CPU on: decoding
// one protobuf export of 100 GenAI spans with pdata and mapping it to 110 catalog events,
// validated and stamped.
func BenchmarkOTLPDecodeAndMap(b *testing.B) {
	exports := genAIExports(8, 100, 10)
	m := &Mapper{Prices: testPrices, MaxEventBytes: 1 << 18}
	b.ReportAllocs()
	for i := range b.N {
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(exports[i%len(exports)]); err != nil {
			b.Fatal(err)
		}
		if mapped := m.Map(req.Traces(), fuzzPrincipal); mapped.Rejected > 0 {
			b.Fatal(mapped.Message)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*100), "µs/span")
}
