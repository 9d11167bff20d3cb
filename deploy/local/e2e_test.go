package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/IBM/sarama"
	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/trustplane/trustplane/clickhouse/chtest"
	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/internal/testsupport"
	tpkafka "github.com/trustplane/trustplane/kafka"
	"github.com/trustplane/trustplane/kafka/kafkatest"
)

// The end-to-end tests run the one-machine runner exactly as `make run` does (every function a
// child process built from its main package, the dispatcher following eventing/config), but
// against a real Apache Kafka broker and a real ClickHouse server started here.

type plane struct {
	key     string
	ingest  string
	router  string
	query   string // query's base URL
	db      ch.Conn
	brokers []string
	pids    map[string]int
	// depDirs names the directory of each dependency's server (kafka, clickhouse), which
	// appears on its command line.
	depDirs map[string]string
	client  *http.Client
	persist string // persist's base URL, for its metrics
	guard   string // guard's base URL, for its metrics
}

func startPlane(t testing.TB, tlsFiles ...string) plane {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := binaries(t)
	kafka := kafkatest.Start(t)
	chs := chtest.Start(t)

	o := options{
		dir: t.TempDir(), bin: bin, triggers: filepath.Join(root, "eventing", "config"),
		ingestPort: testsupport.Port(t), authPort: testsupport.Port(t), persistPort: testsupport.Port(t), dispatcherPort: testsupport.Port(t), routerPort: testsupport.Port(t), guardPort: testsupport.Port(t),
		queryPort: testsupport.Port(t), batchPort: testsupport.Port(t), pingSources: filepath.Join(root, "deploy", "base", "functions", "batch.yaml"),
		kafkaBrokers: strings.Join(kafka.Addrs(), ","), clickhouseAddr: chs.Addr(),
	}
	ready := make(chan string, 1)
	o.ready = ready
	pids := map[string]int{}
	o.started = func(name string, pid int) { pids[name] = pid }
	scheme := "http"
	if len(tlsFiles) == 2 {
		o.tlsCert, o.tlsKey, scheme = tlsFiles[0], tlsFiles[1], "https"
	}
	ctx, cancel := context.WithCancel(context.Background())
	// finished closes once start has returned result, so that the cleanup and the wait below
	// may both wait for it.
	finished := make(chan struct{})
	var result error
	logs := &testsupport.Buffer{}
	go func() {
		result = start(ctx, o, slog.New(slog.NewJSONHandler(logs, nil)), io.Discard, logs)
		close(finished)
	}()
	t.Cleanup(func() {
		cancel()
		<-finished
		if result != nil {
			t.Errorf("runner: %v", result)
		}
		if t.Failed() {
			t.Logf("runner logs:\n%s", logs.String())
		}
	})
	var key string
	select {
	case key = <-ready:
	case <-finished:
		t.Fatalf("runner stopped before ready: %v\n%s", result, logs.String())
	case <-time.After(3 * time.Minute):
		t.Fatalf("runner not ready in time\n%s", logs.String())
	}
	if strings.Contains(logs.String(), key) {
		t.Fatal("the demo key appears in the logs")
	}
	db, err := ch.Open(&ch.Options{Addr: []string{chs.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return plane{key: key, router: fmt.Sprintf("http://127.0.0.1:%d", o.routerPort), query: fmt.Sprintf("http://127.0.0.1:%d", o.queryPort), ingest: fmt.Sprintf("%s://127.0.0.1:%d", scheme, o.ingestPort), db: db,
		brokers: kafka.Addrs(), pids: pids, depDirs: map[string]string{"kafka": kafka.Dir(), "clickhouse": chs.Config().Dir}, client: http.DefaultClient, persist: fmt.Sprintf("http://127.0.0.1:%d", o.persistPort),
		guard: fmt.Sprintf("http://127.0.0.1:%d", o.guardPort)}
}

func (p plane) post(t testing.TB, key string, header map[string]string, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.ingest, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// count returns how many rows of table carry the given event id, as analytics see them
// (FINAL collapses duplicates).
func (p plane) count(t testing.TB, table, column, id string) uint64 {
	t.Helper()
	var n uint64
	q := fmt.Sprintf("SELECT count() FROM trustplane.%s FINAL WHERE %s = ?", table, column)
	if err := p.db.QueryRow(context.Background(), q, id).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// eventually polls until the count is want, or fails after a generous bound.
func (p plane) eventually(t testing.TB, table, column, id string, want uint64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := p.count(t, table, column, id)
		if got == want {
			return
		}
		if got > want || time.Now().After(deadline) {
			t.Fatalf("%s rows with %s=%s: %d, want %d", table, column, id, got, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// persistMetrics reads persist's metrics, each value under its name with its labels as
// exposed (`trustplane_persist_events_total{outcome="stored"}`).
func (p plane) persistMetrics(t testing.TB) map[string]float64 {
	t.Helper()
	return metrics(t, p.persist)
}

// metrics reads the metrics a function at base exposes, as persistMetrics does.
func metrics(t testing.TB, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]float64{}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) == 2 && !strings.HasPrefix(line, "#") {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatalf("persist metric %q: %v", line, err)
			}
			m[f[0]] = v
		}
	}
	return m
}

func ce(id, typ, data string) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/e2e","type":%q,"data":%s}`, id, typ, data)
}

func TestEndToEnd(t *testing.T) {
	p := startPlane(t)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	structured := map[string]string{"Content-Type": "application/cloudevents+json"}

	// Binary mode.
	if code := p.post(t, p.key, map[string]string{
		"Ce-Specversion": "1.0", "Ce-Id": "bin-1", "Ce-Source": "/e2e", "Ce-Type": catalog.TypeTrace,
		"Ce-Tenantid": "intruder", "Content-Type": "application/json",
	}, `{"id":"trace-bin","timestamp":"`+now+`","name":"binary"}`); code != http.StatusAccepted {
		t.Fatalf("binary: %d", code)
	}
	// Structured mode.
	if code := p.post(t, p.key, structured, ce("str-1", catalog.TypeObservation,
		`{"id":"obs-str","trace_id":"trace-bin","type":"GENERATION","start_time":"`+now+`","model":"m","usage":{"total_tokens":42},"cost":{"total":0.5}}`)); code != http.StatusAccepted {
		t.Fatalf("structured: %d", code)
	}
	// Batch mode: two good events and one with bad data.
	batch := "[" + ce("bat-1", catalog.TypeScore, `{"id":"score-1","trace_id":"trace-bin","name":"q","value":1,"timestamp":"`+now+`"}`) + "," +
		ce("bat-2", catalog.TypeTrace, `{"id":"trace-bat","timestamp":"`+now+`"}`) + "," +
		ce("bat-bad", catalog.TypeTrace, `{"id":"trace-bad","timestamp":"not a time"}`) + "]"
	if code := p.post(t, p.key, map[string]string{"Content-Type": "application/cloudevents-batch+json"}, batch); code != http.StatusMultiStatus {
		t.Fatalf("batch: %d", code)
	}
	// Rejected outright: bad key, no key, bad payload.
	if code := p.post(t, "tp_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", structured,
		ce("badkey-1", catalog.TypeTrace, `{"id":"trace-badkey","timestamp":"`+now+`"}`)); code != http.StatusUnauthorized {
		t.Fatalf("bad key: %d", code)
	}
	if code := p.post(t, "", structured, ce("nokey-1", catalog.TypeTrace, `{"id":"trace-nokey","timestamp":"`+now+`"}`)); code != http.StatusUnauthorized {
		t.Fatalf("no key: %d", code)
	}
	if code := p.post(t, p.key, structured, ce("badpayload-1", catalog.TypeTrace, `{"id":"trace-badpayload"}`)); code != http.StatusBadRequest {
		t.Fatalf("bad payload: %d", code)
	}

	// Every accepted event is stored exactly once, with the key's tenant.
	p.eventually(t, "traces", "id", "trace-bin", 1)
	p.eventually(t, "observations", "id", "obs-str", 1)
	p.eventually(t, "scores", "id", "score-1", 1)
	p.eventually(t, "traces", "id", "trace-bat", 1)
	var tenant string
	var tokens uint64
	if err := p.db.QueryRow(context.Background(), "SELECT tenant_id FROM trustplane.traces FINAL WHERE id = 'trace-bin'").Scan(&tenant); err != nil || tenant != "demo" {
		t.Fatalf("tenant of trace-bin: %q (%v), want demo", tenant, err)
	}
	if err := p.db.QueryRow(context.Background(), "SELECT total_tokens FROM trustplane.observations FINAL WHERE id = 'obs-str'").Scan(&tokens); err != nil || tokens != 42 {
		t.Fatalf("tokens of obs-str: %d (%v)", tokens, err)
	}
	// Every rejected one is absent. The accepted ones above were posted before and after them
	// and are all visible, so the rejected ones had their chance to arrive.
	for _, id := range []string{"trace-bad", "trace-badkey", "trace-nokey", "trace-badpayload"} {
		if n := p.count(t, "traces", "id", id); n != 0 {
			t.Errorf("rejected %s stored %d times", id, n)
		}
	}

	// Re-posting the same event (same source and id) never counts twice.
	for range 2 {
		if code := p.post(t, p.key, structured, ce("dup-1", catalog.TypeTrace, `{"id":"trace-dup","timestamp":"`+now+`"}`)); code != http.StatusAccepted {
			t.Fatalf("dup: %d", code)
		}
	}
	// Wait until persist has stored both deliveries (the four accepted events above and the
	// two posts of this one): the first alone already makes the count 1.
	const storedKey = `trustplane_persist_events_total{outcome="stored"}`
	for deadline := time.Now().Add(60 * time.Second); p.persistMetrics(t)[storedKey] < 6; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("persist stored %v deliveries, want both posts of dup-1 after the 4 before them", p.persistMetrics(t)[storedKey])
		}
	}
	p.eventually(t, "traces", "id", "trace-dup", 1)
	var raw uint64
	if err := p.db.QueryRow(context.Background(), "SELECT count() FROM trustplane.traces WHERE id = 'trace-dup'").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	t.Logf("trace-dup: %d physical rows before merge, 1 in query results", raw)

	// An event that can never be stored (here: one written to the topic without coming through
	// ingest, so it has no tenant) ends in the dead-letter topic with persist's reason.
	poison := cloudevents.NewEvent()
	poison.SetID("poison-1")
	poison.SetSource("/e2e")
	poison.SetType(catalog.TypeTrace)
	_ = poison.SetData(cloudevents.ApplicationJSON, []byte(`{"id":"trace-poison","timestamp":"`+now+`"}`))
	poison.SetExtension(catalog.ExtPartitionKey, "trace-poison")
	producer, err := tpkafka.NewAsyncProducer(p.brokers)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	if err := producer.Send(context.Background(), []cloudevents.Event{poison})[0]; err != nil {
		t.Fatal(err)
	}
	dead := readDeadLetter(t, p.brokers, "poison-1")
	ext := dead.Extensions()
	reason, _ := base64.StdEncoding.DecodeString(fmt.Sprint(ext["knativeerrordata"]))
	if fmt.Sprint(ext["knativeerrorcode"]) != "400" || !strings.Contains(string(reason), "tenantid") {
		t.Fatalf("dead-lettered with %v, reason %q", ext, reason)
	}
	if n := p.count(t, "traces", "id", "trace-poison"); n != 0 {
		t.Fatalf("poison event stored %d times", n)
	}
}

// readDeadLetter waits for the event with the given id on the dead-letter topic.
func readDeadLetter(t *testing.T, brokers []string, id string) *cloudevents.Event {
	t.Helper()
	var dead *cloudevents.Event
	kafkatest.FindRecord(t, brokers, tpkafka.DefaultDeadLetterTopic, 60*time.Second, func(m *sarama.ConsumerMessage) bool {
		e, err := tpkafka.EventFromRecord(m)
		if err == nil && e.ID() == id {
			dead = e
			return true
		}
		return false
	})
	return dead
}
