package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// benchObservations builds n generations with ~1 KB of input and output each.
func benchObservations(n int) []Observation {
	text := `{"text":"` + strings.Repeat("lorem ipsum ", 85) + `"}`
	start := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	out := make([]Observation, n)
	for i := range out {
		out[i] = Observation{
			Envelope: Envelope{TenantID: "tenant-bench", ProjectID: "proj-1", ID: fmt.Sprintf("obs-%d", i),
				EventSource: "/bench", EventID: fmt.Sprintf("evt-%d", i), Version: uint64(i + 1),
				Metadata: map[string]string{"k": "v"}},
			TraceID: fmt.Sprintf("trace-%d", i/10), Type: TypeGeneration, Name: "llm",
			StartTime: start.Add(time.Duration(i) * time.Millisecond), EndTime: start.Add(time.Second),
			Model: "gpt-x", Input: text, Output: text, Usage: Usage{PromptTokens: 100, CompletionTokens: 200, TotalTokens: 300,
				TotalCost: 0.001}, Level: LevelDefault,
		}
	}
	return out
}

var benchSizes = []int{1000, 5000}

// BenchmarkRawInsert is the floor: the same rows appended straight to a driver batch.
func BenchmarkRawInsert(b *testing.B) {
	st := openMigrated(b)
	ctx := context.Background()
	query := "INSERT INTO " + st.db + ".observations (" + strings.Join(observationColumns, ", ") + ")"
	for _, n := range benchSizes {
		rows := benchObservations(n)
		values := make([][]any, n)
		for i := range rows {
			values[i] = rows[i].values(1)
		}
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			for b.Loop() {
				batch, err := st.Conn().PrepareBatch(ctx, query)
				if err != nil {
					b.Fatal(err)
				}
				for _, v := range values {
					if err := batch.Append(v...); err != nil {
						b.Fatal(err)
					}
				}
				if err := batch.Send(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkStoreWrite is the same insert through Store.Write: validation, version fill-in and
// metadata arrays included.
func BenchmarkStoreWrite(b *testing.B) {
	st := openMigrated(b)
	ctx := context.Background()
	for _, n := range benchSizes {
		batch := Batch{Observations: benchObservations(n)}
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			for b.Loop() {
				if err := st.Write(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
