package catalog

import (
	"encoding/json"
	"time"
)

// TypeLLMCall is one call through the LLM gateway (router). It shares TelemetryPrefix, so the
// persist Trigger delivers it with the other telemetry.
const TypeLLMCall = "io.trustplane.telemetry.llmcall.v1"

// Statuses of an LLM call.
const (
	LLMCallSuccess     = "success"      // the provider answered
	LLMCallError       = "error"        // every attempt failed, or the provider refused the request
	LLMCallRateLimited = "rate_limited" // refused by the gateway's limits or budgets
	LLMCallInvalid     = "invalid"      // refused before routing: bad JSON, unknown model, too large
	LLMCallCancelled   = "cancelled"    // the client went away before the answer was complete
)

// LLMCallStatuses are the statuses an LLM call may have, the values of its status field in
// the schema and in storage.
func LLMCallStatuses() []string {
	return []string{LLMCallSuccess, LLMCallError, LLMCallRateLimited, LLMCallInvalid, LLMCallCancelled}
}

// LLMCall is the data of TypeLLMCall. Input and Output follow the gateway's capture policy
// (Capture says which was applied): full, truncated, or none (both left out).
type LLMCall struct {
	ID             string            `json:"id"`
	TraceID        string            `json:"trace_id,omitempty"`
	Timestamp      time.Time         `json:"timestamp"`
	Endpoint       string            `json:"endpoint"`
	ModelRequested string            `json:"model_requested"`
	ModelServed    string            `json:"model_served,omitempty"`
	Provider       string            `json:"provider,omitempty"`
	Status         string            `json:"status"`
	StatusCode     int               `json:"status_code"`
	Error          string            `json:"error,omitempty"`
	Stream         bool              `json:"stream,omitempty"`
	Attempts       []LLMAttempt      `json:"attempts,omitempty"`
	Usage          Usage             `json:"usage,omitzero"`
	Cost           Cost              `json:"cost,omitzero"`
	Latency        LLMLatency        `json:"latency"`
	User           string            `json:"user,omitempty"`
	Capture        string            `json:"capture,omitempty"`
	Input          json.RawMessage   `json:"input,omitempty"`
	Output         json.RawMessage   `json:"output,omitempty"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	// Guard is what the gateway's inline security checks found and did; zero when they did
	// not run (no policy applies).
	Guard LLMGuard `json:"guard,omitzero"`
}

// Outcomes of the gateway's inline checks on one call.
const (
	GuardAllowed   = "allowed"    // nothing found that the policy acts on, or only observed
	GuardMasked    = "masked"     // values were replaced by placeholders
	GuardBlocked   = "blocked"    // the request was refused, or the response cut
	GuardErrorOpen = "error_open" // a check failed and the policy fails open
)

// LLMGuard is the inline security record of one call: the outcome, every finding with its
// side (request or response) and action, and the time the checks took.
type LLMGuard struct {
	Outcome   string    `json:"outcome"`
	Findings  []Finding `json:"findings,omitempty"`
	LatencyMs float64   `json:"latency_ms,omitempty"`
}

// LLMAttempt is one try of one target: retries and fallbacks each add one.
type LLMAttempt struct {
	Provider   string  `json:"provider"`
	Model      string  `json:"model"`
	Status     string  `json:"status"` // success or error
	StatusCode int     `json:"status_code,omitempty"`
	Error      string  `json:"error,omitempty"`
	LatencyMs  float64 `json:"latency_ms"`
}

// LLMLatency splits a call's time: the gateway's own overhead, the provider's time (all
// attempts), and for streams the time to the first token.
type LLMLatency struct {
	TotalMs    float64 `json:"total_ms"`
	GatewayMs  float64 `json:"gateway_ms"`
	ProviderMs float64 `json:"provider_ms"`
	TTFTMs     float64 `json:"ttft_ms,omitempty"`
}

// PartitionKey implements Payload: the trace the call belongs to, else the call itself.
func (c *LLMCall) PartitionKey() string {
	if c.TraceID != "" {
		return c.TraceID
	}
	return c.ID
}
