package catalog

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestDecodeFindings(t *testing.T) {
	f := mustDecode(t, TypeFinding, "testdata/finding.json").(*Findings)
	if f.PartitionKey() != "trace-1" || f.SourceID != "obs-1" || len(f.Findings) != 2 {
		t.Fatalf("findings decoded wrongly: %+v", f)
	}
	if a := f.Findings[0]; a.Detector != "secret.aws_access_key" || a.Start != 12 || a.End != 32 || a.Side != SideInput ||
		a.Action != ActionObserve || len(a.Reasons) != 2 || a.Truncated {
		t.Errorf("first finding: %+v", a)
	}
	if !f.Findings[1].Truncated || f.Findings[1].Fingerprint != "" {
		t.Errorf("second finding: %+v", f.Findings[1])
	}
	if (&Findings{SourceID: "call-1"}).PartitionKey() != "call-1" {
		t.Error("findings of an entity outside a trace must be partitioned by its id")
	}
	ct, _ := Lookup(TypeFinding)
	const head = `{"source_type":"io.trustplane.telemetry.observation.v1","source_id":"o","timestamp":"2026-11-29T10:00:00Z","findings":[`
	const item = `"detector":"pii.email","category":"pii","entity":"EMAIL","severity":"low","preview":"x","start":1,"end":2`
	for name, data := range map[string]string{
		"no findings list":  `{"source_type":"x","source_id":"o","timestamp":"2026-11-29T10:00:00Z"}`,
		"bad side":          head + `{` + item + `,"score":0.5,"action":"observe","side":"prompt"}]}`,
		"bad action":        head + `{` + item + `,"score":0.5,"action":"allow","side":"input"}]}`,
		"score above one":   head + `{` + item + `,"score":1.5,"action":"observe","side":"input"}]}`,
		"the value itself":  head + `{` + item + `,"score":0.5,"action":"observe","side":"input","value":"a@b.c"}]}`,
		"negative start":    `{"source_type":"x","source_id":"o","timestamp":"2026-11-29T10:00:00Z","findings":[{"detector":"d","category":"pii","entity":"E","severity":"low","preview":"x","start":-1,"end":2,"score":0.5,"action":"observe","side":"input"}]}`,
		"source type caps":  `{"source_type":"X","source_id":"o","timestamp":"2026-11-29T10:00:00Z","findings":[]}`,
		"missing timestamp": `{"source_type":"x","source_id":"o","findings":[]}`,
	} {
		if _, problems := ct.Decode([]byte(data)); len(problems) == 0 {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDecodeLLMCallGuard(t *testing.T) {
	c := mustDecode(t, TypeLLMCall, "testdata/llmcall-guard.json").(*LLMCall)
	if c.Guard.Outcome != GuardMasked || len(c.Guard.Findings) != 1 || c.Guard.Findings[0].Side != SideRequest || c.Guard.LatencyMs != 0.12 {
		t.Errorf("guard decoded wrongly: %+v", c.Guard)
	}
	raw, err := json.Marshal(&LLMCall{ID: "c"})
	if err != nil || strings.Contains(string(raw), `"guard"`) {
		t.Errorf("a call without inline checks carries a guard member: %s", raw)
	}
}

// The schema's enums and the Go constants name the same values.
func TestFindingEnumsAreTheSchemas(t *testing.T) {
	ct, _ := Lookup(TypeFinding)
	var schema struct {
		Defs struct {
			Finding struct {
				Properties struct {
					Side   struct{ Enum []string } `json:"side"`
					Action struct{ Enum []string } `json:"action"`
				} `json:"properties"`
			} `json:"finding"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(ct.Schema(), &schema); err != nil {
		t.Fatal(err)
	}
	p := schema.Defs.Finding.Properties
	if !slices.Equal(p.Side.Enum, FindingSides()) || !slices.Equal(p.Action.Enum, FindingActions()) {
		t.Errorf("schema sides %v actions %v; Go %v %v", p.Side.Enum, p.Action.Enum, FindingSides(), FindingActions())
	}
}
