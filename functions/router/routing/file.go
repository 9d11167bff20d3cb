// Package routing decides which provider serves a call: the routing file (providers, the models
// clients ask for and the targets serving them, prices, retries, circuit breakers, limits), the
// strategies that order a model's targets, each target's circuit breaker, and the retry loop that
// falls back from target to target. Source keeps the routing file current while router runs.
package routing

import (
	"github.com/trustplane/trustplane/eventing/pricing"
	"github.com/trustplane/trustplane/functions/router/limits"
	"github.com/trustplane/trustplane/functions/router/providers"
)

// File is the routing file (YAML or JSON), mounted from a ConfigMap. Provider keys are never in
// it: a provider names the environment variable or file (from a Secret) holding its key.
type File struct {
	Providers []providers.Config `json:"providers"`
	Models    []ModelConfig      `json:"models"`
	// Prices are USD per million tokens, by served model (or alias).
	Prices  pricing.Table `json:"prices,omitempty"`
	Retry   RetryConfig   `json:"retry,omitempty"`
	Circuit CircuitConfig `json:"circuit,omitempty"`
	Limits  LimitsConfig  `json:"limits,omitempty"`
}

// Strategies for choosing among a model's targets.
const (
	StrategyPriority     = "priority"
	StrategyWeighted     = "weighted"
	StrategyLeastLatency = "least-latency"
)

// ModelConfig is a model name clients use and the targets that serve it.
type ModelConfig struct {
	Name     string         `json:"name"`
	Strategy string         `json:"strategy,omitempty"` // default priority
	Targets  []TargetConfig `json:"targets"`
}

// TargetConfig is a provider model serving an alias.
type TargetConfig struct {
	Provider string             `json:"provider"`
	Model    string             `json:"model"`
	Weight   int                `json:"weight,omitempty"`
	Timeout  providers.Duration `json:"timeout,omitempty"`
}

// Price is what a model costs, USD per million tokens (the shared price table's entry).
type Price = pricing.Price

// RetryConfig bounds retries and fallbacks.
type RetryConfig struct {
	MaxAttempts int                `json:"max_attempts,omitempty"` // over all targets; default 3
	BaseBackoff providers.Duration `json:"base_backoff,omitempty"` // default 100ms
	MaxBackoff  providers.Duration `json:"max_backoff,omitempty"`  // default 5s; a longer Retry-After ends the retries
}

// CircuitConfig sets the breaker of every target.
type CircuitConfig struct {
	FailureThreshold int                `json:"failure_threshold,omitempty"` // consecutive failures; default 5
	Cooldown         providers.Duration `json:"cooldown,omitempty"`          // open time before a probe; default 30s
}

// LimitsConfig sets the limits. A key's own limits (from its record in auth) replace Key.
type LimitsConfig struct {
	Key     limits.Limit            `json:"key,omitempty"`
	Tenant  limits.Limit            `json:"tenant,omitempty"`
	Tenants map[string]limits.Limit `json:"tenants,omitempty"`
	Models  map[string]limits.Limit `json:"models,omitempty"`
}

// MockConfig is the routing used when no file is configured: every model name clients are
// likely to try, served by the in-process mock provider.
const MockConfig = `
providers:
  - name: mock
    type: mock
models:
  - name: mock
    targets: [{provider: mock, model: mock}]
  - name: gpt-4o-mini
    targets: [{provider: mock, model: mock-gpt-4o-mini}]
  - name: claude-sonnet
    targets: [{provider: mock, model: mock-claude-sonnet}]
  - name: text-embedding-3-small
    targets: [{provider: mock, model: mock-embedding}]
prices:
  mock: {input_per_mtok: 0.15, output_per_mtok: 0.6}
  mock-gpt-4o-mini: {input_per_mtok: 0.15, output_per_mtok: 0.6}
  mock-claude-sonnet: {input_per_mtok: 3, output_per_mtok: 15}
`
