//go:build rehearsal

package kafka

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/trustplane/trustplane/kafka/kafkatest"
)

// TestRehearsalBrokerLossLosesNoAcknowledgedEvent runs the production shape
// (3 brokers, replication 3, min.insync.replicas 2, acks=all), kills one
// broker while events stream in, and checks that every event Send reported
// as durable is in the topic afterwards. Run with `make rehearse-kafka`.
func TestRehearsalBrokerLossLosesNoAcknowledgedEvent(t *testing.T) {
	cluster := kafkatest.StartCluster(t, 3)
	addrs := cluster.Addrs()
	topic := EventsTopic()
	topic.Name = "rehearsal"
	topic.Partitions = 6
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := EnsureTopics(ctx, addrs, topic); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, addrs, WithTopic(topic.Name), WithAckTimeout(30*time.Second))

	var (
		mu     sync.Mutex
		acked  = map[string]bool{}
		failed int
		stop   = make(chan struct{})
		wg     sync.WaitGroup
	)
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for call := 0; ; call++ {
				select {
				case <-stop:
					return
				default:
				}
				events := make([]cloudevents.Event, 20)
				for i := range events {
					events[i] = kafkatest.NewEvent(i, fmt.Sprintf("trace-%d-%d", g, call%10))
					events[i].SetID(fmt.Sprintf("g%d-c%d-e%d", g, call, i))
				}
				errs := p.Send(context.Background(), events)
				mu.Lock()
				for i, err := range errs {
					if err == nil {
						acked[events[i].ID()] = true
					} else {
						failed++
					}
				}
				mu.Unlock()
			}
		}()
	}
	// Thousands of acknowledgements take seconds, a leader election after the kill a few more:
	// 3 minutes is only used up by a machine stalled for minutes, not by chance.
	waitFor := func(what string, n int) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for ackedCount() < n {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("%s: only %d of %d events acknowledged", what, ackedCount(), n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	waitFor("before the broker loss", 5000)
	killedAt := time.Now()
	if err := cluster.StopBroker(1); err != nil {
		t.Fatal(err)
	}
	before := ackedCount()
	t.Logf("killed broker 2 after %d acknowledged events", before)
	waitFor("with two brokers left", before+5000)
	t.Logf("writes went on with two brokers: %d more acknowledged, %s after the kill", ackedCount()-before, time.Since(killedAt).Round(time.Millisecond))
	if err := cluster.StartBroker(1); err != nil {
		t.Fatal(err)
	}
	waitFor("after the broker came back", ackedCount()+2000)
	close(stop)
	wg.Wait()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d events acknowledged, %d reported as failed (may or may not be stored)", len(acked), failed)

	missing := readUntilSeen(t, addrs, topic.Name, acked)
	if len(missing) > 0 {
		t.Fatalf("%d acknowledged events missing from the topic, e.g. %v", len(missing), missing[:min(5, len(missing))])
	}
}

// readUntilSeen consumes the topic from the start until every id in want has
// been read or two minutes pass, and returns the ids never seen.
func readUntilSeen(t *testing.T, addrs []string, topic string, want map[string]bool) []string {
	t.Helper()
	c, err := sarama.NewConsumer(addrs, NewConfig("rehearsal-reader"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	parts, err := c.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	recs := make(chan *sarama.ConsumerMessage, 1024)
	for _, part := range parts {
		pc, err := c.ConsumePartition(topic, part, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		go func() {
			for m := range pc.Messages() {
				recs <- m
			}
		}()
	}
	unseen := make(map[string]bool, len(want))
	for id := range want {
		unseen[id] = true
	}
	deadline := time.After(2 * time.Minute)
	for len(unseen) > 0 {
		select {
		case m := <-recs:
			ev, err := EventFromRecord(m)
			if err != nil {
				t.Fatal(err)
			}
			delete(unseen, ev.ID())
		case <-deadline:
			var ids []string
			for id := range unseen {
				ids = append(ids, id)
			}
			return ids
		}
	}
	return nil
}
