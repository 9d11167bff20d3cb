package kafka

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/IBM/sarama"
)

// Names of the topics behind the Kafka-class Broker.
const (
	DefaultTopic           = "trustplane-events"
	DefaultDeadLetterTopic = "trustplane-events-dlq"
)

// Topic is the definition of one topic as data: what EnsureTopics creates and
// what the Strimzi KafkaTopic manifests say for production.
type Topic struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	// Config holds topic-level settings (retention.ms, min.insync.replicas, ...).
	Config map[string]string
}

// EventsTopic is the telemetry topic the Broker uses.
func EventsTopic() Topic { return replicatedTopic(DefaultTopic, 12, 7*24*time.Hour) }

// DeadLetterTopic receives events that kept failing delivery. It is kept
// longer than the events topic so an operator has time to look at them.
func DeadLetterTopic() Topic { return replicatedTopic(DefaultDeadLetterTopic, 3, 30*24*time.Hour) }

// replicatedTopic is a topic sized for the production cluster of three
// brokers: every write is on three replicas and acknowledged by at least two
// (acks=all), so one broker can be lost without losing or refusing writes.
func replicatedTopic(name string, partitions int32, retention time.Duration) Topic {
	return Topic{
		Name:              name,
		Partitions:        partitions,
		ReplicationFactor: 3,
		Config: map[string]string{
			"min.insync.replicas": "2",
			"retention.ms":        strconv.FormatInt(retention.Milliseconds(), 10),
			"cleanup.policy":      "delete",
			// The producer compresses; keep its batches as they are.
			"compression.type": "producer",
		},
	}
}

// ForBrokers returns the topic fitted to a cluster of n brokers: the
// replication factor is at most n and min.insync.replicas at most the
// replication factor (a single local broker gets 1 and 1).
func (t Topic) ForBrokers(n int) Topic {
	out := t
	out.Config = make(map[string]string, len(t.Config))
	for k, v := range t.Config {
		out.Config[k] = v
	}
	if n >= 1 && int(out.ReplicationFactor) > n {
		out.ReplicationFactor = int16(n)
	}
	if v, ok := out.Config["min.insync.replicas"]; ok {
		if m, err := strconv.Atoi(v); err == nil && m > int(out.ReplicationFactor) {
			out.Config["min.insync.replicas"] = strconv.Itoa(int(out.ReplicationFactor))
		}
	}
	return out
}

// Kafka allows at most 249 characters from this set in a topic name.
var topicNameRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// Validate reports what is wrong with the definition, if anything.
func (t Topic) Validate() error {
	switch {
	case !topicNameRE.MatchString(t.Name) || t.Name == "." || t.Name == "..":
		return fmt.Errorf("kafka: topic name %q: want 1-249 characters of [a-zA-Z0-9._-]", t.Name)
	case t.Partitions < 1:
		return fmt.Errorf("kafka: topic %s: partitions must be at least 1, got %d", t.Name, t.Partitions)
	case t.ReplicationFactor < 1:
		return fmt.Errorf("kafka: topic %s: replication factor must be at least 1, got %d", t.Name, t.ReplicationFactor)
	}
	return nil
}

// EnsureTopics creates the topics that do not exist yet and waits until every
// partition of each has a leader. Topics that already exist are left as they
// are (their partitions and settings are not changed), so it is safe to call
// on every start, from several processes at once.
func EnsureTopics(ctx context.Context, brokers []string, topics ...Topic) error {
	for _, t := range topics {
		if err := t.Validate(); err != nil {
			return err
		}
	}
	if len(brokers) == 0 {
		return errors.New("kafka: no broker addresses")
	}
	admin, err := sarama.NewClusterAdmin(brokers, NewConfig("trustplane-topics"))
	if err != nil {
		return fmt.Errorf("kafka: connect admin to %v: %w", brokers, err)
	}
	defer admin.Close()

	existing, err := admin.ListTopics()
	if err != nil {
		return fmt.Errorf("kafka: list topics: %w", err)
	}
	for _, t := range topics {
		if _, ok := existing[t.Name]; ok {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		detail := &sarama.TopicDetail{
			NumPartitions:     t.Partitions,
			ReplicationFactor: t.ReplicationFactor,
			ConfigEntries:     make(map[string]*string, len(t.Config)),
		}
		for k, v := range t.Config {
			detail.ConfigEntries[k] = &v
		}
		err := admin.CreateTopic(t.Name, detail, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("kafka: create topic %s: %w", t.Name, err)
		}
	}
	for _, t := range topics {
		if err := waitForLeaders(ctx, admin, t.Name); err != nil {
			return err
		}
	}
	return nil
}

// waitForLeaders polls until every partition of the topic has a leader: a
// freshly created topic refuses writes for a moment.
func waitForLeaders(ctx context.Context, admin sarama.ClusterAdmin, name string) error {
	var last error
	for {
		last = topicReady(admin, name)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafka: topic %s not ready: %w (last: %v)", name, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func topicReady(admin sarama.ClusterAdmin, name string) error {
	metas, err := admin.DescribeTopics([]string{name})
	if err != nil {
		return err
	}
	if len(metas) != 1 {
		return fmt.Errorf("described %d topics", len(metas))
	}
	m := metas[0]
	if !errors.Is(m.Err, sarama.ErrNoError) {
		return m.Err
	}
	if len(m.Partitions) == 0 {
		return errors.New("no partitions yet")
	}
	for _, p := range m.Partitions {
		if !errors.Is(p.Err, sarama.ErrNoError) {
			return fmt.Errorf("partition %d: %w", p.ID, p.Err)
		}
		if p.Leader < 0 {
			return fmt.Errorf("partition %d has no leader", p.ID)
		}
	}
	return nil
}
