package routing

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/functions/router/limits"
	"github.com/trustplane/trustplane/functions/router/providers"
	"github.com/trustplane/trustplane/functions/router/routing/routingtest"
)

func mustParse(t testing.TB, yaml string) *Table {
	t.Helper()
	r, err := Parse([]byte(yaml), providers.NewHTTPClient(16), func(string) string { return "test-key" }, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The weighted order draws the first target by weight: over many draws each target comes first
// in proportion to its weight.
func TestWeightedOrderFollowsTheWeights(t *testing.T) {
	cfg := mustParse(t, routingtest.TwoTargets("weighted", "http://a.invalid", "http://b.invalid", ""))
	r := &Router{Rand: rand.New(rand.NewPCG(3, 4))}
	const draws = 100000
	first := map[string]int{}
	for i := 0; i < draws; i++ {
		order := r.order(cfg.models["gpt"])
		if len(order) != 2 || order[0] == order[1] {
			t.Fatalf("order %v", order)
		}
		first[order[0].Model]++
	}
	// Seeded, so the counts are fixed; the bounds are also what an unseeded source would meet
	// but for a chance below 1e-6: 75,000 ± 5.3 standard deviations (137 each).
	if n := first["model-a"]; n < 74270 || n > 75730 {
		t.Errorf("model-a first in %d of %d draws, want about 75,000", n, draws)
	}
}

func TestParseConfigNamesEveryProblem(t *testing.T) {
	_, err := Parse([]byte(`
providers:
  - {name: o, type: openai}
  - {name: x, type: bogus}
  - {name: az, type: azure, api_key_env: MISSING}
models:
  - name: m
    strategy: fastest
    targets: [{provider: nope, model: q}]
retry: {max_attempts: 99}
limits: {tenant: {requests_per_minute: -1}}
`), http.DefaultClient, func(string) string { return "" }, os.ReadFile)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"needs api_key_env", `"bogus"`, "MISSING", "fastest", `unknown provider "nope"`, "max_attempts", "limits.tenant"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "test-key") {
		t.Error("a key leaked into an error")
	}
}

func TestScopesUseTheKeyRecordsLimits(t *testing.T) {
	cfg := mustParse(t, fmt.Sprintf(routingtest.MockRoute, "  key: {requests_per_minute: 100, tokens_per_minute: 1000, usd_per_day: 5}\n  tenants: {acme: {usd_per_day: 50}}\n  models: {gpt: {requests_per_minute: 7}}"))
	own := cfg.Scopes(authclient.Principal{KeyID: "k1", Tenant: "acme", Limits: &authclient.Limits{RequestsPerMinute: 2, USDPerDay: 0.5}}, "gpt")
	want := []limits.Scope{
		{ID: "key:k1", Limit: limits.Limit{RequestsPerMinute: 2, USDPerDay: 0.5}},
		{ID: "tenant:acme", Limit: limits.Limit{USDPerDay: 50}},
		{ID: "model:gpt", Limit: limits.Limit{RequestsPerMinute: 7}},
	}
	if fmt.Sprint(own) != fmt.Sprint(want) {
		t.Errorf("scopes %v, want %v", own, want)
	}
	def := cfg.Scopes(authclient.Principal{KeyID: "k2", Tenant: "other"}, "mock")
	if len(def) != 2 || def[0].Limit != (limits.Limit{RequestsPerMinute: 100, TokensPerMinute: 1000, USDPerDay: 5}) || def[1].Limit != (limits.Limit{}) {
		t.Errorf("default scopes %v", def)
	}
}
