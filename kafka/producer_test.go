package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/kafka/kafkatest"
)

func TestAsyncProducerConcurrentSendsRoundTrip(t *testing.T) {
	addrs := shared.Broker(t).Addrs()
	const (
		callers      = 16
		callsEach    = 20
		eventsInCall = 10
		total        = callers * callsEach * eventsInCall
	)
	topic := ensureTestTopic(t, addrs, "roundtrip", 4)
	reg := prometheus.NewRegistry()
	p := newProducer(t, addrs, WithTopic(topic.Name), WithRegisterer(reg))

	sent := make(map[string]cloudevents.Event, total)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for call := range callsEach {
				events := make([]cloudevents.Event, eventsInCall)
				for i := range events {
					n := (c*callsEach+call)*eventsInCall + i
					events[i] = kafkatest.NewEvent(n, fmt.Sprintf("trace-%d", n%37))
				}
				errs := p.Send(context.Background(), events)
				mu.Lock()
				for i, err := range errs {
					if err != nil {
						t.Errorf("event %s: %v", events[i].ID(), err)
					}
					sent[events[i].ID()] = events[i]
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	recs := kafkatest.ReadTopicExactly(t, addrs, topic.Name, total, time.Minute)
	seen := make(map[string]bool, total)
	partitionOfTrace := map[string]int32{}
	for _, rec := range recs {
		id, ok := header(rec, "ce_id")
		if !ok {
			t.Fatalf("record %d@%d has no ce_id header (not binary mode)", rec.Partition, rec.Offset)
		}
		want, ok := sent[id]
		if !ok || seen[id] {
			t.Fatalf("record with id %q: sent=%v seen before=%v", id, ok, seen[id])
		}
		seen[id] = true
		for _, h := range []string{"ce_specversion", "ce_type", "ce_source", "ce_time", "ce_partitionkey", "content-type"} {
			if _, ok := header(rec, h); !ok {
				t.Errorf("record %s lacks header %s", id, h)
			}
		}
		trace := want.Extensions()["partitionkey"].(string)
		if string(rec.Key) != trace {
			t.Errorf("record %s key = %q, want partitionkey %q", id, rec.Key, trace)
		}
		if p, ok := partitionOfTrace[trace]; ok && p != rec.Partition {
			t.Errorf("trace %s in partitions %d and %d", trace, p, rec.Partition)
		}
		partitionOfTrace[trace] = rec.Partition
		got, err := EventFromRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := eventJSON(t, got), eventJSON(t, &want); g != w {
			t.Fatalf("event read back differs:\n got %s\nwant %s", g, w)
		}
	}
	if got := metricSum(t, reg, "trustplane_kafka_produced_events_total"); got != total {
		t.Errorf("produced counter = %v, want %d", got, total)
	}
	if got := metricSum(t, reg, "trustplane_kafka_ack_seconds"); got != total {
		t.Errorf("ack histogram count = %v, want %d", got, total)
	}
	if err := p.Ready(context.Background()); err != nil {
		t.Errorf("Ready: %v", err)
	}
}

func TestSendReportsErrorsWhenBrokerIsDown(t *testing.T) {
	b := kafkatest.Start(t)
	topic := ensureTestTopic(t, b.Addrs(), "down", 1)
	reg := prometheus.NewRegistry()
	p := newProducer(t, b.Addrs(), WithTopic(topic.Name), WithAckTimeout(3*time.Second), WithRegisterer(reg))

	if errs := p.Send(context.Background(), []cloudevents.Event{kafkatest.NewEvent(1, "a")}); errs[0] != nil {
		t.Fatalf("send while up: %v", errs[0])
	}
	if err := b.StopBroker(0); err != nil {
		t.Fatal(err)
	}
	events := []cloudevents.Event{kafkatest.NewEvent(2, "a"), kafkatest.NewEvent(3, "b"), kafkatest.NewEvent(4, "c")}
	errs := p.Send(context.Background(), events)
	for i, err := range errs {
		if err == nil {
			t.Errorf("event %s reported durable while the broker is down", events[i].ID())
		}
	}
	if got := metricSum(t, reg, "trustplane_kafka_failed_events_total"); got != float64(len(events)) {
		t.Errorf("failed counters = %v, want %d", got, len(events))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Ready(ctx); err == nil {
		t.Error("Ready = nil while the broker is down")
	}
}

func TestSendHonoursCancelledContext(t *testing.T) {
	addrs := shared.Broker(t).Addrs()
	topic := ensureTestTopic(t, addrs, "cancelled", 1)
	p := newProducer(t, addrs, WithTopic(topic.Name))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	errs := p.Send(ctx, []cloudevents.Event{kafkatest.NewEvent(1, "a"), kafkatest.NewEvent(2, "a")})
	for _, err := range errs {
		// The first event can win the race into sarama's queue and even be
		// acknowledged before Send looks at ctx; anything else must fail.
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("error = %v, want context.Canceled", err)
		}
	}
	if errs[1] == nil && errs[0] == nil {
		t.Error("every event reported durable under a cancelled context")
	}
}

func TestSendAfterCloseFails(t *testing.T) {
	p, err := NewAsyncProducer(shared.Broker(t).Addrs(), WithTopic("closed"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	errs := p.Send(context.Background(), []cloudevents.Event{kafkatest.NewEvent(1, "a")})
	if !errors.Is(errs[0], ErrClosed) {
		t.Fatalf("error = %v, want ErrClosed", errs[0])
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestSendRejectsEventThatCannotBeEncoded(t *testing.T) {
	addrs := shared.Broker(t).Addrs()
	topic := ensureTestTopic(t, addrs, "encode", 1)
	p := newProducer(t, addrs, WithTopic(topic.Name))
	bad := cloudevents.New() // no id, source or type
	good := kafkatest.NewEvent(1, "a")
	errs := p.Send(context.Background(), []cloudevents.Event{bad, good})
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "encode") {
		t.Errorf("invalid event: error = %v, want an encode error", errs[0])
	}
	if errs[1] != nil {
		t.Errorf("valid event beside it: %v", errs[1])
	}
}

func TestNewAsyncProducerValidates(t *testing.T) {
	cases := map[string]struct {
		brokers []string
		opts    []Option
		want    string
	}{
		"no brokers":  {nil, nil, "no broker"},
		"bad topic":   {[]string{unreachable}, []Option{WithTopic("a b")}, "topic name"},
		"bad timeout": {[]string{unreachable}, []Option{WithAckTimeout(0)}, "ack timeout"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := NewAsyncProducer(c.brokers, c.opts...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

// metricSum adds up a counter's values (all label sets) or a histogram's
// sample counts from the registry.
func metricSum(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			sum += m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// unreachable is an address nothing listens on, for checks that must fail
// before any connection is made.
const unreachable = "127.0.0.1:9"
