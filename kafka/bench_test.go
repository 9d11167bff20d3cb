package kafka

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/trustplane/trustplane/kafka/kafkatest"
)

// benchEvents builds n events of about 400 bytes of data, over 100 traces.
func benchEvents(n int) []cloudevents.Event {
	events := make([]cloudevents.Event, n)
	payload := map[string]any{
		"model": "gpt-4o-mini", "prompt_tokens": 812, "completion_tokens": 97,
		"latency_ms": 412.5, "status": "ok",
		"attributes": map[string]string{"route": "/v1/chat/completions", "provider": "openai", "region": "eu-west-1", "user": "u-12345"},
		"text":       "The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the lazy dog. The quick brown fox jumps.",
	}
	for i := range events {
		e := kafkatest.NewEvent(i, fmt.Sprintf("trace-%d", i%100))
		if err := e.SetData("application/json", payload); err != nil {
			panic(err)
		}
		events[i] = e
	}
	return events
}

func reportRate(b *testing.B, n int, elapsed time.Duration) {
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
}

// BenchmarkAsyncProducerSend measures AsyncProducer.Send with many callers,
// each waiting for the acknowledgement of its own events.
func BenchmarkAsyncProducerSend(b *testing.B) {
	for _, compression := range []sarama.CompressionCodec{sarama.CompressionLZ4, sarama.CompressionSnappy, sarama.CompressionNone} {
		// callers is how many concurrent Send calls (think: ingest requests
		// in flight) share the producer.
		for _, c := range []struct{ callers, batch int }{{64, 1}, {512, 1}, {64, 100}} {
			b.Run(fmt.Sprintf("compression=%s/callers=%d/events-per-call=%d", compression, c.callers, c.batch), func(b *testing.B) {
				benchSend(b, compression, c.callers, c.batch)
			})
		}
	}
}

func benchSend(b *testing.B, compression sarama.CompressionCodec, callers, batch int) {
	addrs := shared.Broker(b).Addrs()
	topic := ensureTestTopic(b, addrs, "bench-send-"+compression.String(), 4)
	cfg := NewConfig("bench")
	cfg.Producer.Compression = compression
	p := newProducer(b, addrs, WithTopic(topic.Name), WithConfig(cfg))
	events := benchEvents(1000)

	var next atomic.Int64
	var failed atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				first := int(next.Add(int64(batch))) - batch
				if first >= b.N {
					return
				}
				// batch divides len(events), so a call never wraps around.
				off := first % len(events)
				call := events[off : off+min(batch, b.N-first)]
				for _, err := range p.Send(context.Background(), call) {
					if err != nil {
						failed.Add(1)
					}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d events failed", f)
	}
	reportRate(b, b.N, elapsed)
}

// BenchmarkAsyncProducerRawSarama is the baseline: the same configuration and
// encoding straight into a sarama AsyncProducer, counting acknowledgements
// in one reader, with no per-call waiting.
func BenchmarkAsyncProducerRawSarama(b *testing.B) {
	addrs := shared.Broker(b).Addrs()
	topic := ensureTestTopic(b, addrs, "bench-raw", 4)
	cfg := NewConfig("bench-raw")
	sp, err := sarama.NewAsyncProducer(addrs, cfg)
	if err != nil {
		b.Fatal(err)
	}
	events := benchEvents(1000)

	var failed atomic.Int64
	acked := make(chan struct{})
	go func() {
		for range sp.Errors() {
			failed.Add(1)
		}
	}()
	go func() {
		n := 0
		for range sp.Successes() {
			n++
			if n == b.N {
				close(acked)
			}
		}
	}()
	b.ResetTimer()
	start := time.Now()
	go func() {
		for i := range b.N {
			msg := &sarama.ProducerMessage{Topic: topic.Name}
			if err := kafka_sarama.WriteProducerMessage(context.Background(), binding.ToMessage(&events[i%len(events)]), msg); err != nil {
				panic(err)
			}
			sp.Input() <- msg
		}
	}()
	select {
	case <-acked:
	case <-time.After(5 * time.Minute):
		b.Fatalf("not every message acknowledged; %d failed", failed.Load())
	}
	elapsed := time.Since(start)
	b.StopTimer()
	sp.AsyncClose()
	reportRate(b, b.N, elapsed)
}
