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

// genFindings makes n findings as guard writes them: a few per scanned entity (their spans
// apart), every dimension varied, scores in [0, 1] with more digits than millionths.
func genFindings(rng *rand.Rand, tenant, project string, start time.Time, hours, n int) []clickhouse.Finding {
	type det struct{ detector, category, entity, severity string }
	dets := []det{{"pii.email", "pii", "EMAIL", "medium"}, {"pii.credit_card", "pii", "CREDIT_CARD", "high"},
		{"secret.aws_access_key", "secret", "AWS_ACCESS_KEY", "high"}, {"injection.prompt", "injection", "PROMPT_INJECTION", "high"},
		{"pii.ip_address", "pii", "IP_ADDRESS", "low"}}
	sides := []string{"input", "output", "request", "response"}
	actions := []string{"observe", "observe", "mask", "block"}
	sources := []string{"io.trustplane.telemetry.observation.v1", "io.trustplane.llm.call.v1"}
	out := make([]clickhouse.Finding, n)
	var ts time.Time
	for i := range out {
		if i%3 == 0 { // a new scanned entity
			ts = start.Add(time.Duration(rng.Int64N(int64(hours) * int64(time.Hour)))).Truncate(time.Millisecond)
		}
		d := dets[rng.IntN(len(dets))]
		span := uint32(i%3) * 100
		out[i] = clickhouse.Finding{TenantID: tenant, ProjectID: project, SourceType: sources[(i/3)%2], SourceID: fmt.Sprintf("src-%d", i/3),
			SourceEventID: fmt.Sprintf("ev-s-%d", i/3), TraceID: fmt.Sprintf("trace-%d", i/9), Timestamp: ts,
			Side: sides[rng.IntN(len(sides))], Detector: d.detector, Category: d.category, Entity: d.entity, Severity: d.severity,
			Score: rng.Float64(), SpanStart: span, SpanEnd: span + uint32(1+rng.IntN(60)), Preview: "****",
			Action: actions[rng.IntN(len(actions))], Reasons: []string{"pattern"}, EventSource: "/test", EventID: fmt.Sprintf("ev-f-%d", i),
			Version: 1_000_000}
	}
	return out
}
