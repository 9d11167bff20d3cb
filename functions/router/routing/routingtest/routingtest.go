// Package routingtest holds the routing files that router's and routing's tests share.
package routingtest

import "fmt"

// TwoTargets is a routing file with one model, gpt, on two OpenAI-compatible providers a
// (weight 3) and b (weight 1) at the given base URLs, chosen by strategy; extra is appended
// as more top-level YAML.
func TwoTargets(strategy, a, b, extra string) string {
	return fmt.Sprintf(`
providers:
  - {name: a, type: openai-compatible, base_url: %q}
  - {name: b, type: openai-compatible, base_url: %q}
models:
  - name: gpt
    strategy: %s
    targets: [{provider: a, model: model-a, weight: 3}, {provider: b, model: model-b, weight: 1}]
%s`, a, b, strategy, extra)
}

// MockRoute is a routing file with model gpt on the mock provider, priced, whose limits
// section is the one %s (fmt.Sprintf it in).
const MockRoute = `
providers: [{name: m, type: mock}]
models:
  - name: gpt
    targets: [{provider: m, model: mock}]
prices:
  mock: {input_per_mtok: 1, output_per_mtok: 2}
limits:
%s
`
