package persist

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/eventing/catalog"
)

// The write path: rows/s through persist's group commit (each delivery's rows submitted on their
// own, sharing inserts with the deliveries in flight) against a raw clickhouse-go batch insert of
// the same rows. Decoding the delivered events is measured apart (BenchmarkDecode) and, with the
// HTTP delivery, in the dispatcher-to-ClickHouse benchmark of deploy/local.
// Run with: go test -run '^$' -bench . ./functions/persist/

const (
	benchRows        = 20000
	benchConcurrency = 2000 // deliveries in flight, as the dispatcher keeps them
)

func benchEvents(n int) []cloudevents.Event {
	text := `{"text":"` + strings.Repeat("lorem ipsum ", 85) + `"}`
	out := make([]cloudevents.Event, n)
	for i := range out {
		out[i] = telemetry(fmt.Sprintf("evt-%d", i), catalog.TypeObservation, fmt.Sprintf(
			`{"id":"obs-%d","trace_id":"trace-%d","type":"GENERATION","name":"llm","start_time":"2026-11-29T10:00:00Z","end_time":"2026-11-29T10:00:01Z",`+
				`"model":"gpt-x","input":%s,"output":%s,"usage":{"prompt_tokens":100,"completion_tokens":200,"total_tokens":300},"cost":{"total":0.001},"metadata":{"k":"v"}}`,
			i, i/10, text, text))
	}
	return out
}

func BenchmarkWritePath(b *testing.B) {
	events := benchEvents(benchRows)
	ctx := context.Background()

	batches := make([]clickhouse.Batch, len(events))
	for i, e := range events {
		batch, err := Rows(e, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		batches[i] = batch
	}

	b.Run("raw-clickhouse-go-batch", func(b *testing.B) {
		st := openStore(b)
		query := "INSERT INTO " + st.MigrateOptions().Database + ".observations (tenant_id, project_id, id, event_source, event_id, version, " +
			"metadata_keys, metadata_values, trace_id, parent_observation_id, type, name, start_time, end_time, completion_start_time, model, " +
			"model_parameters, input, output, prompt_tokens, completion_tokens, total_tokens, input_cost, output_cost, total_cost, level, status_message)"
		rows := make([]clickhouse.Observation, len(batches))
		for i, batch := range batches {
			rows[i] = batch.Observations[0]
		}
		for b.Loop() {
			for start := 0; start < len(rows); start += 5000 {
				batch, err := st.Conn().PrepareBatch(ctx, query)
				if err != nil {
					b.Fatal(err)
				}
				for _, o := range rows[start:min(start+5000, len(rows))] {
					if err := batch.Append(o.TenantID, o.ProjectID, o.ID, o.EventSource, o.EventID, o.Version,
						[]string{"k"}, []string{"v"}, o.TraceID, o.ParentObservationID, o.Type, o.Name, o.StartTime, o.EndTime,
						time.Unix(0, 0).UTC(), o.Model, o.ModelParameters, o.Input, o.Output, o.PromptTokens, o.CompletionTokens,
						o.TotalTokens, o.InputCost, o.OutputCost, o.TotalCost, o.Level, o.StatusMessage); err != nil {
						b.Fatal(err)
					}
				}
				if err := batch.Send(); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(benchRows*b.N)/b.Elapsed().Seconds(), "rows/s")
	})

	b.Run(fmt.Sprintf("persist-group-commit-%d-in-flight", benchConcurrency), func(b *testing.B) {
		st := openStore(b)
		cfg := defaultConfig(b)
		reg := prometheus.NewRegistry()
		g := NewGroupCommit(st, cfg.GroupCommit(), reg)
		defer g.Close(ctx)
		for b.Loop() {
			next := make(chan clickhouse.Batch)
			var wg sync.WaitGroup
			for range benchConcurrency {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for batch := range next {
						if err := g.Write(ctx, batch); err != nil {
							b.Error(err)
						}
					}
				}()
			}
			for _, batch := range batches {
				next <- batch
			}
			close(next)
			wg.Wait()
		}
		b.ReportMetric(float64(benchRows*b.N)/b.Elapsed().Seconds(), "rows/s")
		var h prometheusHistogram
		h.read(b, reg, "trustplane_persist_batch_rows")
		b.ReportMetric(float64(h.sum)/float64(h.count), "rows/insert")
		var ins prometheusHistogram
		ins.read(b, reg, "trustplane_persist_insert_seconds")
		b.ReportMetric(ins.sumf/float64(ins.count)*1000, "ms/insert")
	})
}

// BenchmarkDecode is the per-delivery CPU cost of checking an event against its schema and
// mapping it to a row (observations with ~1 KB of input and of output).
func BenchmarkDecode(b *testing.B) {
	events := benchEvents(100)
	for i := 0; b.Loop(); i++ {
		if _, err := Rows(events[i%len(events)], time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
