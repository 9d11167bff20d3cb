package dispatcher

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
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
func startDispatcher(t testing.TB, e env, manifests string, subURL string, tweak func(*settings)) running {
	t.Helper()
	m, err := DecodeManifests(context.Background(), "test.yaml", []byte(manifests))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range configEnv(e, subURL) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	s, err := loadSettings()
	if err != nil {
		t.Fatal(err)
	}
	s.ShutdownGrace = 5 * time.Second
	if tweak != nil {
		tweak(&s)
	}
	d, err := newDispatcher(s, m)
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

// configEnv is the environment that configures a dispatcher for e's topics and the "sub"
// subscriber at subURL; everything else keeps Config's defaults.
func configEnv(e env, subURL string) []string {
	return []string{
		"KAFKA_BROKERS=" + strings.Join(e.addrs, ","), "KAFKA_TOPIC=" + e.topic, "KAFKA_DLQ_TOPIC=" + e.dlq,
		"DISPATCHER_GROUP_PREFIX=g-" + e.topic, "DISPATCHER_SUBSCRIBERS=sub=" + subURL,
	}
}

// loadSettings are the settings New makes of the configuration in the environment.
func loadSettings() (settings, error) {
	var cfg Config
	if err := runtime.LoadConfig(&cfg); err != nil {
		return settings{}, err
	}
	subs, err := ParseSubscribers(cfg.Subscribers)
	if err != nil {
		return settings{}, err
	}
	return cfg.settings(subs, nil, nil), nil
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
