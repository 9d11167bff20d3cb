package router

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/redis/go-redis/v9"

	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/functions/auth"
	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/functions/auth/authtest"
	"github.com/trustplane/trustplane/functions/router/limits"
	"github.com/trustplane/trustplane/functions/router/providers"
	"github.com/trustplane/trustplane/functions/router/routing"
	"github.com/trustplane/trustplane/kafka"
	"github.com/trustplane/trustplane/kafka/kafkatest"
)

// The tests run the gateway against real servers: an Apache Kafka broker for its telemetry,
// redis-server for shared limits, real API keys in a real key store, and in-test HTTP servers
// speaking each provider's wire format.

var brokers []string

func TestMain(m *testing.M) {
	// The outage tests make go-redis log every failed dial; the tests check the metrics instead.
	redis.SetLogger(limits.NewRedisLog(slog.New(slog.DiscardHandler)))
	os.Exit(kafkatest.RunMain(m, &brokers))
}

type keys struct {
	llm, ingestOnly, limited string
	store                    *auth.Store
}

func newKeys(t *testing.T) keys {
	t.Helper()
	file := authtest.New(t)
	add := func(nk auth.NewKey) string {
		key, _ := file.Add(nk)
		return key
	}
	var k keys
	k.llm = add(auth.NewKey{Tenant: "acme", Project: "proj", Scopes: []authclient.Scope{authclient.ScopeLLM}})
	k.ingestOnly = add(auth.NewKey{Tenant: "acme", Project: "proj", Scopes: []authclient.Scope{authclient.ScopeIngest}})
	k.limited = add(auth.NewKey{Tenant: "other", Project: "proj", Scopes: []authclient.Scope{authclient.ScopeLLM},
		Limits: &authclient.Limits{RequestsPerMinute: 2, USDPerDay: 1}})
	k.store = file.Store()
	return k
}

func newTopic(t testing.TB) string {
	t.Helper()
	return kafkatest.NewTopic(t, brokers, "router-test", 3)
}

// fixture is one gateway serving over HTTP, recording to its own topic.
type fixture struct {
	keys     keys
	topic    string
	gw       *Gateway
	srv      *httptest.Server
	recorder *Recorder
}

func mustRouting(t testing.TB, yaml string) *routing.Table {
	t.Helper()
	r, err := routing.Parse([]byte(yaml), providers.NewHTTPClient(16), func(string) string { return "test-key" }, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newFixture(t *testing.T, routingYAML string, opts Options) *fixture {
	t.Helper()
	f := &fixture{keys: newKeys(t), topic: newTopic(t)}
	p, err := kafka.NewProducer(kafka.ProducerConfig{KafkaBrokers: brokers, KafkaTopic: f.topic}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.recorder = NewRecorder(p, 1000, 100, slog.New(slog.DiscardHandler), nil)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = f.recorder.Close(ctx)
		p.Close()
	})
	opts.Recorder = f.recorder
	f.gw, f.srv = serve(t, f.keys, routingYAML, opts)
	return f
}

// serve runs a gateway over HTTP.
func serve(t *testing.T, k keys, routingYAML string, opts Options) (*Gateway, *httptest.Server) {
	t.Helper()
	return serveSource(t, k, routing.Fixed(mustRouting(t, routingYAML)), opts)
}

// serveSource runs a gateway over HTTP serving the routing of routes.
func serveSource(t *testing.T, k keys, routes *routing.Source, opts Options) (*Gateway, *httptest.Server) {
	t.Helper()
	opts.Verifier = k.store
	// Config's defaults, unless the test sets its own.
	if opts.MaxRequestBytes == 0 {
		opts.MaxRequestBytes = 4 << 20
	}
	if opts.Capture.Mode == "" {
		opts.Capture = Capture{Mode: CaptureTruncated, MaxBytes: 4096}
	}
	gw := NewGateway(routes, opts)
	srv := httptest.NewServer(mux(gw))
	t.Cleanup(srv.Close)
	return gw, srv
}

// mux serves the gateway's routes.
func mux(gw *Gateway) *http.ServeMux {
	m := http.NewServeMux()
	for pattern, h := range gw.Routes() {
		m.Handle(pattern, h)
	}
	return m
}

func (f *fixture) do(t *testing.T, method, path, key, body string) (*http.Response, []byte) {
	t.Helper()
	return do(t, f.srv.URL, method, path, key, body)
}

func do(t *testing.T, base, method, path, key, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// calls reads want llm-call events from the fixture's topic, keyed by call id.
func (f *fixture) calls(t *testing.T, want int) map[string]catalog.LLMCall {
	t.Helper()
	out := map[string]catalog.LLMCall{}
	for _, e := range readTopic(t, f.topic, want) {
		if e.Type() != catalog.TypeLLMCall || e.Source() != EventSource {
			t.Errorf("event type %s source %s", e.Type(), e.Source())
		}
		ext := e.Extensions()
		if ext[catalog.ExtTenant] == "" || ext[catalog.ExtProject] != "proj" || ext[catalog.ExtKeyID] == "" || ext[catalog.ExtIngestTime] == nil {
			t.Errorf("event extensions %v", ext)
		}
		ct, _ := catalog.Lookup(catalog.TypeLLMCall)
		p, problems := ct.Decode(e.Data())
		if len(problems) > 0 {
			t.Fatalf("event %s does not match its schema: %v\n%s", e.ID(), problems, e.Data())
		}
		c := *p.(*catalog.LLMCall)
		if ext[catalog.ExtPartitionKey] != c.PartitionKey() {
			t.Errorf("partitionkey %v, want %s", ext[catalog.ExtPartitionKey], c.PartitionKey())
		}
		out[c.ID] = c
	}
	return out
}

// readTopic reads want events from every partition of topic, then checks nothing more follows.
func readTopic(t *testing.T, topic string, want int) []cloudevents.Event {
	t.Helper()
	var events []cloudevents.Event
	for _, m := range kafkatest.ReadTopicExactly(t, brokers, topic, want, 30*time.Second) {
		e, err := kafka.EventFromRecord(m)
		if err != nil {
			t.Fatalf("record is not an event: %v", err)
		}
		events = append(events, *e)
	}
	return events
}

// upstream is an in-test provider: each request is answered by the next handler of script
// (the last one repeats), and requests are kept for inspection.
type upstream struct {
	*httptest.Server
	mu       sync.Mutex
	script   []http.HandlerFunc
	requests []recorded
}

type recorded struct {
	path   string
	query  string
	header http.Header
	body   []byte
}

func newUpstream(t *testing.T, script ...http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{script: script}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		n := len(u.requests)
		u.requests = append(u.requests, recorded{path: r.URL.Path, query: r.URL.RawQuery, header: r.Header.Clone(), body: body})
		h := u.script[min(n, len(u.script)-1)]
		u.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		h(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.requests)
}

func (u *upstream) request(i int) recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.requests[i]
}

// reply answers with status and a JSON body, and optional header pairs.
func reply(status int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// sse streams events ("event: x\ndata: y" blocks), flushing after each.
func sse(events ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		for _, e := range events {
			_, _ = io.WriteString(w, e+"\n\n")
			w.(http.Flusher).Flush()
		}
	}
}

const openAICompletion = `{"id":"chatcmpl-1","object":"chat.completion","created":1764410400,"model":"gpt-4o-2024-08-06",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"logprobs":null,"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}`

const chatBody = `{"model":"gpt","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"temperature":0.2}`

// errorBody is OpenAI's error answer as a client reads it.
type errorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}
