package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/functions/auth"
	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/functions/auth/authtest"
	"github.com/trustplane/trustplane/functions/runtime"
	"github.com/trustplane/trustplane/internal/testsupport"
	"github.com/trustplane/trustplane/kafka"
	"github.com/trustplane/trustplane/kafka/kafkatest"
)

var brokers []string

func TestMain(m *testing.M) { os.Exit(kafkatest.RunMain(m, &brokers)) }

// keys are real API keys in a real key store: one per situation the handler must tell apart.
type keys struct {
	ingest, queryOnly, revoked string
	store                      *auth.Store
}

func newKeys(t *testing.T) keys {
	t.Helper()
	file := authtest.New(t)
	add := func(scope authclient.Scope) (string, auth.Record) {
		return file.Add(auth.NewKey{Tenant: "acme", Project: "proj", Scopes: []authclient.Scope{scope}})
	}
	var k keys
	k.ingest, _ = add(authclient.ScopeIngest)
	k.queryOnly, _ = add(authclient.ScopeQuery)
	var revoked auth.Record
	k.revoked, revoked = add(authclient.ScopeIngest)
	file.Revoke(revoked.ID)
	k.store = file.Store()
	return k
}

// newTopic creates a topic of its own for one test, so tests never see each other's events.
func newTopic(t testing.TB) string {
	t.Helper()
	return kafkatest.NewTopic(t, brokers, "ingest-test", 3)
}

type fixture struct {
	keys  keys
	topic string
	srv   *httptest.Server
}

// newFixture's producer waits up to 10 s (kafka.DefaultAckTimeout) for the local broker's
// acknowledgement, which takes milliseconds: a test fails by a late one only on a machine
// stalled that long, far less than once in a million.
func newFixture(t *testing.T, limits Limits) fixture {
	t.Helper()
	f := fixture{keys: newKeys(t), topic: newTopic(t)}
	p, err := kafka.NewAsyncProducer(brokers, kafka.WithTopic(f.topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	h := NewHandler(f.keys.store, p, HandlerOptions{Limits: limits, RetryAfter: 2 * time.Second})
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

func (f fixture) post(t *testing.T, key string, header map[string]string, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// readTopic reads want events from every partition of topic and checks that nothing more
// follows: extra events would mean a rejected one slipped through.
func readTopic(t *testing.T, topic string, want int) []cloudevents.Event {
	t.Helper()
	var events []cloudevents.Event
	for _, m := range kafkatest.ReadTopicExactly(t, brokers, topic, want, 30*time.Second) {
		e, err := kafka.EventFromRecord(m)
		if err != nil {
			t.Fatalf("record at %s/%d/%d is not an event: %v", m.Topic, m.Partition, m.Offset, err)
		}
		if key := string(m.Key); key != e.Extensions()[catalog.ExtPartitionKey] {
			t.Errorf("record key %q differs from partitionkey %v", key, e.Extensions()[catalog.ExtPartitionKey])
		}
		events = append(events, *e)
	}
	return events
}

const traceData = `{"id":"trace-1","timestamp":"2026-11-29T10:00:00Z","name":"chat"}`

func structured(id, typ, data string) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/app","type":%q,"datacontenttype":"application/json","data":%s}`, id, typ, data)
}

func decodeJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("response %s: %v", b, err)
	}
}

func TestBinaryModeIsAcceptedAndStampedWithTheKeysTenant(t *testing.T) {
	f := newFixture(t, defaultLimits())
	resp, body := f.post(t, f.keys.ingest, map[string]string{
		"Ce-Specversion": "1.0", "Ce-Id": "e-1", "Ce-Source": "/app", "Ce-Type": catalog.TypeTrace,
		"Ce-Tenantid": "someone-else", "Ce-Projectid": "not-mine", // claims the key must override
		"Content-Type": "application/json",
	}, traceData)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	got := readTopic(t, f.topic, 1)[0]
	ext := got.Extensions()
	if got.ID() != "e-1" || ext[catalog.ExtTenant] != "acme" || ext[catalog.ExtProject] != "proj" || ext[catalog.ExtPartitionKey] != "trace-1" {
		t.Fatalf("event in Kafka: id %s, extensions %v", got.ID(), ext)
	}
	if ext[catalog.ExtIngestTime] == nil {
		t.Errorf("no %s extension: %v", catalog.ExtIngestTime, ext)
	}
	if ext[catalog.ExtKeyID] == "" || strings.Contains(fmt.Sprint(ext), f.keys.ingest) {
		t.Fatalf("keyid extension wrong or the secret leaked: %v", ext)
	}
	var data catalog.Trace
	if err := got.DataAs(&data); err != nil || data.Name != "chat" {
		t.Fatalf("data %s: %v", got.Data(), err)
	}
}

func TestStructuredModeIsAccepted(t *testing.T) {
	f := newFixture(t, defaultLimits())
	obs := `{"id":"o-1","trace_id":"trace-9","type":"GENERATION","start_time":"2026-11-29T10:00:00Z","model":"m","usage":{"total_tokens":7}}`
	resp, body := f.post(t, f.keys.ingest, map[string]string{"Content-Type": "application/cloudevents+json; charset=utf-8"},
		structured("e-2", catalog.TypeObservation, obs))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	got := readTopic(t, f.topic, 1)[0]
	if got.Type() != catalog.TypeObservation || got.Extensions()[catalog.ExtPartitionKey] != "trace-9" {
		t.Fatalf("event in Kafka: %v", got)
	}
}

func TestBatchReportsEachEventAndStoresOnlyTheValidOnes(t *testing.T) {
	f := newFixture(t, defaultLimits())
	batch := "[" + strings.Join([]string{
		structured("ok-1", catalog.TypeTrace, traceData),
		structured("bad-type", "com.example.unknown", traceData),
		structured("bad-data", catalog.TypeScore, `{"id":"s","trace_id":"t","name":"n","timestamp":"2026-11-29T10:00:00Z","value":"high"}`),
		`{"specversion":"1.0","id":"no-source","type":"` + catalog.TypeTrace + `","data":` + traceData + `}`,
		structured("ok-2", catalog.TypeScore, `{"id":"s","trace_id":"t","name":"n","timestamp":"2026-11-29T10:00:00Z","value":1}`),
	}, ",") + "]"
	resp, body := f.post(t, f.keys.ingest, map[string]string{"Content-Type": contentTypeBatch}, batch)
	if resp.StatusCode != http.StatusMultiStatus {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var got batchResponse
	decodeJSON(t, body, &got)
	if got.Accepted != 2 || got.Rejected != 3 || len(got.Results) != 5 {
		t.Fatalf("response %s", body)
	}
	wantStatus := []string{StatusAccepted, StatusRejected, StatusRejected, StatusRejected, StatusAccepted}
	wantPointer := []string{"", "/type", "/data/value", "/source", ""}
	for i, r := range got.Results {
		if r.Index != i || r.Status != wantStatus[i] {
			t.Errorf("result %d: %+v, want status %s", i, r, wantStatus[i])
		}
		if wantPointer[i] != "" && (len(r.Problems) == 0 || r.Problems[0].Pointer != wantPointer[i]) {
			t.Errorf("result %d problems %+v, want one at %s", i, r.Problems, wantPointer[i])
		}
	}
	ids := map[string]bool{}
	for _, e := range readTopic(t, f.topic, 2) {
		ids[e.ID()] = true
	}
	if !ids["ok-1"] || !ids["ok-2"] {
		t.Fatalf("stored %v, want ok-1 and ok-2", ids)
	}
}

func TestBatchOfOnlyInvalidEventsIsABadRequest(t *testing.T) {
	f := newFixture(t, defaultLimits())
	resp, body := f.post(t, f.keys.ingest, map[string]string{"Content-Type": contentTypeBatch},
		"["+structured("x", catalog.TypeTrace, `{"id":"t"}`)+"]")
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != contentTypeProblem {
		t.Fatalf("status %d (%s): %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var p problem
	decodeJSON(t, body, &p)
	if len(p.Results) != 1 || p.Results[0].Status != StatusRejected || !strings.Contains(p.Results[0].Problems[0].Detail, "timestamp") {
		t.Fatalf("problem %s", body)
	}
}

func TestRejections(t *testing.T) {
	f := newFixture(t, Limits{MaxEventBytes: 2048, MaxRequestBytes: 8192, MaxBatchEvents: 3})
	ceJSON := map[string]string{"Content-Type": contentTypeCEStruct}
	batch := map[string]string{"Content-Type": contentTypeBatch}
	valid := structured("e", catalog.TypeTrace, traceData)
	big := structured("big", catalog.TypeTrace, `{"id":"t","timestamp":"2026-11-29T10:00:00Z","name":"`+strings.Repeat("x", 3000)+`"}`)
	cases := []struct {
		name       string
		key        string
		header     map[string]string
		body       string
		wantStatus int
		wantDetail string
	}{
		{"no key", "", ceJSON, valid, 401, "Authorization"},
		{"unknown key", "tp_nope", ceJSON, valid, 401, "denied"},
		{"revoked key", f.keys.revoked, ceJSON, valid, 401, "revoked"},
		{"key without ingest scope", f.keys.queryOnly, ceJSON, valid, 403, "scope"},
		{"plain json", f.keys.ingest, map[string]string{"Content-Type": "application/json"}, valid, 415, "CloudEvents"},
		{"no content type", f.keys.ingest, nil, valid, 415, "CloudEvents"},
		{"event over the limit", f.keys.ingest, ceJSON, big, 413, "limit is 2048"},
		{"request over the limit", f.keys.ingest, batch, "[" + strings.Repeat(valid+",", 60) + valid + "]", 413, "8192"},
		{"too many events", f.keys.ingest, batch, "[" + valid + "," + valid + "," + valid + "," + valid + "]", 413, "limit is 3"},
		{"not json", f.keys.ingest, ceJSON, `{"specversion":`, 400, "not a valid structured CloudEvent"},
		{"old spec version", f.keys.ingest, ceJSON, strings.Replace(valid, `"1.0"`, `"0.3"`, 1), 400, "specversion must be 1.0"},
		{"binary without id", f.keys.ingest, map[string]string{"Ce-Specversion": "1.0", "Ce-Source": "/a", "Ce-Type": catalog.TypeTrace, "Content-Type": "application/json"}, traceData, 400, "id"},
		{"unknown type", f.keys.ingest, ceJSON, structured("e", "com.example.x", traceData), 400, "unknown event type"},
		{"finding posted by an application", f.keys.ingest, ceJSON, structured("e", catalog.TypeFinding, `{"source_type":"x","source_id":"o","timestamp":"2026-11-29T10:00:00Z","findings":[]}`), 400, "not accepted from applications"},
		{"data violates schema", f.keys.ingest, ceJSON, structured("e", catalog.TypeTrace, `{"id":"t","timestamp":"2026-11-29T10:00:00Z","tags":"x"}`), 400, "/data/tags"},
		{"data not json", f.keys.ingest, map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "1", "Ce-Source": "/a", "Ce-Type": catalog.TypeTrace, "Content-Type": "text/plain"}, "hello", 400, "application/json"},
		{"empty batch", f.keys.ingest, batch, "[]", 400, "empty"},
		{"batch not an array", f.keys.ingest, batch, valid, 400, "JSON array"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := f.post(t, c.key, c.header, c.body)
			if resp.StatusCode != c.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.wantStatus, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != contentTypeProblem {
				t.Errorf("content type %q, want %s", ct, contentTypeProblem)
			}
			if !strings.Contains(string(body), c.wantDetail) {
				t.Errorf("body does not mention %q: %s", c.wantDetail, body)
			}
			if c.wantStatus == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	// Not one of those requests may have stored anything.
	consumer, err := sarama.NewConsumer(brokers, kafka.NewConfig("ingest-test-count"))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	parts, _ := consumer.Partitions(f.topic)
	client, err := sarama.NewClient(brokers, kafka.NewConfig("ingest-test-count"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for _, p := range parts {
		if off, err := client.GetOffset(f.topic, p, sarama.OffsetNewest); err != nil || off != 0 {
			t.Errorf("partition %d holds %d records (err %v), want 0", p, off, err)
		}
	}
}

// postConcurrently posts body n times at once, each from a goroutine of its own, and returns
// the answers' status codes.
func postConcurrently(t *testing.T, f fixture, key string, header map[string]string, n int, body func(i int) string) []int {
	t.Helper()
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := f.post(t, key, header, body(i))
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	return codes
}

func counted(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

// checkOutageLog checks that an outage of elapsed made between 1 and one line per
// runtime.RepeatInterval of msg, however many requests it failed (lines of one RepeatedLog are
// at least an interval apart).
func checkOutageLog(t *testing.T, logs *testsupport.Log, msg string, requests int, elapsed time.Duration) {
	t.Helper()
	bound := 1 + int(elapsed/runtime.RepeatInterval)
	if n := logs.Count(msg); n < 1 || n > bound {
		t.Errorf("%d lines %q for %d requests over %s, want 1 to %d", n, msg, requests, elapsed.Round(time.Millisecond), bound)
	}
	if n := len(logs.Lines()); n > bound {
		t.Errorf("%d lines in all over %s, want at most %d: %v", n, elapsed.Round(time.Millisecond), bound, logs.Lines())
	}
}

// While Kafka is down every event is answered 503 with Retry-After, and the log says so in a
// line per interval, not one per event.
func TestKafkaDownAnswers503WithRetryAfter(t *testing.T) {
	own := kafkatest.Start(t)
	topic := "down-test"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, own.Addrs(), kafka.Topic{Name: topic, Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	p, err := kafka.NewAsyncProducer(own.Addrs(), kafka.WithTopic(topic), kafka.WithAckTimeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	k := newKeys(t)
	var logs testsupport.Log
	h := NewHandler(k.store, p, HandlerOptions{Limits: defaultLimits(), RetryAfter: 3 * time.Second, Logger: logs.Logger()})
	srv := httptest.NewServer(h)
	defer srv.Close()
	f := fixture{keys: k, srv: srv}
	if err := own.StopBroker(0); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, body := f.post(t, k.ingest, map[string]string{"Content-Type": contentTypeCEStruct}, structured("e", catalog.TypeTrace, traceData))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "3" {
		t.Fatalf("status %d, Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	resp, body = f.post(t, k.ingest, map[string]string{"Content-Type": contentTypeBatch}, "["+structured("e", catalog.TypeTrace, traceData)+"]")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), StatusUnavailable) {
		t.Fatalf("batch: status %d: %s", resp.StatusCode, body)
	}
	const requests = 50
	for i, code := range postConcurrently(t, f, k.ingest, map[string]string{"Content-Type": contentTypeCEStruct}, requests,
		func(i int) string { return structured(fmt.Sprint("e", i), catalog.TypeTrace, traceData) }) {
		if code != http.StatusServiceUnavailable {
			t.Fatalf("event %d while Kafka is down: %d, want 503", i, code)
		}
	}
	checkOutageLog(t, &logs, "events not acknowledged by Kafka: answered 503", requests+2, time.Since(start))
	unavailable := counted(h.events.WithLabelValues(string(modeStructured), StatusUnavailable)) +
		counted(h.events.WithLabelValues(string(modeBatch), StatusUnavailable))
	if unavailable != requests+2 {
		t.Errorf("events_total{outcome=unavailable} = %v, want %d: the metrics count every event", unavailable, requests+2)
	}
}

// While auth is unreachable every request is answered 503, and the log says so in a line per
// interval, not one per request.
func TestAuthUnavailableAnswers503(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // nothing listens there any more
	client, err := authclient.New(authclient.ClientConfig{URL: dead.URL, CacheTTL: time.Second, NegativeCacheTTL: time.Second, CacheSize: 10, Timeout: time.Second}, authclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := kafka.NewAsyncProducer(brokers, kafka.WithTopic(newTopic(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var logs testsupport.Log
	srv := httptest.NewServer(NewHandler(client, p, HandlerOptions{Limits: defaultLimits(), RetryAfter: 2 * time.Second, Logger: logs.Logger()}))
	defer srv.Close()
	f := fixture{srv: srv}
	wellFormed, _, err := authclient.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, body := f.post(t, wellFormed, map[string]string{"Content-Type": contentTypeCEStruct}, structured("e", catalog.TypeTrace, traceData))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	const requests = 50
	for i, code := range postConcurrently(t, f, wellFormed, map[string]string{"Content-Type": contentTypeCEStruct}, requests,
		func(i int) string { return structured(fmt.Sprint("e", i), catalog.TypeTrace, traceData) }) {
		if code != http.StatusServiceUnavailable {
			t.Fatalf("request %d while auth is down: %d, want 503", i, code)
		}
	}
	checkOutageLog(t, &logs, "auth unavailable: answered 503", requests+1, time.Since(start))
}

func TestOnlyPostIsAllowed(t *testing.T) {
	f := newFixture(t, defaultLimits())
	resp, err := http.Get(f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET: status %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// Events are posted to the root: a post elsewhere is a wrong URL, answered 404 before its key or
// body are looked at, and nothing is produced.
func TestOnlyTheRootIsServed(t *testing.T) {
	f := newFixture(t, defaultLimits())
	long := "/" + strings.Repeat("x", 5000)
	for _, path := range []string{"/v1/events", "//", "/%2F", long} {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+path, strings.NewReader(structured("e-path", catalog.TypeTrace, traceData)))
		req.Header.Set("Authorization", "Bearer "+f.keys.ingest)
		req.Header.Set("Content-Type", contentTypeCEStruct)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p problem
		err = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusNotFound || p.Type != problemNotFound || !strings.Contains(p.Detail, "post CloudEvents to /") {
			t.Fatalf("POST %.40s: status %d, problem %+v (%v)", path, resp.StatusCode, p, err)
		}
		if len(p.Detail) > 300 {
			t.Errorf("POST %.40s: the detail repeats the whole path (%d bytes)", path, len(p.Detail))
		}
	}
	// The root still answers; its event is the topic's only one.
	if resp, body := f.post(t, f.keys.ingest, map[string]string{"Content-Type": contentTypeCEStruct}, structured("e-root", catalog.TypeTrace, traceData)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /: status %d: %s", resp.StatusCode, body)
	}
	if events := readTopic(t, f.topic, 1); events[0].ID() != "e-root" {
		t.Errorf("the topic holds event %q, want only e-root", events[0].ID())
	}
}

func TestConcurrentRequestsAreBounded(t *testing.T) {
	limits := defaultLimits()
	limits.MaxConcurrentRequests = 1
	f := newFixture(t, limits)
	request := func(ctx context.Context, body io.Reader) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.srv.URL, body)
		req.Header.Set("Authorization", "Bearer "+f.keys.ingest)
		req.Header.Set("Content-Type", contentTypeCEStruct)
		return http.DefaultClient.Do(req)
	}
	// The first request holds the only turn while its body trickles in.
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() }) // a failed test must not leave the first request hanging
	first := make(chan int, 1)
	go func() {
		resp, err := request(context.Background(), pr)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	event := structured("slow", catalog.TypeTrace, traceData)
	if _, err := pw.Write([]byte(event[:10])); err != nil {
		t.Fatal(err)
	}
	turns := f.srv.Config.Handler.(*Handler).turns
	for deadline := time.Now().Add(10 * time.Second); len(turns) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first request never took its turn")
		}
	}
	// A second one, sent whole on a connection of its own, waits for the turn and is not
	// answered meanwhile; then its client gives up. (Written by hand: an http.Client whose
	// context ends may not have sent the request whole on a busy machine.)
	conn, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	waiting, _ := http.NewRequest(http.MethodPost, f.srv.URL, strings.NewReader(structured("waiting", catalog.TypeTrace, traceData)))
	waiting.Header.Set("Authorization", "Bearer "+f.keys.ingest)
	waiting.Header.Set("Content-Type", contentTypeCEStruct)
	if err := waiting.Write(conn); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var answer [512]byte
	if n, err := conn.Read(answer[:]); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("answered %q (%v) while the only turn was taken", answer[:n], err)
	}
	conn.Close()
	if _, err := pw.Write([]byte(event[10:])); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if code := <-first; code != http.StatusAccepted {
		t.Fatalf("first request: %d", code)
	}
	// The turn is free again.
	resp, err := request(context.Background(), strings.NewReader(structured("after", catalog.TypeTrace, traceData)))
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("after: %v %v", resp, err)
	}
	resp.Body.Close()
	// The waiting request was sent whole, so it is processed once it gets its turn, though its
	// client stopped waiting for the answer (re-posting it would be harmless).
	ids := map[string]bool{}
	for _, e := range readTopic(t, f.topic, 3) {
		ids[e.ID()] = true
	}
	if !ids["slow"] || !ids["after"] || !ids["waiting"] {
		t.Fatalf("stored %v, want slow, waiting and after", ids)
	}
}

// An event ingest accepts must fit in a Kafka message: otherwise the producer refuses it and
// the client gets 503 ("retry later") on every retry, for an event that can never be stored.
func TestEventLimitFitsKafka(t *testing.T) {
	tooLarge := Limits{MaxEventBytes: 2 << 20, MaxRequestBytes: 5 << 20, MaxBatchEvents: 10}
	if err := tooLarge.Validate(); err == nil || !strings.Contains(err.Error(), "MAX_EVENT_BYTES") {
		t.Fatalf("MAX_EVENT_BYTES of 2 MiB accepted (err %v): Kafka cannot carry such events", err)
	}

	// The largest event the largest allowed limit accepts, with the longest trace id (which the
	// record repeats as partitionkey and as its key), is acknowledged by Kafka.
	limits := Limits{MaxEventBytes: MaxEventBytesLimit, MaxRequestBytes: 5 << 20, MaxBatchEvents: 10}
	if err := limits.Validate(); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, limits)
	traceID := strings.Repeat("t", 128)
	data := func(input int) string {
		return `{"id":"` + traceID + `","timestamp":"2026-11-29T10:00:00Z","input":"` + strings.Repeat("x", input) + `"}`
	}
	event := structured("big", catalog.TypeTrace, data(0))
	event = structured("big", catalog.TypeTrace, data(int(MaxEventBytesLimit)-len(event)))
	if int64(len(event)) != MaxEventBytesLimit {
		t.Fatalf("test event is %d bytes, want %d", len(event), MaxEventBytesLimit)
	}
	resp, body := f.post(t, f.keys.ingest, map[string]string{"Content-Type": "application/cloudevents+json"}, event)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("event of MAX_EVENT_BYTES: status %d: %.300s", resp.StatusCode, body)
	}
	readTopic(t, f.topic, 1)
}

// defaultLimits are the limits ingest runs with when the environment sets none: Config's tags.
func defaultLimits() Limits {
	var l Limits
	if err := envconfig.Process("", &l); err != nil {
		panic(err)
	}
	return l
}
