package kafkatest

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// clientConfig is the configuration of the harness's own clients. It does not use the kafka
// package's NewConfig: that package's tests import this one.
func clientConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = "kafkatest"
	cfg.Version = sarama.V3_6_0_0
	return cfg
}

var topicSeq atomic.Int64

// NewTopic creates a topic of its own for one test, named prefix plus a unique suffix, with the
// given partitions and the brokers' default replication factor, and waits until every partition
// can be read (a new topic's leaders reach the brokers' metadata a little after the controller
// reports them). It returns the topic's name; the test fails if the topic cannot be made.
func NewTopic(t testing.TB, addrs []string, prefix string, partitions int32) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), topicSeq.Add(1))
	deadline := time.Now().Add(30 * time.Second)
	// A broker on a loaded machine can miss a metadata request now and then (sarama then reports
	// that it ran out of brokers): making the topic is retried until the deadline, and a topic
	// that an earlier try made after all is as good.
	for {
		err := createTopic(addrs, name, partitions)
		if err == nil || errors.Is(err, sarama.ErrTopicAlreadyExists) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kafkatest: create topic %s on %v: %v", name, addrs, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	client, err := sarama.NewClient(addrs, clientConfig())
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	defer client.Close()
	for p := range partitions {
		for {
			_ = client.RefreshMetadata(name)
			_, err := client.GetOffset(name, p, sarama.OffsetNewest)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("kafkatest: topic %s partition %d never became readable: %v", name, p, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return name
}

// createTopic makes the topic with the brokers' default.replication.factor (-1), which the
// harness fits to the number of nodes.
func createTopic(addrs []string, name string, partitions int32) error {
	admin, err := sarama.NewClusterAdmin(addrs, clientConfig())
	if err != nil {
		return fmt.Errorf("connect admin: %w", err)
	}
	defer admin.Close()
	return admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: -1}, false)
}

// ReadTopic reads every partition of topic from the oldest offset until n records arrived and
// returns them in arrival order (offset order within a partition). It waits for a topic that
// does not exist yet or whose leaders are not known yet; the test fails if the n records do not
// arrive within timeout.
func ReadTopic(t testing.TB, addrs []string, topic string, n int, timeout time.Duration) []*sarama.ConsumerMessage {
	t.Helper()
	return readN(t, addrs, topic, n, timeout, 0)
}

// ExtraRecordWait is how long ReadTopicExactly waits for a record beyond the expected ones.
const ExtraRecordWait = 500 * time.Millisecond

// ReadTopicExactly is ReadTopic, and then the test fails if a further record arrives within
// ExtraRecordWait: it would be a duplicate, or a record that should never have been written.
func ReadTopicExactly(t testing.TB, addrs []string, topic string, n int, timeout time.Duration) []*sarama.ConsumerMessage {
	t.Helper()
	return readN(t, addrs, topic, n, timeout, ExtraRecordWait)
}

// FindRecord reads every partition of topic from the oldest offset until a record matches and
// returns it, skipping the others. Like ReadTopic it waits for the topic to exist; the test
// fails if no record matches within timeout.
func FindRecord(t testing.TB, addrs []string, topic string, timeout time.Duration, match func(*sarama.ConsumerMessage) bool) *sarama.ConsumerMessage {
	t.Helper()
	var found *sarama.ConsumerMessage
	take := func(m *sarama.ConsumerMessage) {
		if match(m) {
			found = m
		}
	}
	if !read(t, addrs, topic, timeout, 0, take, func() bool { return found != nil }) {
		t.Fatalf("kafkatest: no matching record in %s within %s", topic, timeout)
	}
	return found
}

func readN(t testing.TB, addrs []string, topic string, n int, timeout, extraWait time.Duration) []*sarama.ConsumerMessage {
	t.Helper()
	var out []*sarama.ConsumerMessage
	take := func(m *sarama.ConsumerMessage) { out = append(out, m) }
	if !read(t, addrs, topic, timeout, extraWait, take, func() bool { return len(out) >= n }) {
		t.Fatalf("kafkatest: read %d of %d records from %s within %s", len(out), n, topic, timeout)
	}
	return out
}

// read hands every record of topic, from the oldest offset and in arrival order, to take until
// done reports true, and then, if extraWait > 0, fails the test if one more record arrives
// within extraWait. It returns false if the timeout passes before done.
func read(t testing.TB, addrs []string, topic string, timeout, extraWait time.Duration, take func(*sarama.ConsumerMessage), done func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	c, err := sarama.NewConsumer(addrs, clientConfig())
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	defer c.Close()
	parts, err := c.Partitions(topic)
	for err != nil || len(parts) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("kafkatest: topic %s has no partitions within %s: %v", topic, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
		parts, err = c.Partitions(topic)
	}

	recs := make(chan *sarama.ConsumerMessage)
	stop := make(chan struct{})
	var pcs []sarama.PartitionConsumer
	defer func() {
		close(stop) // releases the forwarders below
		for _, pc := range pcs {
			_ = pc.Close()
		}
	}()
	for _, p := range parts {
		pc, err := consumePartition(c, topic, p, deadline)
		if err != nil {
			t.Fatalf("kafkatest: consume %s/%d: %v", topic, p, err)
		}
		pcs = append(pcs, pc)
		go func() {
			for m := range pc.Messages() {
				select {
				case recs <- m:
				case <-stop:
					return
				}
			}
		}()
	}

	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for !done() {
		select {
		case m := <-recs:
			take(m)
		case <-timer.C:
			return false
		}
	}
	if extraWait > 0 {
		select {
		case m := <-recs:
			t.Fatalf("kafkatest: unexpected extra record at %s/%d@%d, key %q", m.Topic, m.Partition, m.Offset, m.Key)
		case <-time.After(extraWait):
		}
	}
	return true
}

// consumePartition retries until the partition's leader is known or the deadline passes.
func consumePartition(c sarama.Consumer, topic string, p int32, deadline time.Time) (sarama.PartitionConsumer, error) {
	for {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err == nil {
			return pc, nil
		}
		if errors.Is(err, sarama.ErrClosedClient) || time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
