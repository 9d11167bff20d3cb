package dispatcher

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/trustplane/trustplane/functions/runtime"
	"github.com/trustplane/trustplane/functions/runtime/runtimetest"
	"github.com/trustplane/trustplane/kafka"
	"github.com/trustplane/trustplane/kafka/kafkatest"
)

// One real Apache Kafka broker, started on first use (the unit tests and the fuzzer do not
// need it) and stopped when the package's tests end.
var sharedKafka kafkatest.Shared

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		os.Exit(runCrashChild())
	}
	os.Exit(sharedKafka.Run(m))
}

func kafkaAddrs(t testing.TB) []string {
	t.Helper()
	return sharedKafka.Broker(t).Addrs()
}

// env is a fresh broker topic and dead-letter topic for one test.
type env struct {
	addrs      []string
	topic, dlq string
}

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9]+`)

func newEnv(t testing.TB, partitions int32) env {
	t.Helper()
	addrs := kafkaAddrs(t)
	base := fmt.Sprintf("%s-%d", strings.ToLower(unsafeChars.ReplaceAllString(t.Name(), "-")), time.Now().UnixNano())
	e := env{addrs: addrs, topic: base, dlq: base + "-dlq"}
	events := kafka.EventsTopic().ForBrokers(1)
	events.Name, events.Partitions = e.topic, partitions
	dlq := kafka.DeadLetterTopic().ForBrokers(1)
	dlq.Name, dlq.Partitions = e.dlq, 1
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, addrs, events, dlq); err != nil {
		t.Fatal(err)
	}
	return e
}

// triggerYAML is an ordered-delivery Trigger for the "sub" subscriber with the given filters
// and delivery.
func triggerYAML(name, filters, delivery string) string {
	return fmt.Sprintf(`apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: %s
  namespace: test
  annotations:
    kafka.eventing.knative.dev/delivery.order: ordered
spec:
  broker: default
  filters: %s
  subscriber:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: sub}
  delivery:
%s    deadLetterSink:
      ref: {apiVersion: eventing.kafka.knative.dev/v1alpha1, kind: KafkaSink, name: dlq}
`, name, filters, delivery)
}

type running struct {
	d    *Dispatcher
	stop func()
}

// startDispatcher runs a dispatcher for the manifests until the test ends (or stop is called)
// and waits until its consumer groups have joined.
func startDispatcher(t testing.TB, e env, manifests string, subURL string, tweak func(*Config)) running {
	t.Helper()
	m, err := DecodeManifests(context.Background(), "test.yaml", []byte(manifests))
	if err != nil {
		t.Fatal(err)
	}
	subs, err := ParseSubscribers("sub=" + subURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Brokers: e.addrs, Topic: e.topic, DeadLetterTopic: e.dlq, Subscribers: subs,
		GroupPrefix: "g-" + e.topic, ShutdownGrace: 5 * time.Second,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	d, err := New(cfg, m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	waitFor(t, "consumer groups to join", func() bool { return d.Ready(ctx) == nil })
	return running{d: d, stop: stop}
}

// waitFor polls cond for up to 2 minutes: what the tests wait for (a group joining, local
// deliveries) takes seconds, so only a machine stalled for minutes fails a test by accident.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newEvent(id, typ, key string) cloudevents.Event {
	e := cloudevents.NewEvent()
	e.SetID(id)
	e.SetSource("urn:trustplane:test")
	e.SetType(typ)
	e.SetExtension("partitionkey", key)
	if err := e.SetData("application/json", map[string]string{"id": id}); err != nil {
		panic(err)
	}
	return e
}

func produce(t testing.TB, addrs []string, topic string, events ...cloudevents.Event) {
	t.Helper()
	p, err := sarama.NewSyncProducer(addrs, kafka.NewConfig("test-producer"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	msgs := make([]*sarama.ProducerMessage, len(events))
	for i := range events {
		msgs[i] = &sarama.ProducerMessage{Topic: topic}
		if err := kafka_sarama.WriteProducerMessage(context.Background(), binding.ToMessage(&events[i]), msgs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
}

func recordEvent(t testing.TB, m *sarama.ConsumerMessage) *cloudevents.Event {
	t.Helper()
	ev, err := binding.ToEvent(context.Background(), kafka_sarama.NewMessageFromConsumerMessage(m))
	if err != nil {
		t.Fatalf("record at offset %d is not a CloudEvent: %v", m.Offset, err)
	}
	return ev
}

// subscriber is a real HTTP CloudEvents endpoint that records what it receives and answers
// as answer says (n is the 1-based attempt number for that event id).
type subscriber struct {
	*httptest.Server
	mu        sync.Mutex
	delivered []cloudevents.Event // answered 2xx
	attempts  map[string]int
	answer    func(w http.ResponseWriter, r *http.Request, ev *cloudevents.Event, n int)
}

func newSubscriber(t testing.TB, answer func(w http.ResponseWriter, r *http.Request, ev *cloudevents.Event, n int)) *subscriber {
	s := &subscriber{attempts: map[string]int{}, answer: answer}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
		if err != nil || r.Header.Get("ce-specversion") == "" {
			t.Errorf("delivery is not a binary-mode CloudEvent: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.attempts[ev.ID()]++
		n := s.attempts[ev.ID()]
		s.mu.Unlock()
		rec := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		if s.answer != nil {
			s.answer(rec, r, ev, n)
		}
		if rec.code < 300 {
			s.mu.Lock()
			s.delivered = append(s.delivered, *ev)
			s.mu.Unlock()
		}
	}))
	t.Cleanup(s.Close)
	return s
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }

func (s *subscriber) deliveredIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, len(s.delivered))
	for i, e := range s.delivered {
		ids[i] = e.ID()
	}
	return ids
}

func (s *subscriber) attemptsOf(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[id]
}

func count(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

const telemetryFilter = `[{prefix: {type: io.trustplane.telemetry.}}]`

func TestDeliversMatchingEventsInOrderPerPartition(t *testing.T) {
	e := newEnv(t, 3)
	sub := newSubscriber(t, nil)
	r := startDispatcher(t, e, triggerYAML("persist", telemetryFilter, "    retry: 2\n"), sub.URL, nil)

	const traces, perTrace = 3, 30
	var events []cloudevents.Event
	for i := 0; i < perTrace; i++ {
		for tr := 0; tr < traces; tr++ {
			key := fmt.Sprintf("trace-%d", tr)
			events = append(events, newEvent(fmt.Sprintf("%s/%03d", key, i), "io.trustplane.telemetry.observation.v1", key))
		}
		if i%3 == 0 {
			events = append(events, newEvent(fmt.Sprintf("other-%d", i), "io.trustplane.finding.v1", "trace-0"))
		}
	}
	produce(t, e.addrs, e.topic, events...)

	filtered := r.d.metrics.filtered.WithLabelValues("test/persist")
	waitFor(t, "every telemetry event delivered and the others filtered", func() bool {
		return len(sub.deliveredIDs()) >= traces*perTrace && count(filtered) == perTrace/3
	})
	ids := sub.deliveredIDs()
	if len(ids) != traces*perTrace {
		t.Fatalf("delivered %d events, want %d", len(ids), traces*perTrace)
	}
	next := map[string]int{}
	for _, id := range ids {
		if strings.HasPrefix(id, "other-") {
			t.Fatalf("non-matching event %s was delivered", id)
		}
		key, seq, _ := strings.Cut(id, "/")
		n, _ := strconv.Atoi(seq)
		if n != next[key] {
			t.Fatalf("%s delivered out of order: got %d, want %d (order %v)", key, n, next[key], ids)
		}
		next[key]++
	}
	if got := count(r.d.metrics.delivered.WithLabelValues("test/persist")); got != traces*perTrace {
		t.Fatalf("delivered metric = %v", got)
	}
}

func TestRetriesUntilTheSubscriberSucceeds(t *testing.T) {
	e := newEnv(t, 1)
	sub := newSubscriber(t, func(w http.ResponseWriter, _ *http.Request, ev *cloudevents.Event, n int) {
		if ev.ID() != "flaky" {
			return
		}
		switch n {
		case 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	r := startDispatcher(t, e, triggerYAML("persist", telemetryFilter,
		"    retry: 5\n    backoffPolicy: linear\n    backoffDelay: PT0.01S\n"), sub.URL, nil)
	produce(t, e.addrs, e.topic,
		newEvent("flaky", "io.trustplane.telemetry.trace.v1", "k"),
		newEvent("after", "io.trustplane.telemetry.trace.v1", "k"))

	waitFor(t, "both events delivered", func() bool { return len(sub.deliveredIDs()) == 2 })
	if got := sub.deliveredIDs(); got[0] != "flaky" || got[1] != "after" {
		t.Fatalf("delivered %v, want [flaky after]", got)
	}
	if n := sub.attemptsOf("flaky"); n != 3 {
		t.Fatalf("flaky was attempted %d times, want 3 (two failures, one success)", n)
	}
	m := r.d.metrics
	if got := count(m.retries.WithLabelValues("test/persist")); got != 2 {
		t.Fatalf("retries metric = %v, want 2", got)
	}
	if got := count(m.deadLettered.WithLabelValues("test/persist")); got != 0 {
		t.Fatalf("dead-lettered metric = %v, want 0", got)
	}
}

func TestPoisonEventsGoToTheDeadLetterTopic(t *testing.T) {
	e := newEnv(t, 1)
	bigBody := strings.Repeat("x", 2000)
	sub := newSubscriber(t, func(w http.ResponseWriter, _ *http.Request, ev *cloudevents.Event, _ int) {
		switch ev.ID() {
		case "poison-500":
			w.Header().Set("Kne-Reason", "database down")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, bigBody)
		case "poison-400":
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, "missing trace id")
		}
	})
	r := startDispatcher(t, e, triggerYAML("persist", telemetryFilter,
		"    retry: 2\n    backoffPolicy: exponential\n    backoffDelay: PT0.005S\n"), sub.URL, nil)
	produce(t, e.addrs, e.topic,
		newEvent("poison-500", "io.trustplane.telemetry.trace.v1", "k1"),
		newEvent("poison-400", "io.trustplane.telemetry.trace.v1", "k2"),
		newEvent("good", "io.trustplane.telemetry.trace.v1", "k3"))

	waitFor(t, "the event after the poison ones", func() bool { return len(sub.deliveredIDs()) == 1 })
	if got := sub.deliveredIDs()[0]; got != "good" {
		t.Fatalf("delivered %q", got)
	}
	if n := sub.attemptsOf("poison-500"); n != 3 {
		t.Fatalf("the 500 event was attempted %d times, want 1 + 2 retries", n)
	}
	if n := sub.attemptsOf("poison-400"); n != 1 {
		t.Fatalf("the 400 event was attempted %d times, want 1 (400 is not retried)", n)
	}

	recs := kafkatest.ReadTopic(t, e.addrs, e.dlq, 2, 2*time.Minute)
	want := map[string]struct{ code, data, key string }{
		"poison-500": {"500", base64.StdEncoding.EncodeToString([]byte(bigBody[:1024])), "k1"},
		"poison-400": {"400", base64.StdEncoding.EncodeToString([]byte("missing trace id")), "k2"},
	}
	for _, rec := range recs {
		ev := recordEvent(t, rec)
		w, ok := want[ev.ID()]
		if !ok {
			t.Fatalf("unexpected event %q in the dead-letter topic", ev.ID())
		}
		ext := ev.Extensions()
		if ext["knativeerrorcode"] != w.code || ext["knativeerrordata"] != w.data || ext["knativeerrordest"] != sub.URL {
			t.Errorf("%s: error extensions = code %v, data %v, dest %v; want %s, %s, %s",
				ev.ID(), ext["knativeerrorcode"], ext["knativeerrordata"], ext["knativeerrordest"], w.code, w.data, sub.URL)
		}
		if string(rec.Key) != w.key {
			t.Errorf("%s: key = %q, want %q", ev.ID(), rec.Key, w.key)
		}
		if ev.ID() == "poison-500" && ext["reason"] != "database down" {
			t.Errorf("kne-reason header not copied: %v", ext["reason"])
		}
		if string(ev.Data()) != `{"id":"`+ev.ID()+`"}` || ev.Type() != "io.trustplane.telemetry.trace.v1" {
			t.Errorf("%s: the dead-lettered event is not the original: %s %s", ev.ID(), ev.Type(), ev.Data())
		}
	}
	if got := count(r.d.metrics.deadLettered.WithLabelValues("test/persist")); got != 2 {
		t.Fatalf("dead-lettered metric = %v, want 2", got)
	}
}

func TestReplyIsProducedBackToTheBrokerTopic(t *testing.T) {
	e := newEnv(t, 1)
	sub := newSubscriber(t, func(w http.ResponseWriter, r *http.Request, ev *cloudevents.Event, _ int) {
		reply := cloudevents.NewEvent()
		reply.SetID("reply-to-" + ev.ID())
		reply.SetSource("urn:trustplane:guard")
		reply.SetType("io.trustplane.finding.v1")
		if err := reply.SetData("application/json", map[string]string{"finding": "pii"}); err != nil {
			panic(err)
		}
		ctx := r.Context()
		if ev.ID() == "binary" {
			reply.SetExtension("partitionkey", "reply-key")
		} else {
			ctx = binding.WithForceStructured(ctx)
		}
		if err := cehttp.WriteResponseWriter(ctx, binding.ToMessage(&reply), http.StatusOK, w); err != nil {
			panic(err)
		}
	})
	r := startDispatcher(t, e, triggerYAML("guard", telemetryFilter, "    retry: 1\n"), sub.URL, nil)
	produce(t, e.addrs, e.topic,
		newEvent("binary", "io.trustplane.telemetry.trace.v1", "k1"),
		newEvent("structured", "io.trustplane.telemetry.trace.v1", "k2"))

	recs := kafkatest.ReadTopic(t, e.addrs, e.topic, 4, 2*time.Minute)
	keys := map[string]string{}
	for _, rec := range recs[2:] {
		ev := recordEvent(t, rec)
		if ev.Type() != "io.trustplane.finding.v1" || string(ev.Data()) != `{"finding":"pii"}` {
			t.Fatalf("unexpected reply record: %s %s", ev.Type(), ev.Data())
		}
		keys[ev.ID()] = string(rec.Key)
	}
	if keys["reply-to-binary"] != "reply-key" || keys["reply-to-structured"] != "k2" {
		t.Fatalf("reply keys = %v; want the reply's partitionkey, else the original's key", keys)
	}
	// The replies are on the topic too; the Trigger's filter keeps them from the subscriber.
	waitFor(t, "the replies to be filtered", func() bool {
		return count(r.d.metrics.filtered.WithLabelValues("test/guard")) == 2
	})
	if got := count(r.d.metrics.replies.WithLabelValues("test/guard")); got != 2 {
		t.Fatalf("replies metric = %v", got)
	}
}

func TestRestartResumesFromCommittedOffsets(t *testing.T) {
	e := newEnv(t, 1)
	var hang sync.Map // id -> true while the subscriber hangs on it
	hang.Store("evt-06", true)
	sub := newSubscriber(t, func(w http.ResponseWriter, r *http.Request, ev *cloudevents.Event, _ int) {
		if _, ok := hang.Load(ev.ID()); ok {
			<-r.Context().Done() // never answers: the dispatcher gives up when it stops
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	manifest := triggerYAML("persist", telemetryFilter, "    retry: 3\n")
	var events []cloudevents.Event
	for i := 1; i <= 10; i++ {
		events = append(events, newEvent(fmt.Sprintf("evt-%02d", i), "io.trustplane.telemetry.trace.v1", "k"))
	}
	produce(t, e.addrs, e.topic, events...)

	// First run: stopped while evt-06 is in flight, with no grace for it.
	first := startDispatcher(t, e, manifest, sub.URL, func(c *Config) { c.ShutdownGrace = 0 })
	waitFor(t, "evt-06 to be in flight", func() bool { return sub.attemptsOf("evt-06") == 1 })
	first.stop()
	if got := sub.deliveredIDs(); strings.Join(got, ",") != "evt-01,evt-02,evt-03,evt-04,evt-05" {
		t.Fatalf("first run delivered %v", got)
	}

	// Second run, same consumer group: resumes at evt-06, which was never acknowledged.
	hang.Delete("evt-06")
	startDispatcher(t, e, manifest, sub.URL, nil)
	waitFor(t, "the remaining events", func() bool { return len(sub.deliveredIDs()) >= 10 })
	got := sub.deliveredIDs()
	want := make([]string, 10)
	for i := range want {
		want[i] = fmt.Sprintf("evt-%02d", i+1)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("delivered %v, want each of %v once, in order", got, want)
	}
	if n := sub.attemptsOf("evt-06"); n != 2 {
		t.Fatalf("evt-06 attempted %d times, want 2 (cut off, then redelivered)", n)
	}
}

func TestInvalidRecordIsCopiedToTheDeadLetterTopic(t *testing.T) {
	e := newEnv(t, 1)
	sub := newSubscriber(t, nil)
	startDispatcher(t, e, triggerYAML("persist", telemetryFilter, "    retry: 1\n"), sub.URL, nil)

	p, err := sarama.NewSyncProducer(e.addrs, kafka.NewConfig("test-raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: e.topic, Key: sarama.StringEncoder("raw"), Value: sarama.StringEncoder("not an event")}); err != nil {
		t.Fatal(err)
	}
	produce(t, e.addrs, e.topic, newEvent("next", "io.trustplane.telemetry.trace.v1", "k"))

	waitFor(t, "the event after the invalid record", func() bool { return len(sub.deliveredIDs()) == 1 })
	rec := kafkatest.ReadTopic(t, e.addrs, e.dlq, 1, 2*time.Minute)[0]
	if string(rec.Value) != "not an event" || string(rec.Key) != "raw" {
		t.Fatalf("dead-letter copy = %q key %q", rec.Value, rec.Key)
	}
	var reason string
	for _, h := range rec.Headers {
		if string(h.Key) == "trustplane-dispatch-error" {
			reason = string(h.Value)
		}
	}
	if reason == "" {
		t.Fatal("the copy does not say why it was dead-lettered")
	}
}

func TestNewChecksSubscribersAndDelivery(t *testing.T) {
	m, err := LoadManifests(context.Background(), "../config")
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(Config{Brokers: []string{"127.0.0.1:1"}, Subscribers: Subscribers{}}, m)
	if err == nil || !strings.Contains(err.Error(), "Trigger trustplane/persist") ||
		!strings.Contains(err.Error(), "persist=http://127.0.0.1:PORT to DISPATCHER_SUBSCRIBERS") {
		t.Fatalf("error = %v, want one saying how to map the persist Service", err)
	}
	if _, err := New(Config{Subscribers: Subscribers{}}, m); err == nil {
		t.Fatal("no brokers: no error")
	}

	subs, err := ParseSubscribers("persist=http://127.0.0.1:8082, trustplane/guard=http://127.0.0.1:8083/")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Brokers: []string{"127.0.0.1:1"}, Subscribers: subs}, m)
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := d.Target("trustplane/persist"); !ok || u.String() != "http://127.0.0.1:8082" {
		t.Fatalf("persist target = %v", u)
	}
	tr := d.triggers[0]
	// persist's Trigger: 80 retries, linear from 1 s.
	if tr.delivery.retry != 80 || tr.delivery.timeout != 30*time.Second || tr.deadLetter != (kafkaDeadLetter{topic: DefaultDeadLetterTopic}) {
		t.Fatalf("delivery = %+v, dead letter %v", tr.delivery, tr.deadLetter)
	}
	if got := []time.Duration{tr.delivery.backoff(1), tr.delivery.backoff(80)}; got[0] != time.Second || got[1] != 80*time.Second {
		t.Fatalf("linear backoff before retries 1 and 80 = %v, want 1s and 80s", got)
	}

	for _, bad := range []string{"persist", "persist=", "=http://x", "persist=ftp://x", "persist=/relative", "a=http://x,a=http://y"} {
		if _, err := ParseSubscribers(bad); err == nil {
			t.Errorf("ParseSubscribers(%q): no error", bad)
		}
	}
}

func TestResolveDestinations(t *testing.T) {
	subs, err := ParseSubscribers("persist=http://127.0.0.1:8082,https://guard.example/in=http://127.0.0.1:9000/x")
	if err != nil {
		t.Fatal(err)
	}
	dec := func(y string) *Manifests {
		m, err := DecodeManifests(context.Background(), "t.yaml", []byte(y))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	base := strings.Replace(validTrigger, "      name: persist\n", "      name: persist\n    uri: /batch\n", 1)
	m := dec(base)
	u, err := subs.Resolve("default", m.Triggers[0].Spec.Subscriber)
	if err != nil || u.String() != "http://127.0.0.1:8082/batch" {
		t.Fatalf("ref + relative uri = %v, %v", u, err)
	}
	withURI := strings.Replace(validTrigger, "    ref:\n      apiVersion: serving.knative.dev/v1\n      kind: Service\n      name: persist\n", "    uri: https://guard.example/in\n", 1)
	m = dec(withURI)
	u, err = subs.Resolve("default", m.Triggers[0].Spec.Subscriber)
	if err != nil || u.String() != "http://127.0.0.1:9000/x" {
		t.Fatalf("redirected absolute uri = %v, %v", u, err)
	}
	plain, _ := url.Parse("https://other.example/")
	m = dec(strings.Replace(withURI, "https://guard.example/in", plain.String(), 1))
	u, err = subs.Resolve("default", m.Triggers[0].Spec.Subscriber)
	if err != nil || u.String() != plain.String() {
		t.Fatalf("absolute uri = %v, %v", u, err)
	}
}

func TestBackoffAndRetryAfter(t *testing.T) {
	lin := delivery{policy: "linear", delay: 100 * time.Millisecond}
	exp := delivery{policy: "exponential", delay: 100 * time.Millisecond}
	for n, want := range map[int][2]time.Duration{1: {100 * time.Millisecond, 200 * time.Millisecond}, 3: {300 * time.Millisecond, 800 * time.Millisecond}} {
		if got := lin.backoff(n); got != want[0] {
			t.Errorf("linear backoff(%d) = %v, want %v", n, got, want[0])
		}
		if got := exp.backoff(n); got != want[1] {
			t.Errorf("exponential backoff(%d) = %v, want %v", n, got, want[1])
		}
	}
	if got := (delivery{}).backoff(4); got != 0 {
		t.Errorf("no backoffDelay: backoff = %v, want 0", got)
	}
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"": 0, "7": 7 * time.Second, "-3": 0, "soon": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
	} {
		if got := runtime.RetryAfter(http.Header{"Retry-After": {v}}, now); got != want {
			t.Errorf("Retry-After %q = %v, want %v", v, got, want)
		}
	}
	// A number of seconds too large for a Duration is the longest wait, which retryAfterMax
	// then caps, not a product that wrapped around to a short or negative wait.
	if got := runtime.RetryAfter(http.Header{"Retry-After": {"10000000000"}}, now); got < time.Hour {
		t.Errorf("Retry-After 10000000000 = %v, want the longest wait", got)
	}
}

// BenchmarkDispatch measures the delivery path end to end: a dispatcher, in a child process
// of its own, taking b.N events from a 4-partition topic to a subscriber that acknowledges at
// once. Ordered: one request in flight per partition (4 at most); unordered: up to
// DefaultUnorderedInFlight (100) per partition. The timer runs from the first event produced
// (the dispatcher has already delivered a warm-up event) to the last one acknowledged. The
// child's CPU time per event and its peak resident memory (VmHWM) are the dispatcher's alone.
// BENCH_CPUPROFILE=file writes the child's CPU profile (its start and the warm-up event are a
// small part of it).
//
// The "held" case is the local run's shape, for memory: 12 partitions, unordered, 1 KiB
// events, and a subscriber that holds each request 20 ms (as persist does while it batches),
// so that about 1,200 deliveries are in flight at once.
func BenchmarkDispatch(b *testing.B) {
	for _, order := range []string{"ordered", "unordered"} {
		b.Run(order, func(b *testing.B) { benchmarkDispatch(b, order, 4, 0, 0) })
	}
	b.Run("held", func(b *testing.B) { benchmarkDispatch(b, "unordered", 12, 20*time.Millisecond, 1024) })
}

func benchmarkDispatch(b *testing.B, order string, partitions int32, hold time.Duration, payload int) {
	e := newEnv(b, partitions)
	var delivered atomic.Int64
	sub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(hold)
		delivered.Add(1)
	}))
	defer sub.Close()
	events := make([]cloudevents.Event, b.N)
	for i := range events {
		events[i] = newEvent(strconv.Itoa(i), "io.trustplane.telemetry.trace.v1", "trace-"+strconv.Itoa(i%64))
		if payload > 0 {
			if err := events[i].SetData("application/json", map[string]string{"id": strconv.Itoa(i), "pad": strings.Repeat("x", payload)}); err != nil {
				b.Fatal(err)
			}
		}
	}
	manifest := strings.Replace(triggerYAML("bench", telemetryFilter, "    retry: 1\n"), "delivery.order: ordered", "delivery.order: "+order, 1)
	child := startChild(b, e, manifest, sub.URL, "CHILD_CPUPROFILE="+os.Getenv("BENCH_CPUPROFILE"))
	produce(b, e.addrs, e.topic, newEvent("warm-up", "io.trustplane.telemetry.trace.v1", "w"))
	waitFor(b, "the warm-up event", func() bool { return delivered.Load() == 1 })
	delivered.Store(0)

	b.ResetTimer()
	start, cpuStart := time.Now(), childCPU(b, child)
	produce(b, e.addrs, e.topic, events...)
	waitFor(b, "every event delivered", func() bool { return delivered.Load() >= int64(b.N) })
	elapsed, cpu := time.Since(start), childCPU(b, child)-cpuStart
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "dispatcher-CPU-µs/event")
	b.ReportMetric(childPeakRSSMiB(b, child), "dispatcher-peak-RSS-MiB")
	b.ReportMetric(float64(partitions), "partitions")
	// SIGTERM lets the child write its CPU profile.
	if err := child.Process.Signal(syscall.SIGTERM); err != nil {
		b.Fatal(err)
	}
	_ = child.Wait()
}

// startChild runs a dispatcher for manifest in a child process (the test binary) until the
// test ends.
func startChild(t testing.TB, e env, manifest, subURL string, env ...string) *exec.Cmd {
	t.Helper()
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), crashChildEnv+"=1", "CHILD_MANIFEST="+manifest, "CHILD_SUBSCRIBERS=sub="+subURL,
		"CHILD_BROKERS="+strings.Join(e.addrs, ","), "CHILD_TOPIC="+e.topic, "CHILD_DLQ="+e.dlq, "CHILD_GROUP_PREFIX=g-"+e.topic)
	child.Env = append(child.Env, env...)
	child.Stderr = os.Stderr
	child.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if child.ProcessState == nil { // not waited for yet
			_ = syscall.Kill(-child.Process.Pid, syscall.SIGKILL)
			_ = child.Wait()
		}
	})
	return child
}

// childCPU is the user and system CPU time a child has used (from /proc/PID/stat, in clock
// ticks of 10 ms).
func childCPU(b *testing.B, child *exec.Cmd) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name (which is in parentheses): utime and stime are the 12th
	// and 13th.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			b.Fatalf("/proc stat field %q: %v", f, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// childPeakRSSMiB is a child's peak resident set (VmHWM).
func childPeakRSSMiB(b *testing.B, child *exec.Cmd) float64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", child.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				b.Fatalf("VmHWM %q: %v", v, err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmHWM in the child's /proc status")
	return 0
}

// crashChildEnv makes the test binary run a dispatcher (configured from the environment)
// instead of the tests, so that a test can kill it as a crash would.
const crashChildEnv = "DISPATCHER_TEST_CHILD"

func runCrashChild() int {
	m, err := DecodeManifests(context.Background(), "child.yaml", []byte(os.Getenv("CHILD_MANIFEST")))
	if err == nil {
		var subs Subscribers
		if subs, err = ParseSubscribers(os.Getenv("CHILD_SUBSCRIBERS")); err == nil {
			var d *Dispatcher
			d, err = New(Config{
				Brokers: strings.Split(os.Getenv("CHILD_BROKERS"), ","), Topic: os.Getenv("CHILD_TOPIC"),
				DeadLetterTopic: os.Getenv("CHILD_DLQ"), Subscribers: subs, GroupPrefix: os.Getenv("CHILD_GROUP_PREFIX"),
			}, m)
			if err == nil {
				err = runChild(d)
			}
		}
	}
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, "dispatcher child:", err)
	return 1
}

// runChild runs d until the process is killed, or until SIGTERM, after which it writes the
// CPU profile asked for by CHILD_CPUPROFILE.
func runChild(d *Dispatcher) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if path := os.Getenv("CHILD_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	return d.Run(ctx)
}

func TestCrashRedeliversUnacknowledgedEvents(t *testing.T) {
	e := newEnv(t, 1)
	var hang atomic.Bool
	hang.Store(true)
	sub := newSubscriber(t, func(w http.ResponseWriter, r *http.Request, ev *cloudevents.Event, _ int) {
		if ev.ID() == "evt-06" && hang.Load() {
			<-r.Context().Done() // the dispatcher dies while waiting for this answer
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	manifest := triggerYAML("persist", telemetryFilter, "    retry: 3\n")
	var events []cloudevents.Event
	for i := 1; i <= 10; i++ {
		events = append(events, newEvent(fmt.Sprintf("evt-%02d", i), "io.trustplane.telemetry.trace.v1", "k"))
	}
	produce(t, e.addrs, e.topic, events...)

	child := startChild(t, e, manifest, sub.URL)
	kill := func() {
		_ = syscall.Kill(-child.Process.Pid, syscall.SIGKILL)
		_ = child.Wait()
	}
	waitFor(t, "evt-06 to be in flight in the child", func() bool { return sub.attemptsOf("evt-06") == 1 })
	kill()
	firstRun := len(sub.deliveredIDs())

	hang.Store(false)
	startDispatcher(t, e, manifest, sub.URL, nil)
	waitFor(t, "evt-10 after the restart", func() bool {
		ids := sub.deliveredIDs()
		return len(ids) > firstRun && ids[len(ids)-1] == "evt-10"
	})
	// At-least-once: whatever was not committed before the crash is delivered again, in order;
	// nothing is skipped. So the deliveries are the first run (evt-01..05), then a replay
	// starting at or before evt-06 and running to evt-10.
	ids := sub.deliveredIDs()
	if strings.Join(ids[:firstRun], ",") != "evt-01,evt-02,evt-03,evt-04,evt-05" {
		t.Fatalf("before the crash: %v", ids[:firstRun])
	}
	replay := ids[firstRun:]
	first, _ := strconv.Atoi(strings.TrimPrefix(replay[0], "evt-"))
	if first > 6 {
		t.Fatalf("after the crash delivery resumed at %s: evt-06 was skipped (%v)", replay[0], ids)
	}
	for i, id := range replay {
		if want := fmt.Sprintf("evt-%02d", first+i); id != want {
			t.Fatalf("after the crash: %v, want an in-order replay from evt-%02d to evt-10", replay, first)
		}
	}
	if n := sub.attemptsOf("evt-06"); n != 2 {
		t.Fatalf("evt-06 attempted %d times, want 2", n)
	}
}

func TestDeadLetterSinkFailureKeepsTheOffset(t *testing.T) {
	e := newEnv(t, 1)
	sub := newSubscriber(t, func(w http.ResponseWriter, _ *http.Request, ev *cloudevents.Event, _ int) {
		if ev.ID() == "poison" {
			w.WriteHeader(http.StatusUnprocessableEntity)
		}
	})
	var dlsUp atomic.Bool
	dls := newSubscriber(t, func(w http.ResponseWriter, _ *http.Request, _ *cloudevents.Event, _ int) {
		if !dlsUp.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	manifest := strings.Replace(triggerYAML("persist", telemetryFilter, "    retry: 1\n"),
		"      ref: {apiVersion: eventing.kafka.knative.dev/v1alpha1, kind: KafkaSink, name: dlq}",
		"      uri: "+dls.URL, 1)
	produce(t, e.addrs, e.topic,
		newEvent("first", "io.trustplane.telemetry.trace.v1", "k"),
		newEvent("poison", "io.trustplane.telemetry.trace.v1", "k"),
		newEvent("last", "io.trustplane.telemetry.trace.v1", "k"))

	// The dead-letter sink is down: the dispatcher keeps the poison event, commits nothing
	// past it, and does not move on to the next event.
	first := startDispatcher(t, e, manifest, sub.URL, nil)
	waitFor(t, "the dead-letter sink to be tried twice", func() bool { return dls.attemptsOf("poison") >= 2 })
	first.stop()
	if got := sub.deliveredIDs(); strings.Join(got, ",") != "first" {
		t.Fatalf("delivered %v while the dead-letter sink was down, want only [first]", got)
	}
	if committed := committedOffset(t, e); committed != 1 {
		t.Fatalf("committed offset = %d, want 1 (just past first, not past poison)", committed)
	}

	// Once the sink is back, the poison event reaches it and delivery goes on.
	dlsUp.Store(true)
	startDispatcher(t, e, manifest, sub.URL, nil)
	waitFor(t, "the last event", func() bool { return len(sub.deliveredIDs()) == 2 })
	if got := sub.deliveredIDs(); got[1] != "last" {
		t.Fatalf("delivered %v", got)
	}
	dls.mu.Lock()
	defer dls.mu.Unlock()
	if len(dls.delivered) != 1 || dls.delivered[0].ID() != "poison" || dls.delivered[0].Extensions()["knativeerrorcode"] != "422" {
		t.Fatalf("dead-letter sink received %v", dls.delivered)
	}
}

func TestRequestTimeoutsAreRetriedThenDeadLettered(t *testing.T) {
	e := newEnv(t, 1)
	sub := newSubscriber(t, func(w http.ResponseWriter, r *http.Request, ev *cloudevents.Event, n int) {
		if ev.ID() == "always-slow" || (ev.ID() == "slow-once" && n == 1) {
			<-r.Context().Done() // no answer until the dispatcher's request timeout
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	startDispatcher(t, e, triggerYAML("persist", telemetryFilter, "    retry: 1\n    timeout: PT0.2S\n"), sub.URL, nil)
	produce(t, e.addrs, e.topic,
		newEvent("slow-once", "io.trustplane.telemetry.trace.v1", "k"),
		newEvent("always-slow", "io.trustplane.telemetry.trace.v1", "k"),
		newEvent("fast", "io.trustplane.telemetry.trace.v1", "k"))

	waitFor(t, "the events around the slow one", func() bool { return len(sub.deliveredIDs()) == 2 })
	if got := sub.deliveredIDs(); strings.Join(got, ",") != "slow-once,fast" {
		t.Fatalf("delivered %v", got)
	}
	if a, b := sub.attemptsOf("slow-once"), sub.attemptsOf("always-slow"); a != 2 || b != 2 {
		t.Fatalf("attempts: slow-once %d, always-slow %d; want 2 and 2 (a timeout is retried)", a, b)
	}
	ev := recordEvent(t, kafkatest.ReadTopic(t, e.addrs, e.dlq, 1, 2*time.Minute)[0])
	ext := ev.Extensions()
	if ev.ID() != "always-slow" || ext["knativeerrordest"] != sub.URL {
		t.Fatalf("dead-lettered %s with dest %v", ev.ID(), ext["knativeerrordest"])
	}
	if _, ok := ext["knativeerrorcode"]; ok {
		t.Fatalf("no response was received, yet knativeerrorcode = %v", ext["knativeerrorcode"])
	}
}

func TestUnorderedDeliveryCommitsInOrder(t *testing.T) {
	e := newEnv(t, 1)
	var hang atomic.Bool
	hang.Store(true)
	sub := newSubscriber(t, func(w http.ResponseWriter, r *http.Request, ev *cloudevents.Event, _ int) {
		if ev.ID() == "evt-03" && hang.Load() {
			<-r.Context().Done()
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	manifest := strings.Replace(triggerYAML("persist", telemetryFilter, "    retry: 1\n"),
		"delivery.order: ordered", "delivery.order: unordered", 1)
	var events []cloudevents.Event
	for i := 0; i < 10; i++ {
		events = append(events, newEvent(fmt.Sprintf("evt-%02d", i), "io.trustplane.telemetry.trace.v1", "k"))
	}
	produce(t, e.addrs, e.topic, events...)

	// evt-03 never answers, yet the events after it on the same partition are delivered.
	first := startDispatcher(t, e, manifest, sub.URL, func(c *Config) { c.ShutdownGrace = 0 })
	waitFor(t, "every event but evt-03", func() bool { return len(sub.deliveredIDs()) == 9 })
	for _, id := range sub.deliveredIDs() {
		if id == "evt-03" {
			t.Fatal("evt-03 was delivered")
		}
	}
	first.stop()

	// The commit point stayed at evt-03.
	if committed := committedOffset(t, e); committed != 3 {
		t.Fatalf("committed offset = %d, want 3 (evt-03 unfinished)", committed)
	}

	// After a restart evt-03 is delivered (and the ones after it again: at-least-once).
	hang.Store(false)
	startDispatcher(t, e, manifest, sub.URL, nil)
	waitFor(t, "evt-03 after the restart", func() bool {
		for _, id := range sub.deliveredIDs() {
			if id == "evt-03" {
				return true
			}
		}
		return false
	})
}

// committedOffset is the offset the persist Trigger's consumer group committed on partition 0.
func committedOffset(t *testing.T, e env) int64 {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(e.addrs, kafka.NewConfig("test-admin"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	offsets, err := admin.ListConsumerGroupOffsets("g-"+e.topic+"-test-persist", map[string][]int32{e.topic: {0}})
	if err != nil {
		t.Fatal(err)
	}
	return offsets.GetBlock(e.topic, 0).Offset
}

// While the subscriber is down, every event is retried and then dead-lettered; the log says so
// in a few lines per failure kind and runtime.RepeatInterval, not one line per retry and event
// (which, before, made 4,800 lines of a 30 s persist outage). The metrics count every one.
func TestSubscriberOutageIsLoggedPerIntervalNotPerEvent(t *testing.T) {
	e := newEnv(t, 2)
	sub := newSubscriber(t, func(w http.ResponseWriter, _ *http.Request, _ *cloudevents.Event, _ int) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	var logs runtimetest.Log
	const events, retries = 100, 3
	r := startDispatcher(t, e, triggerYAML("persist", telemetryFilter,
		fmt.Sprintf("    retry: %d\n    backoffPolicy: linear\n    backoffDelay: PT0.001S\n", retries)), sub.URL,
		func(c *Config) { c.Logger = logs.Logger() })
	var batch []cloudevents.Event
	for i := range events {
		batch = append(batch, newEvent(fmt.Sprint("e", i), "io.trustplane.telemetry.trace.v1", fmt.Sprint("k", i%7)))
	}
	start := time.Now()
	produce(t, e.addrs, e.topic, batch...)
	deadLettered := r.d.metrics.deadLettered.WithLabelValues("test/persist")
	waitFor(t, "every event dead-lettered", func() bool { return count(deadLettered) == events })
	elapsed := time.Since(start)
	if got := count(r.d.metrics.retries.WithLabelValues("test/persist")); got != events*retries {
		t.Fatalf("retries metric = %v, want %d", got, events*retries)
	}
	// Lines of one kind are at least an interval apart.
	bound := 1 + int(elapsed/runtime.RepeatInterval)
	for _, msg := range []string{"delivery failed: retrying", "delivery failed: event sent to the dead-letter sink"} {
		if n := logs.Count(msg); n < 1 || n > bound {
			t.Errorf("%d lines %q for %d events over %s, want 1 to %d", n, msg, events, elapsed.Round(time.Millisecond), bound)
		}
	}
}
