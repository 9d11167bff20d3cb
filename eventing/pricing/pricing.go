// Package pricing is the price table of LLM models, USD per million tokens: router prices the
// calls it serves with it, and ingest the generations it maps from OpenTelemetry spans, so that
// one table (the routing file's prices) gives both the same cost.
package pricing

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/trustplane/trustplane/eventing/catalog"
)

// Price is what a model costs, USD per million tokens.
type Price struct {
	InputPerMTok  float64 `json:"input_per_mtok"`
	OutputPerMTok float64 `json:"output_per_mtok"`
}

// Table maps a model name (served model or alias) to its price.
type Table map[string]Price

// Validate names every negative price.
func (t Table) Validate() error {
	var bad []string
	for m, p := range t {
		if p.InputPerMTok < 0 || p.OutputPerMTok < 0 {
			bad = append(bad, fmt.Sprintf("prices[%s]: prices must not be negative", m))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return fmt.Errorf("%s", strings.Join(bad, "; "))
}

// Cost prices a generation's tokens by the first of models that has a price; zero when none
// has one.
func (t Table) Cost(promptTokens, completionTokens uint64, models ...string) catalog.Cost {
	for _, m := range models {
		if p, ok := t[m]; ok && m != "" {
			c := catalog.Cost{Input: float64(promptTokens) * p.InputPerMTok / 1e6, Output: float64(completionTokens) * p.OutputPerMTok / 1e6}
			c.Total = c.Input + c.Output
			return c
		}
	}
	return catalog.Cost{}
}

// Parse reads the `prices` map of a YAML or JSON document, such as the router's routing file;
// its other keys are ignored, so the routing file's ConfigMap serves both.
func Parse(data []byte) (Table, error) {
	var doc struct {
		Prices Table `json:"prices"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("prices: %w", err)
	}
	if err := doc.Prices.Validate(); err != nil {
		return nil, err
	}
	if doc.Prices == nil {
		doc.Prices = Table{}
	}
	return doc.Prices, nil
}

// Load reads Parse's document from a file; an empty path is an empty table.
func Load(path string) (Table, error) {
	if path == "" {
		return Table{}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("prices: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}
