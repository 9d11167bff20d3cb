package routing

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/eventing/pricing"
	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/functions/router/limits"
	"github.com/trustplane/trustplane/functions/router/openai"
	"github.com/trustplane/trustplane/functions/router/providers"
)

// Table is a parsed, validated routing file: what serves each model, and the prices, retries,
// breakers and limits that apply.
type Table struct {
	models  map[string]*Route
	names   []string
	prices  pricing.Table
	retry   RetryConfig
	circuit CircuitConfig
	limits  LimitsConfig
}

// Route is a model clients ask for and the targets that serve it.
type Route struct {
	name     string
	strategy string
	targets  []*Target
}

// Target is a provider's model serving a route.
type Target struct {
	id           string // provider/model: breaker and latency state survive reloads under it
	Provider     providers.Provider
	ProviderName string
	Model        string
	weight       int
	// Timeout bounds a non-streaming attempt, and a stream's wait for each chunk.
	Timeout time.Duration
}

// Route is the route of model, if the table has one.
func (t *Table) Route(model string) (*Route, bool) {
	rt, ok := t.models[model]
	return rt, ok
}

// Models are the model names clients may ask for, sorted.
func (t *Table) Models() []string { return t.names }

// Parse parses and validates a routing file. getenv and readFile resolve provider keys. The
// error names every problem found, never a key.
func Parse(data []byte, client *http.Client, getenv func(string) string, readFile func(string) ([]byte, error)) (*Table, error) {
	var f File
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, err
	}
	var p problems
	provs, timeouts := p.providers(f.Providers, client, getenv, readFile)
	t := &Table{models: map[string]*Route{}, prices: f.Prices, retry: p.retry(f.Retry), circuit: p.circuit(f.Circuit), limits: f.Limits}
	for i, mc := range f.Models {
		where := fmt.Sprintf("models[%d] (%s)", i, mc.Name)
		if mc.Name == "" {
			p.add("models[%d]: name is required", i)
			continue
		}
		if _, dup := t.models[mc.Name]; dup {
			p.add("%s: duplicate model name", where)
		}
		t.models[mc.Name] = p.route(where, mc, provs, timeouts)
		t.names = append(t.names, mc.Name)
	}
	if len(t.models) == 0 {
		p.add("at least one model is required")
	}
	sort.Strings(t.names)
	if err := f.Prices.Validate(); err != nil {
		p = append(p, err)
	}
	p.limits(f.Limits)
	if err := errors.Join(p...); err != nil {
		return nil, err
	}
	return t, nil
}

// problems collects what is wrong with a routing file, so that one error names all of it.
type problems []error

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Errorf(format, args...)) }

// providers builds the file's providers, by name, and their default target timeouts.
func (p *problems) providers(cfgs []providers.Config, client *http.Client, getenv func(string) string, readFile func(string) ([]byte, error)) (map[string]providers.Provider, map[string]time.Duration) {
	out := map[string]providers.Provider{}
	timeouts := map[string]time.Duration{}
	for i, pc := range cfgs {
		where := fmt.Sprintf("providers[%d] (%s)", i, pc.Name)
		if pc.Name == "" {
			p.add("providers[%d]: name is required", i)
			continue
		}
		if _, dup := out[pc.Name]; dup {
			p.add("%s: duplicate provider name", where)
			continue
		}
		prov, err := providers.New(pc, client, getenv, readFile)
		if err != nil {
			p.add("%s: %v", where, err)
			continue
		}
		out[pc.Name] = prov
		timeouts[pc.Name] = time.Duration(pc.Timeout)
	}
	return out, timeouts
}

// route builds a model's route from its targets.
func (p *problems) route(where string, mc ModelConfig, provs map[string]providers.Provider, timeouts map[string]time.Duration) *Route {
	rt := &Route{name: mc.Name, strategy: mc.Strategy}
	if rt.strategy == "" {
		rt.strategy = StrategyPriority
	}
	switch rt.strategy {
	case StrategyPriority, StrategyWeighted, StrategyLeastLatency:
	default:
		p.add("%s: strategy must be priority, weighted or least-latency, got %q", where, mc.Strategy)
	}
	if len(mc.Targets) == 0 {
		p.add("%s: at least one target is required", where)
	}
	for j, tc := range mc.Targets {
		prov, ok := provs[tc.Provider]
		if !ok {
			p.add("%s: targets[%d]: unknown provider %q", where, j, tc.Provider)
			continue
		}
		if tc.Model == "" {
			p.add("%s: targets[%d]: model is required", where, j)
		}
		w := tc.Weight
		if w < 0 {
			p.add("%s: targets[%d]: weight must not be negative", where, j)
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
		rt.targets = append(rt.targets, &Target{id: tc.Provider + "/" + tc.Model, Provider: prov, ProviderName: tc.Provider, Model: tc.Model, weight: w, Timeout: timeout})
	}
	return rt
}

// retry checks the retry settings and fills in their defaults.
func (p *problems) retry(r RetryConfig) RetryConfig {
	if r.MaxAttempts < 0 || r.MaxAttempts > 10 {
		p.add("retry.max_attempts must be between 1 and 10, got %d", r.MaxAttempts)
	}
	if r.MaxAttempts == 0 {
		r.MaxAttempts = 3
	}
	if r.BaseBackoff == 0 {
		r.BaseBackoff = providers.Duration(100 * time.Millisecond)
	}
	if r.MaxBackoff == 0 {
		r.MaxBackoff = providers.Duration(5 * time.Second)
	}
	return r
}

// circuit checks the breaker settings and fills in their defaults.
func (p *problems) circuit(c CircuitConfig) CircuitConfig {
	if c.FailureThreshold < 0 {
		p.add("circuit.failure_threshold must not be negative")
	}
	if c.FailureThreshold == 0 {
		c.FailureThreshold = 5
	}
	if c.Cooldown == 0 {
		c.Cooldown = providers.Duration(30 * time.Second)
	}
	return c
}

func (p *problems) limits(l LimitsConfig) {
	errs := []error{l.Key.Validate("limits.key"), l.Tenant.Validate("limits.tenant")}
	for n, lim := range l.Tenants {
		errs = append(errs, lim.Validate("limits.tenants."+n))
	}
	for n, lim := range l.Models {
		errs = append(errs, lim.Validate("limits.models."+n))
	}
	for _, err := range errs {
		if err != nil {
			*p = append(*p, err)
		}
	}
}

// Scopes are the limits that apply to a principal calling model.
func (t *Table) Scopes(p authclient.Principal, model string) []limits.Scope {
	key := t.limits.Key
	if l := p.Limits; l != nil {
		// A key with limits in its record has exactly those (zero: none of that kind).
		key = limits.Limit{RequestsPerMinute: l.RequestsPerMinute, TokensPerMinute: l.TokensPerMinute, USDPerDay: l.USDPerDay}
	}
	tenant, ok := t.limits.Tenants[p.Tenant]
	if !ok {
		tenant = t.limits.Tenant
	}
	out := []limits.Scope{{ID: "key:" + p.KeyID, Limit: key}, {ID: "tenant:" + p.Tenant, Limit: tenant}}
	if m, ok := t.limits.Models[model]; ok {
		out = append(out, limits.Scope{ID: "model:" + model, Limit: m})
	}
	return out
}

// Cost prices usage by the served model, the target's model or the alias, whichever has a price.
func (t *Table) Cost(u openai.Usage, models ...string) catalog.Cost {
	return t.prices.Cost(uint64(max(u.PromptTokens, 0)), uint64(max(u.CompletionTokens, 0)), models...)
}
