package kafka

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func TestEnsureTopicsIsIdempotent(t *testing.T) {
	addrs := shared.Broker(t).Addrs()
	events := EventsTopic().ForBrokers(1)
	dlq := DeadLetterTopic().ForBrokers(1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range 2 {
		if err := EnsureTopics(ctx, addrs, events, dlq); err != nil {
			t.Fatal(err)
		}
	}
	admin, err := sarama.NewClusterAdmin(addrs, NewConfig("test-admin"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	metas, err := admin.DescribeTopics([]string{events.Name, dlq.Name})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Topic{events.Name: events, dlq.Name: dlq}
	for _, m := range metas {
		if got := int32(len(m.Partitions)); got != want[m.Name].Partitions {
			t.Errorf("%s: %d partitions, want %d", m.Name, got, want[m.Name].Partitions)
		}
		results, err := admin.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: m.Name}}, sarama.DescribeConfigsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, r := range results {
			if r.ErrorCode != sarama.ErrNoError {
				t.Fatalf("%s: describe configs: %v %s", m.Name, r.ErrorCode, r.ErrorMsg)
			}
			for _, e := range r.Configs {
				got[e.Name] = e.Value
			}
		}
		for k, v := range want[m.Name].Config {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", m.Name, k, got[k], v)
			}
		}
	}
}

func TestTopicDefinitions(t *testing.T) {
	for _, topic := range []Topic{EventsTopic(), DeadLetterTopic()} {
		if err := topic.Validate(); err != nil {
			t.Error(err)
		}
		if topic.ReplicationFactor != 3 || topic.Config["min.insync.replicas"] != "2" {
			t.Errorf("%s: replication %d, min.insync.replicas %s; want 3 and 2 so one broker may fail",
				topic.Name, topic.ReplicationFactor, topic.Config["min.insync.replicas"])
		}
	}
	one := EventsTopic().ForBrokers(1)
	if one.ReplicationFactor != 1 || one.Config["min.insync.replicas"] != "1" {
		t.Errorf("ForBrokers(1) = rf %d, min isr %s", one.ReplicationFactor, one.Config["min.insync.replicas"])
	}
	if EventsTopic().Config["min.insync.replicas"] != "2" {
		t.Error("ForBrokers changed the original's config map")
	}
	dlqRetention, err1 := strconv.ParseInt(DeadLetterTopic().Config["retention.ms"], 10, 64)
	evRetention, err2 := strconv.ParseInt(EventsTopic().Config["retention.ms"], 10, 64)
	if err1 != nil || err2 != nil || evRetention <= 0 {
		t.Fatalf("retention.ms: dead letters %v, events %v; want a positive number of ms for each", err1, err2)
	}
	if dlqRetention <= evRetention {
		t.Errorf("dead letters kept %d ms, events %d ms: dead letters should stay longer", dlqRetention, evRetention)
	}
}

func TestEnsureTopicsRejectsBadDefinitions(t *testing.T) {
	cases := map[string]Topic{
		"empty name":    {Partitions: 1, ReplicationFactor: 1},
		"bad character": {Name: "a/b", Partitions: 1, ReplicationFactor: 1},
		"no partitions": {Name: "x", ReplicationFactor: 1},
		"no replicas":   {Name: "x", Partitions: 1},
	}
	for name, topic := range cases {
		t.Run(name, func(t *testing.T) {
			err := EnsureTopics(context.Background(), []string{unreachable}, topic)
			if err == nil || !strings.HasPrefix(err.Error(), "kafka: topic") {
				t.Fatalf("error = %v, want a topic validation error", err)
			}
		})
	}
}
