package clickhouse

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/trustplane/trustplane/eventing/catalog"
)

// TableLLMCalls holds one row per call through the LLM gateway (router).
const TableLLMCalls Table = "llm_calls"

// LLMCall is one row of the llm_calls table. Its ID is the call id.
type LLMCall struct {
	Envelope
	TraceID        string
	Timestamp      time.Time
	Endpoint       string
	ModelRequested string
	ModelServed    string
	Provider       string
	Status         string
	StatusCode     uint16
	Error          string
	Stream         bool
	Attempts       uint16
	AttemptsJSON   string // every attempt: provider, model, status, latency
	UserID         string
	Usage
	LatencyMs  float64
	GatewayMs  float64
	ProviderMs float64
	TTFTMs     float64 // 0 unless streamed
	Capture    string  // full, truncated or none
	Input      string  // JSON text
	Output     string  // JSON text
}

var llmCallColumns = append(slices.Clone(envelopeColumns), "trace_id", "timestamp", "endpoint", "model_requested", "model_served",
	"provider", "status", "status_code", "error", "stream", "attempts", "attempts_json", "user_id",
	"prompt_tokens", "completion_tokens", "total_tokens", "input_cost", "output_cost", "total_cost",
	"latency_ms", "gateway_ms", "provider_ms", "ttft_ms", "capture", "input", "output")

func (c *LLMCall) validate() error {
	return errors.Join(c.Envelope.validate(), required("timestamp", c.Timestamp), nonEmpty("endpoint", c.Endpoint),
		oneOf("status", c.Status, catalog.LLMCallStatuses()...))
}

func (c *LLMCall) values(defaultVersion uint64) []any {
	var stream uint8
	if c.Stream {
		stream = 1
	}
	return append(c.Envelope.values(defaultVersion), c.TraceID, dbTime(c.Timestamp), c.Endpoint, c.ModelRequested, c.ModelServed,
		c.Provider, c.Status, c.StatusCode, c.Error, stream, c.Attempts, c.AttemptsJSON, c.UserID,
		c.PromptTokens, c.CompletionTokens, c.TotalTokens, c.InputCost, c.OutputCost, c.TotalCost,
		c.LatencyMs, c.GatewayMs, c.ProviderMs, c.TTFTMs, c.Capture, c.Input, c.Output)
}

// writeLLMCalls inserts the batch's LLM calls; Write calls it after the other tables.
func (s *Store) writeLLMCalls(ctx context.Context, rows []LLMCall, now uint64) error {
	return insert(ctx, s, TableLLMCalls, llmCallColumns, rows, func(c *LLMCall) time.Time { return c.Timestamp },
		func(c *LLMCall) []any { return c.values(now) })
}
