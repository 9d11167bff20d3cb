package query

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/trustplane/trustplane/clickhouse"
)

// genCalls makes n llm calls of one tenant and project spread over the hours from start, with
// every dimension and measure varied, latencies on both sides of quantilesTiming's 1024 ms and
// 30 s steps, from a seeded source.
func genCalls(rng *rand.Rand, tenant, project string, start time.Time, hours, n int) []clickhouse.LLMCall {
	models := []string{"gpt-4o", "gpt-4o-mini", "claude-sonnet", "llama"}
	providers := []string{"openai", "anthropic", "mock"}
	statuses := []string{"success", "success", "success", "error", "rate_limited"}
	out := make([]clickhouse.LLMCall, n)
	for i := range out {
		lat := rng.Float64() * 2000
		if rng.IntN(10) == 0 {
			lat = 1000 + rng.Float64()*40000
		}
		stream := rng.IntN(2) == 0
		var ttft float64
		if stream {
			ttft = rng.Float64() * 800
		}
		out[i] = clickhouse.LLMCall{
			Envelope: clickhouse.Envelope{TenantID: tenant, ProjectID: project, ID: fmt.Sprintf("call-%d", i),
				EventSource: "/test", EventID: fmt.Sprintf("ev-%d", i), Version: 1_000_000},
			TraceID:   fmt.Sprintf("trace-%d", i/3),
			Timestamp: start.Add(time.Duration(rng.Int64N(int64(hours) * int64(time.Hour)))).Truncate(time.Second),
			Endpoint:  "chat.completions", ModelRequested: models[rng.IntN(len(models))], ModelServed: models[rng.IntN(len(models))],
			Provider: providers[rng.IntN(len(providers))], Status: statuses[rng.IntN(len(statuses))], StatusCode: 200,
			Stream: stream, Attempts: 1, UserID: fmt.Sprintf("user-%d", rng.IntN(7)),
			Usage: clickhouse.Usage{PromptTokens: uint64(rng.IntN(4000)), CompletionTokens: uint64(rng.IntN(1000)),
				InputCost: rng.Float64() / 100, OutputCost: rng.Float64() / 100},
			LatencyMs: lat, GatewayMs: rng.Float64() * 3, ProviderMs: lat * 0.9, TTFTMs: ttft, Capture: "none",
		}
		out[i].TotalTokens = out[i].PromptTokens + out[i].CompletionTokens
		out[i].TotalCost = out[i].InputCost + out[i].OutputCost
	}
	return out
}

// genObservations makes n observations, a third of them without an end time.
func genObservations(rng *rand.Rand, tenant, project string, start time.Time, hours, n int) []clickhouse.Observation {
	types := []string{"SPAN", "GENERATION", "EVENT"}
	levels := []string{"DEFAULT", "DEFAULT", "WARNING", "ERROR", "DEBUG"}
	models := []string{"", "gpt-4o", "claude-sonnet"}
	out := make([]clickhouse.Observation, n)
	for i := range out {
		st := start.Add(time.Duration(rng.Int64N(int64(hours) * int64(time.Hour)))).Truncate(time.Second)
		var end time.Time
		if rng.IntN(3) != 0 {
			end = st.Add(time.Duration(rng.IntN(40)) * time.Second)
		}
		out[i] = clickhouse.Observation{
			Envelope: clickhouse.Envelope{TenantID: tenant, ProjectID: project, ID: fmt.Sprintf("obs-%d", i),
				EventSource: "/test", EventID: fmt.Sprintf("ev-o-%d", i), Version: 1_000_000},
			TraceID: fmt.Sprintf("trace-%d", i/4), Type: types[rng.IntN(len(types))], Name: fmt.Sprintf("step-%d", rng.IntN(5)),
			StartTime: st, EndTime: end, Model: models[rng.IntN(len(models))], Level: levels[rng.IntN(len(levels))],
			Usage: clickhouse.Usage{PromptTokens: uint64(rng.IntN(100)), TotalCost: rng.Float64() / 1000},
		}
	}
	return out
}
