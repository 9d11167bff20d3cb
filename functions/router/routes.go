package router

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// FileConfig is the routing file (YAML or JSON), mounted from a ConfigMap. Provider keys are
// never in it: a provider names the environment variable or file (from a Secret) holding its
// key.
type FileConfig struct {
	Providers []ProviderConfig `json:"providers"`
	Models    []ModelConfig    `json:"models"`
	// Prices are USD per million tokens, by served model (or alias).
	Prices  map[string]Price `json:"prices,omitempty"`
	Retry   RetryConfig      `json:"retry,omitempty"`
	Circuit CircuitConfig    `json:"circuit,omitempty"`
	Limits  LimitsConfig     `json:"limits,omitempty"`
}

// Provider types.
const (
	ProviderOpenAI           = "openai"
	ProviderAzure            = "azure"
	ProviderAnthropic        = "anthropic"
	ProviderOpenAICompatible = "openai-compatible"
	ProviderMock             = "mock"
)

// ProviderConfig is one provider account.
type ProviderConfig struct {
	Name       string   `json:"name"`
	Type       string   `json:"type"`
	BaseURL    string   `json:"base_url,omitempty"`
	APIKeyEnv  string   `json:"api_key_env,omitempty"`
	APIKeyFile string   `json:"api_key_file,omitempty"`
	APIVersion string   `json:"api_version,omitempty"` // Azure api-version, Anthropic anthropic-version
	Timeout    Duration `json:"timeout,omitempty"`     // default per target timeout
	MaxTokens  int64    `json:"max_tokens,omitempty"`  // Anthropic: max_tokens when the client sets none
	Latency    Duration `json:"latency,omitempty"`     // mock: simulated provider time
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
	Provider string   `json:"provider"`
	Model    string   `json:"model"`
	Weight   int      `json:"weight,omitempty"`
	Timeout  Duration `json:"timeout,omitempty"`
}

// Price is what a model costs, USD per million tokens.
type Price struct {
	InputPerMTok  float64 `json:"input_per_mtok"`
	OutputPerMTok float64 `json:"output_per_mtok"`
}

// RetryConfig bounds retries and fallbacks.
type RetryConfig struct {
	MaxAttempts int      `json:"max_attempts,omitempty"` // over all targets; default 3
	BaseBackoff Duration `json:"base_backoff,omitempty"` // default 100ms
	MaxBackoff  Duration `json:"max_backoff,omitempty"`  // default 5s; a longer Retry-After ends the retries
}

// CircuitConfig sets the breaker of every target.
type CircuitConfig struct {
	FailureThreshold int      `json:"failure_threshold,omitempty"` // consecutive failures; default 5
	Cooldown         Duration `json:"cooldown,omitempty"`          // open time before a probe; default 30s
}

// LimitsConfig sets the limits. A key's own limits (from its record in auth) replace Key.
type LimitsConfig struct {
	Key     Limit            `json:"key,omitempty"`
	Tenant  Limit            `json:"tenant,omitempty"`
	Tenants map[string]Limit `json:"tenants,omitempty"`
	Models  map[string]Limit `json:"models,omitempty"`
}

// Duration is a time.Duration written as "30s" in the file.
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration must be a string such as \"30s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("bad duration %q", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Routing is a loaded, validated FileConfig.
type Routing struct {
	models  map[string]*route
	names   []string
	prices  map[string]Price
	retry   RetryConfig
	circuit CircuitConfig
	limits  LimitsConfig
}

type route struct {
	name     string
	strategy string
	targets  []*target
}

type target struct {
	id       string // provider/model: breaker and latency state survive reloads under it
	provider Provider
	pname    string
	model    string
	weight   int
	timeout  time.Duration
}

// ParseConfig parses and validates a routing file. getenv and readFile resolve provider keys.
func ParseConfig(data []byte, client *http.Client, getenv func(string) string, readFile func(string) ([]byte, error)) (*Routing, error) {
	var fc FileConfig
	if err := yaml.UnmarshalStrict(data, &fc); err != nil {
		return nil, fmt.Errorf("routing config: %w", err)
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	providers := map[string]Provider{}
	timeouts := map[string]time.Duration{}
	for i, pc := range fc.Providers {
		where := fmt.Sprintf("providers[%d] (%s)", i, pc.Name)
		if pc.Name == "" {
			bad("providers[%d]: name is required", i)
			continue
		}
		if _, dup := providers[pc.Name]; dup {
			bad("%s: duplicate provider name", where)
			continue
		}
		p, err := newProvider(pc, client, getenv, readFile)
		if err != nil {
			bad("%s: %v", where, err)
			continue
		}
		providers[pc.Name] = p
		timeouts[pc.Name] = time.Duration(pc.Timeout)
	}
	r := &Routing{models: map[string]*route{}, prices: fc.Prices, retry: fc.Retry, circuit: fc.Circuit, limits: fc.Limits}
	for i, mc := range fc.Models {
		where := fmt.Sprintf("models[%d] (%s)", i, mc.Name)
		if mc.Name == "" {
			bad("models[%d]: name is required", i)
			continue
		}
		if _, dup := r.models[mc.Name]; dup {
			bad("%s: duplicate model name", where)
		}
		rt := &route{name: mc.Name, strategy: mc.Strategy}
		if rt.strategy == "" {
			rt.strategy = StrategyPriority
		}
		switch rt.strategy {
		case StrategyPriority, StrategyWeighted, StrategyLeastLatency:
		default:
			bad("%s: strategy must be priority, weighted or least-latency, got %q", where, mc.Strategy)
		}
		if len(mc.Targets) == 0 {
			bad("%s: at least one target is required", where)
		}
		for j, tc := range mc.Targets {
			p, ok := providers[tc.Provider]
			if !ok {
				bad("%s: targets[%d]: unknown provider %q", where, j, tc.Provider)
				continue
			}
			if tc.Model == "" {
				bad("%s: targets[%d]: model is required", where, j)
			}
			w := tc.Weight
			if w < 0 {
				bad("%s: targets[%d]: weight must not be negative", where, j)
			}
			if w == 0 {
				w = 1
			}
			timeout := time.Duration(tc.Timeout)
			if timeout == 0 {
				timeout = timeouts[tc.Provider]
			}
			if timeout == 0 {
				timeout = 60 * time.Second
			}
			rt.targets = append(rt.targets, &target{id: tc.Provider + "/" + tc.Model, provider: p, pname: tc.Provider, model: tc.Model, weight: w, timeout: timeout})
		}
		r.models[mc.Name] = rt
		r.names = append(r.names, mc.Name)
	}
	if len(r.models) == 0 {
		bad("at least one model is required")
	}
	sort.Strings(r.names)
	for m, p := range r.prices {
		if p.InputPerMTok < 0 || p.OutputPerMTok < 0 {
			bad("prices[%s]: prices must not be negative", m)
		}
	}
	if r.retry.MaxAttempts < 0 || r.retry.MaxAttempts > 10 {
		bad("retry.max_attempts must be between 1 and 10, got %d", r.retry.MaxAttempts)
	}
	if r.retry.MaxAttempts == 0 {
		r.retry.MaxAttempts = 3
	}
	if r.retry.BaseBackoff == 0 {
		r.retry.BaseBackoff = Duration(100 * time.Millisecond)
	}
	if r.retry.MaxBackoff == 0 {
		r.retry.MaxBackoff = Duration(5 * time.Second)
	}
	if r.circuit.FailureThreshold < 0 {
		bad("circuit.failure_threshold must not be negative")
	}
	if r.circuit.FailureThreshold == 0 {
		r.circuit.FailureThreshold = 5
	}
	if r.circuit.Cooldown == 0 {
		r.circuit.Cooldown = Duration(30 * time.Second)
	}
	errs = append(errs, fc.Limits.Key.validate("limits.key"), fc.Limits.Tenant.validate("limits.tenant"))
	for n, l := range fc.Limits.Tenants {
		errs = append(errs, l.validate("limits.tenants."+n))
	}
	for n, l := range fc.Limits.Models {
		errs = append(errs, l.validate("limits.models."+n))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("routing config: %w", err)
	}
	return r, nil
}

func newProvider(pc ProviderConfig, client *http.Client, getenv func(string) string, readFile func(string) ([]byte, error)) (Provider, error) {
	key, err := apiKey(pc, getenv, readFile)
	if err != nil {
		return nil, err
	}
	base := trimBase(pc.BaseURL)
	needURL := func(def string) (string, error) {
		if base == "" {
			base = def
		}
		if base == "" || !(strings.HasPrefix(base, "http://") || strings.HasPrefix(base, "https://")) {
			return "", fmt.Errorf("base_url must be an http(s) URL, got %q", pc.BaseURL)
		}
		return base, nil
	}
	switch pc.Type {
	case ProviderOpenAI, ProviderOpenAICompatible:
		def := ""
		if pc.Type == ProviderOpenAI {
			def = "https://api.openai.com/v1"
			if key == "" {
				return nil, errors.New("an openai provider needs api_key_env or api_key_file")
			}
		}
		u, err := needURL(def)
		if err != nil {
			return nil, err
		}
		return &openAIProvider{name: pc.Name, client: client, baseURL: u, apiKey: key}, nil
	case ProviderAzure:
		u, err := needURL("")
		if err != nil {
			return nil, err
		}
		if key == "" {
			return nil, errors.New("an azure provider needs api_key_env or api_key_file")
		}
		v := pc.APIVersion
		if v == "" {
			v = "2024-10-21"
		}
		return &openAIProvider{name: pc.Name, client: client, baseURL: u, apiKey: key, azure: true, apiVersion: v}, nil
	case ProviderAnthropic:
		u, err := needURL("https://api.anthropic.com")
		if err != nil {
			return nil, err
		}
		if key == "" {
			return nil, errors.New("an anthropic provider needs api_key_env or api_key_file")
		}
		v := pc.APIVersion
		if v == "" {
			v = "2023-06-01"
		}
		mt := pc.MaxTokens
		if mt <= 0 {
			mt = 4096
		}
		return &anthropicProvider{name: pc.Name, client: client, baseURL: u, apiKey: key, version: v, maxTokens: mt}, nil
	case ProviderMock:
		return &mockProvider{latency: time.Duration(pc.Latency)}, nil
	}
	return nil, fmt.Errorf("type must be openai, azure, anthropic, openai-compatible or mock, got %q", pc.Type)
}

// apiKey reads a provider's key from its environment variable or file; neither is required
// for an OpenAI-compatible server without auth. The key is never logged or echoed.
func apiKey(pc ProviderConfig, getenv func(string) string, readFile func(string) ([]byte, error)) (string, error) {
	switch {
	case pc.APIKeyEnv != "" && pc.APIKeyFile != "":
		return "", errors.New("set api_key_env or api_key_file, not both")
	case pc.APIKeyEnv != "":
		k := strings.TrimSpace(getenv(pc.APIKeyEnv))
		if k == "" {
			return "", fmt.Errorf("environment variable %s (api_key_env) is empty", pc.APIKeyEnv)
		}
		return k, nil
	case pc.APIKeyFile != "":
		b, err := readFile(pc.APIKeyFile)
		if err != nil {
			return "", fmt.Errorf("api_key_file: %w", err)
		}
		k := strings.TrimSpace(string(b))
		if k == "" {
			return "", fmt.Errorf("api_key_file %s is empty", pc.APIKeyFile)
		}
		return k, nil
	}
	return "", nil
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

// configSource loads the routing file and reloads it when its content, or the content of a
// provider key file it names, changes (a ConfigMap or Secret update swaps the mounted files). A
// bad new version is logged and the last good one kept.
type configSource struct {
	path   string
	load   func(data []byte, readFile func(string) ([]byte, error)) (*Routing, error)
	logger *slog.Logger
	sum    [sha256.Size]byte
}

func (c *configSource) read() (*Routing, bool, error) {
	data, err := os.ReadFile(c.path)
	if err != nil {
		return nil, false, fmt.Errorf("routing config: %w", err)
	}
	// The fingerprint covers the file and every key file read while loading it.
	h := sha256.New()
	h.Write(data)
	readFile := func(name string) ([]byte, error) {
		b, err := os.ReadFile(name)
		h.Write([]byte(name))
		h.Write(b)
		return b, err
	}
	r, err := c.load(data, readFile)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	if sum == c.sum {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	c.sum = sum
	return r, true, nil
}

// watch polls the file every interval and calls install with each new valid routing.
func (c *configSource) watch(ctx context.Context, interval time.Duration, install func(*Routing)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r, changed, err := c.read()
		switch {
		case err != nil:
			c.logger.Error("routing config not reloaded; keeping the previous one", "path", c.path, "error", err)
		case changed:
			install(r)
			c.logger.Info("routing config reloaded", "path", c.path, "models", len(r.names))
		}
	}
}

// LoadRouting reads the routing file, or the built-in mock routing when path is empty. watch,
// nil for the mock routing, polls the file and installs each valid new version.
func LoadRouting(path string, client *http.Client, logger *slog.Logger) (*Routing, func(ctx context.Context, interval time.Duration, install func(*Routing)), error) {
	load := func(data []byte, readFile func(string) ([]byte, error)) (*Routing, error) {
		return ParseConfig(data, client, os.Getenv, readFile)
	}
	if path == "" {
		logger.Warn("ROUTER_CONFIG is not set: serving the built-in mock models (no real provider is called)")
		r, err := load([]byte(MockConfig), os.ReadFile)
		return r, nil, err
	}
	src := &configSource{path: path, load: load, logger: logger}
	r, _, err := src.read()
	if err != nil {
		return nil, nil, err
	}
	return r, src.watch, nil
}
