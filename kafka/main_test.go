package kafka

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/IBM/sarama"
	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/trustplane/trustplane/kafka/kafkatest"
)

// The package's tests share one real Apache Kafka node, started by the first
// test that needs it (so fuzzing and pure tests start none) and stopped in
// TestMain.
var shared kafkatest.Shared

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

// ensureTestTopic creates a fresh topic with the given partitions on the
// addresses, fitted to one broker.
func ensureTestTopic(t testing.TB, addrs []string, name string, partitions int32) Topic {
	t.Helper()
	topic := EventsTopic().ForBrokers(1)
	topic.Name = name
	topic.Partitions = partitions
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := EnsureTopics(ctx, addrs, topic); err != nil {
		t.Fatal(err)
	}
	return topic
}

func newProducer(t testing.TB, addrs []string, opts ...Option) *AsyncProducer {
	t.Helper()
	p, err := NewAsyncProducer(addrs, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func eventJSON(t testing.TB, e *cloudevents.Event) string {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func header(rec *sarama.ConsumerMessage, key string) (string, bool) {
	for _, h := range rec.Headers {
		if string(h.Key) == key {
			return string(h.Value), true
		}
	}
	return "", false
}
