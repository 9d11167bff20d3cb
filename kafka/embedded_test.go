package kafka

import (
	"context"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/trustplane/trustplane/kafka/kafkatest"
)

func TestEmbeddedBrokerWithProducerSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	e, err := StartEmbedded(EmbeddedConfig{DataDir: dir, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	addrs := e.Addrs()
	ensureTestTopic(t, addrs, DefaultTopic, 2)
	p, err := NewAsyncProducer(addrs)
	if err != nil {
		t.Fatal(err)
	}
	events := []cloudevents.Event{newEvent(1, "a"), newEvent(2, "b"), newEvent(3, "a")}
	for i, err := range p.Send(context.Background(), events) {
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	if err := p.Ready(context.Background()); err != nil {
		t.Errorf("Ready: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	e.Close()

	// Same data dir on a new port: the events are still there.
	e2, err := StartEmbedded(EmbeddedConfig{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	recs := kafkatest.ReadTopicExactly(t, e2.Addrs(), DefaultTopic, len(events), time.Minute)
	ids := map[string]bool{}
	for _, r := range recs {
		ev, err := EventFromRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Key) != ev.Extensions()["partitionkey"] {
			t.Errorf("key %q, partitionkey %v", r.Key, ev.Extensions()["partitionkey"])
		}
		ids[ev.ID()] = true
	}
	for _, ev := range events {
		if !ids[ev.ID()] {
			t.Errorf("event %s lost across restart", ev.ID())
		}
	}
}

func TestStartEmbeddedValidates(t *testing.T) {
	if _, err := StartEmbedded(EmbeddedConfig{Ports: []int{70000}}); err == nil {
		t.Error("port 70000 accepted")
	}
	if _, err := StartEmbedded(EmbeddedConfig{Partitions: -1}); err == nil {
		t.Error("negative partitions accepted")
	}
}
