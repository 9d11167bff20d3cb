package pricing

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCostUsesTheFirstPricedModel(t *testing.T) {
	tab := Table{"gpt-4o-mini": {InputPerMTok: 0.15, OutputPerMTok: 0.6}}
	c := tab.Cost(1_000_000, 500_000, "", "unknown", "gpt-4o-mini")
	if c.Input != 0.15 || c.Output != 0.3 || c.Total != c.Input+c.Output {
		t.Fatalf("cost %+v", c)
	}
	if c := tab.Cost(10, 10, "unknown"); c.Total != 0 {
		t.Fatalf("unpriced model cost %+v", c)
	}
}

func TestParseReadsTheRoutingFilesPrices(t *testing.T) {
	doc := "providers: [{name: mock, type: mock}]\nprices:\n  m1: {input_per_mtok: 1, output_per_mtok: 2}\n"
	tab, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if tab["m1"] != (Price{1, 2}) || len(tab) != 1 {
		t.Fatalf("table %+v", tab)
	}
	if _, err := Parse([]byte("prices: {a: {input_per_mtok: -1}, b: {output_per_mtok: -2}}")); err == nil ||
		!strings.Contains(err.Error(), "prices[a]") || !strings.Contains(err.Error(), "prices[b]") {
		t.Fatalf("negative prices: %v", err)
	}
	if _, err := Parse([]byte("prices: [1, 2]")); err == nil {
		t.Fatal("a list of prices was accepted")
	}
	if tab, err := Parse([]byte("models: []")); err != nil || tab == nil || len(tab) != 0 {
		t.Fatalf("no prices: %v %v", tab, err)
	}
}

func TestLoad(t *testing.T) {
	if tab, err := Load(""); err != nil || len(tab) != 0 {
		t.Fatalf("empty path: %v %v", tab, err)
	}
	p := filepath.Join(t.TempDir(), "routing.yaml")
	if err := os.WriteFile(p, []byte("prices: {x: {input_per_mtok: 3, output_per_mtok: 4}}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if tab, err := Load(p); err != nil || tab["x"] != (Price{3, 4}) {
		t.Fatalf("load: %v %v", tab, err)
	}
	if _, err := Load(p + ".missing"); err == nil {
		t.Fatal("missing file loaded")
	}
}
