package dispatcher

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/trustplane/trustplane/functions/runtime"
	"github.com/trustplane/trustplane/internal/testsupport"
	"github.com/trustplane/trustplane/kafka"
	"github.com/trustplane/trustplane/kafka/kafkatest"
)

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

// The request timeout is 2 s, and only the answers held until it are slow: an immediate
// answer over loopback takes milliseconds, so the test fails by accident only on a machine
// that stalls one loopback request for 2 s.
func TestRequestTimeoutsAreRetriedThenDeadLettered(t *testing.T) {
	e := newEnv(t, 1)
	sub := newSubscriber(t, func(w http.ResponseWriter, r *http.Request, ev *cloudevents.Event, n int) {
		if ev.ID() == "always-slow" || (ev.ID() == "slow-once" && n == 1) {
			<-r.Context().Done() // no answer until the dispatcher's request timeout
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	startDispatcher(t, e, triggerYAML("persist", telemetryFilter, "    retry: 1\n    timeout: PT2S\n"), sub.URL, nil)
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

// While the subscriber is down, every event is retried and then dead-lettered; the log says so
// in a few lines per failure kind and runtime.RepeatInterval, not one line per retry and event
// (which, before, made 4,800 lines of a 30 s persist outage). The metrics count every one.
func TestSubscriberOutageIsLoggedPerIntervalNotPerEvent(t *testing.T) {
	e := newEnv(t, 2)
	sub := newSubscriber(t, func(w http.ResponseWriter, _ *http.Request, _ *cloudevents.Event, _ int) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	var logs testsupport.Log
	const events, retries = 100, 3
	r := startDispatcher(t, e, triggerYAML("persist", telemetryFilter,
		fmt.Sprintf("    retry: %d\n    backoffPolicy: linear\n    backoffDelay: PT0.001S\n", retries)), sub.URL,
		func(c *settings) { c.Logger = logs.Logger() })
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
