package embedded

import (
	"context"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/trustplane/trustplane/kafka"
	"github.com/trustplane/trustplane/kafka/kafkatest"
)

func TestEmbeddedBrokerWithProducerSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	e, err := Start(Config{DataDir: dir, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	addrs := e.Addrs()
	topic := kafka.EventsTopic().ForBrokers(1)
	topic.Name, topic.Partitions = kafka.DefaultTopic, 2
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, addrs, topic); err != nil {
		t.Fatal(err)
	}
	p, err := kafka.NewAsyncProducer(addrs)
	if err != nil {
		t.Fatal(err)
	}
	events := []cloudevents.Event{kafkatest.NewEvent(1, "a"), kafkatest.NewEvent(2, "b"), kafkatest.NewEvent(3, "a")}
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
	e2, err := Start(Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	recs := kafkatest.ReadTopicExactly(t, e2.Addrs(), kafka.DefaultTopic, len(events), time.Minute)
	ids := map[string]bool{}
	for _, r := range recs {
		ev, err := kafka.EventFromRecord(r)
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

func TestStartValidates(t *testing.T) {
	if _, err := Start(Config{Ports: []int{70000}}); err == nil {
		t.Error("port 70000 accepted")
	}
	if _, err := Start(Config{Partitions: -1}); err == nil {
		t.Error("negative partitions accepted")
	}
}
