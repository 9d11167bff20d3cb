package router

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/functions/router/limits"
	"github.com/trustplane/trustplane/functions/router/openai"
	"github.com/trustplane/trustplane/functions/router/providers"
	"github.com/trustplane/trustplane/functions/router/routing"
)

// Capture policies for inputs and outputs in llm-call events.
const (
	CaptureFull      = "full"
	CaptureTruncated = "truncated"
	CaptureNone      = "none"
)

// Capture is how much of a call's input and output its event keeps.
type Capture struct {
	Mode     string
	MaxBytes int // for truncated: the most bytes of JSON kept per field
}

// apply keeps raw whole, cuts it to a JSON string of its first MaxBytes bytes, or drops it.
func (c Capture) apply(raw []byte) json.RawMessage {
	if len(raw) == 0 || c.Mode == CaptureNone {
		return nil
	}
	if c.Mode == CaptureFull || len(raw) <= c.MaxBytes {
		return json.RawMessage(raw)
	}
	cut := c.MaxBytes
	for cut > 0 && !utf8.RuneStart(raw[cut]) {
		cut--
	}
	s, _ := json.Marshal(string(raw[:cut]) + "…")
	return s
}

// call is one request being served and the event it becomes.
type call struct {
	ev           catalog.LLMCall
	principal    authclient.Principal
	start        time.Time
	end          time.Time // when the client had its answer, if the call's bookkeeping runs after that
	providerTime time.Duration
	waited       time.Duration
	ttft         time.Duration
	input        []byte
	output       []byte
	guard        *callGuard // nil when no content check runs
}

// Attempted records an attempt of the call (routing.Attempts).
func (c *call) Attempted(t *routing.Target, err error, elapsed time.Duration) {
	c.providerTime += elapsed
	a := catalog.LLMAttempt{Provider: t.ProviderName, Model: t.Model, Status: catalog.LLMCallSuccess, StatusCode: http.StatusOK, LatencyMs: ms(elapsed)}
	if err != nil {
		a.Status, a.StatusCode, a.Error = catalog.LLMCallError, 0, clip(err.Error(), 4096)
		var ue *providers.UpstreamError
		if errors.As(err, &ue) {
			a.StatusCode = ue.Status
		}
	}
	c.ev.Attempts = append(c.ev.Attempts, a)
}

// Waited records a wait between attempts (routing.Attempts): neither the provider's time nor
// router's own.
func (c *call) Waited(d time.Duration) { c.waited += d }

func (c *call) served(t *routing.Target, model string) {
	c.ev.Provider = t.ProviderName
	c.ev.ModelServed = clip(model, 512)
	if model == "" {
		c.ev.ModelServed = clip(t.Model, 512)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// llmCallType is the catalog's entry for the llm-call event.
var llmCallType, _ = catalog.Lookup(catalog.TypeLLMCall)

// finish completes the event and hands it to the recorder.
func (g *Gateway) finish(c *call) {
	end := c.end
	if end.IsZero() {
		end = time.Now()
	}
	total := end.Sub(c.start)
	gateway := max(total-c.providerTime-c.waited, 0)
	c.ev.Latency = catalog.LLMLatency{TotalMs: ms(total), GatewayMs: ms(gateway), ProviderMs: ms(c.providerTime), TTFTMs: ms(c.ttft)}
	c.guard.finish()
	g.calls.WithLabelValues(c.ev.Endpoint, c.ev.Status).Inc()
	if c.ev.Status == catalog.LLMCallSuccess {
		g.overhead.Observe(gateway.Seconds())
	}
	if g.opts.Recorder == nil || c.principal.Tenant == "" {
		return
	}
	c.ev.Capture = g.opts.Capture.Mode
	c.ev.Input, c.ev.Output = g.opts.Capture.apply(c.input), g.opts.Capture.apply(c.output)
	e := cloudevents.NewEvent()
	e.SetID(c.ev.ID)
	e.SetSource(EventSource)
	e.SetType(catalog.TypeLLMCall)
	e.SetTime(c.start)
	if err := e.SetData(cloudevents.ApplicationJSON, c.ev); err != nil {
		g.opts.Logger.Error("llm-call event not encoded", "error", err)
		return
	}
	// Checked as ingest checks every event: what does not match the catalog is never stored.
	partitionKey, problems := llmCallType.Validate(e.Data())
	if len(problems) > 0 {
		g.opts.Logger.Error("llm-call event does not match its schema; not recorded", "id", c.ev.ID, "problem", problems[0].String())
		return
	}
	catalog.Stamp(&e, catalog.Origin{Tenant: c.principal.Tenant, Project: c.principal.Project, KeyID: c.principal.KeyID}, partitionKey)
	g.opts.Recorder.Record(e)
}

// settle corrects the limits with the call's usage and cost, and records both.
func (g *Gateway) settle(c *call, cfg *routing.Table, adm *limits.Admission, t *routing.Target, u openai.Usage) {
	c.ev.Usage = catalog.Usage{PromptTokens: uint64(max(u.PromptTokens, 0)), CompletionTokens: uint64(max(u.CompletionTokens, 0)), TotalTokens: uint64(max(u.TotalTokens, 0))}
	if t != nil {
		c.ev.Cost = cfg.Cost(u, c.ev.ModelServed, t.Model, c.ev.ModelRequested)
	}
	// The client has its answer; the correction must not be lost to its going away. The
	// limiter bounds the wait.
	adm.Settle(context.Background(), u.TotalTokens, c.ev.Cost.Total, g.opts.Now())
}

// estimateTokens guesses a prompt's tokens before the call (about four bytes a token), for
// tokens-per-minute limits; the guess is corrected with the real usage afterwards.
func estimateTokens(raw []byte) int64 { return int64(len(raw)/4) + 1 }

// estimatedUsage stands in for the usage of a call whose provider reported none (a stream that
// ended before its usage chunk, a server that does not count): what was seen still counts
// against the limits and budgets.
func estimatedUsage(input []byte, outputBytes int) openai.Usage {
	u := openai.Usage{PromptTokens: estimateTokens(input), CompletionTokens: int64(outputBytes/4) + 1}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return u
}
