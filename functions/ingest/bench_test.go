package ingest

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/functions/auth"
	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/functions/auth/authtest"
	"github.com/trustplane/trustplane/functions/runtime"
	"github.com/trustplane/trustplane/kafka"
)

// Ingest's throughput and latency against a raw sarama AsyncProducer writing the same events to
// the same broker, in one run. Run with: go test -run '^$' -bench . -benchtime 100000x ./functions/ingest/
// (with 20,000 events the raw producer's run lasts a tenth of a second and its start-up weighs
// on its rate: runs that short put ingest at a flattering 38% of it, against 23–29% at 100,000).

// benchObservation is an LLM generation of about 600 bytes of data.
func benchObservation(i int) string {
	return structured(fmt.Sprintf("evt-%d", i), catalog.TypeObservation, fmt.Sprintf(
		`{"id":"obs-%d","trace_id":"trace-%d","type":"GENERATION","name":"chat","start_time":"2026-11-29T10:00:00Z","end_time":"2026-11-29T10:00:01.2Z",`+
			`"model":"gpt-4o-mini","input":[{"role":"user","content":"What is the capital of France? Answer in one word, please."}],`+
			`"output":{"role":"assistant","content":"Paris."},"usage":{"prompt_tokens":21,"completion_tokens":2,"total_tokens":23},`+
			`"cost":{"input":0.00000315,"output":0.0000012,"total":0.00000435},"metadata":{"route":"/v1/chat/completions","region":"eu-west-1"}}`, i, i%500))
}

type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B, events int, elapsed time.Duration) {
	slices.Sort(l.d)
	q := func(p float64) float64 { return float64(l.d[int(p*float64(len(l.d)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

func BenchmarkIngest(b *testing.B) {
	b.Run("raw-sarama-async-producer", func(b *testing.B) {
		topic := newTopic(b)
		producer, err := sarama.NewAsyncProducer(brokers, kafka.NewConfig("bench-raw"))
		if err != nil {
			b.Fatal(err)
		}
		defer producer.Close()
		values := make([][]byte, 500)
		for i := range values {
			values[i] = []byte(benchObservation(i))
		}
		var lat latencies
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range b.N {
				select {
				case m := <-producer.Successes():
					lat.add(time.Since(m.Metadata.(time.Time)))
				case err := <-producer.Errors():
					b.Error(err)
				}
			}
		}()
		start := time.Now()
		for i := range b.N {
			producer.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprintf("trace-%d", i%500)),
				Value: sarama.ByteEncoder(values[i%len(values)]), Metadata: time.Now()}
		}
		<-done
		lat.report(b, b.N, time.Since(start))
	})

	for _, c := range []struct {
		name            string
		clients, events int
	}{
		{"single/clients=64", 64, 1},
		{"batched/clients=16/events-per-post=100", 16, 100},
	} {
		b.Run("ingest-"+c.name, func(b *testing.B) {
			url, key := benchServer(b)
			bodies := make([]string, 500/c.events)
			contentType := contentTypeCEStruct
			for j := range bodies {
				if c.events == 1 {
					bodies[j] = benchObservation(j)
					continue
				}
				contentType = contentTypeBatch
				parts := make([]string, c.events)
				for k := range parts {
					parts[k] = benchObservation(j*c.events + k)
				}
				bodies[j] = "[" + strings.Join(parts, ",") + "]"
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c.clients}}
			var next atomic.Int64
			var lat latencies
			var wg sync.WaitGroup
			posts := (b.N + c.events - 1) / c.events
			start := time.Now()
			for range c.clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := int(next.Add(1)) - 1
						if i >= posts {
							return
						}
						req, _ := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(bodies[i%len(bodies)]))
						req.Header.Set("Authorization", "Bearer "+key)
						req.Header.Set("Content-Type", contentType)
						t0 := time.Now()
						resp, err := client.Do(req)
						if err != nil {
							b.Error(err)
							return
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusAccepted {
							b.Errorf("status %d", resp.StatusCode)
							return
						}
						lat.add(time.Since(t0))
					}
				}()
			}
			wg.Wait()
			lat.report(b, posts*c.events, time.Since(start))
		})
	}
}

// benchServer runs ingest as in production: real HTTP, keys verified by the auth function over
// HTTP through the caching client, events produced to the real broker.
func benchServer(b *testing.B) (url, key string) {
	b.Helper()
	pepper := authtest.Pepper(b)
	key, rec, err := auth.NewRecord(pepper, auth.NewKey{Tenant: "bench", Project: "p", Scopes: []authclient.Scope{authclient.ScopeIngest}}, time.Now(), nil)
	if err != nil {
		b.Fatal(err)
	}
	store, err := auth.NewStore(pepper, []auth.Record{rec})
	if err != nil {
		b.Fatal(err)
	}
	authSrv := httptest.NewServer(runtime.CloudEventsHandler(auth.NewHandler(store, slog.New(slog.DiscardHandler))))
	b.Cleanup(authSrv.Close)
	verifier, err := authclient.New(authclient.ClientConfig{URL: authSrv.URL, CacheTTL: time.Minute, NegativeCacheTTL: time.Second, CacheSize: 100, Timeout: time.Second}, authclient.Options{})
	if err != nil {
		b.Fatal(err)
	}
	p, err := kafka.NewAsyncProducer(brokers, kafka.WithTopic(newTopic(b)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	srv := httptest.NewServer(NewHandler(verifier, p, HandlerOptions{Limits: defaultLimits(), RetryAfter: 2 * time.Second}))
	b.Cleanup(srv.Close)
	return srv.URL, key
}
