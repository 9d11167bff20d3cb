package policy

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustplane/trustplane/functions/guard/detect"
)

const file = `
default:
  actions: {pii: observe}
  thresholds: {injection: 0.8}
rules:
  - tenant: acme
    actions: {pii: mask, pii.ip_address: off}
  - tenant: acme
    project: web
    sides: request
    restore: true
  - model: gpt-4o
    on_error: closed
    detectors: [secret, pii.email]
  - tenant: acme
    project: web
    model: gpt-4o
    thresholds: {pii.email: 0.95}
`

func finding(detector string, cat detect.Category, score float64) detect.Finding {
	return detect.Finding{Detector: detector, Category: cat, Score: score}
}

func TestBuiltinMasksPIIAndBlocksTheRest(t *testing.T) {
	p := Builtin().Resolve("anyone", "any", "any-model")
	if !p.Request || !p.Response || p.OnError != FailOpen || p.Restore || !p.Active() {
		t.Fatalf("builtin %+v", p)
	}
	for _, c := range []struct {
		f    detect.Finding
		want Action
	}{
		{finding("pii.email", detect.CategoryPII, 0.9), Mask},
		{finding("secret.aws_access_key", detect.CategorySecret, 0.9), Block},
		{finding("injection.instruction_override", "injection", 0.9), Block},
		{finding("jailbreak.dan", detect.CategoryJailbreak, 0.9), Block},
		{finding("pii.email", detect.CategoryPII, detect.DefaultThreshold-0.01), Off},
	} {
		if got := p.Decide(c.f); got != c.want {
			t.Errorf("%+v: %s, want %s", c.f, got, c.want)
		}
	}
}

func TestMoreSpecificLevelsOverrideBroaderOnes(t *testing.T) {
	tab, err := Parse([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	email, ip := finding("pii.email", detect.CategoryPII, 0.9), finding("pii.ip_address", detect.CategoryPII, 0.9)
	key := finding("secret.github_token", detect.CategorySecret, 0.9)
	inj := finding("injection.instruction_override", detect.CategoryInjection, 0.75)
	cases := []struct {
		tenant, project, model string
		check                  func(*Policy) string
	}{
		{"other", "", "", func(p *Policy) string {
			if p.Decide(email) != Observe || p.Decide(key) != Block || p.Decide(inj) != Off || !p.Response {
				return "default: pii observed, secrets blocked, injection threshold 0.8, both sides"
			}
			return ""
		}},
		{"acme", "api", "", func(p *Policy) string {
			if p.Decide(email) != Mask || p.Decide(ip) != Off || !p.Response || p.Restore {
				return "tenant: pii masked, ipv4 off"
			}
			return ""
		}},
		{"acme", "web", "mistral", func(p *Policy) string {
			if p.Decide(email) != Mask || p.Response || !p.Request || !p.Restore {
				return "project: request side only, restore, tenant's actions"
			}
			return ""
		}},
		{"other", "web", "gpt-4o", func(p *Policy) string {
			if p.OnError != FailClosed || p.Decide(inj) != Off || p.Decide(ip) != Off || p.Decide(email) != Observe || p.Decide(key) != Block {
				return "model: closed, only secrets and emails"
			}
			return ""
		}},
		{"acme", "web", "gpt-4o", func(p *Policy) string {
			if p.Decide(email) != Off || p.Decide(finding("pii.email", detect.CategoryPII, 0.96)) != Mask || p.OnError != FailClosed || p.Response {
				return "all three: email threshold 0.95 over the model's detectors and the project's sides"
			}
			if strings.Join(p.From, ",") != "builtin,default,rules[2] (model=gpt-4o),rules[0] (tenant=acme),rules[1] (tenant=acme project=web),rules[3] (tenant=acme project=web model=gpt-4o)" {
				return "from: " + strings.Join(p.From, ",")
			}
			return ""
		}},
	}
	for _, c := range cases {
		if msg := c.check(tab.Resolve(c.tenant, c.project, c.model)); msg != "" {
			t.Errorf("%s/%s/%s: %s: %+v", c.tenant, c.project, c.model, msg, tab.Resolve(c.tenant, c.project, c.model))
		}
	}
	// A project of another tenant with the same name does not get acme's web rule.
	if p := tab.Resolve("other", "web", ""); !p.Response {
		t.Errorf("other/web got acme/web's sides: %+v", p)
	}
}

func TestParseNamesEveryProblem(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"defaults: {}", `unknown field "defaults"`},
		{"default: {actions: {pii: redact}}", "pii must be block, mask, observe or off"},
		{"default: {actions: {injection: mask}}", "injection cannot be mask"},
		{"default: {actions: {toxicity: block}}", `"toxicity" is not a category`},
		{"default: {thresholds: {pii: 1.5}}", "between 0 and 1"},
		{"default: {sides: input}", "sides must be request, response, both or none"},
		{"default: {on_error: maybe}", "on_error must be open or closed"},
		{"default: {detectors: [pii.]}", `"pii." is not a detector name`},
		{"default: {actions: {pii.emails: off}}", `"pii.emails" is not a detector name`},
		{"rules: [{actions: {pii: off}}]", "names no tenant, project or model"},
		{"rules: [{project: web}]", "needs its tenant"},
		{"rules: [{tenant: a}, {tenant: a}]", "the same tenant, project and model as rules[0]"},
		{"rules: [{tenant: a, colour: red}]", `unknown field "colour"`},
		{"default: [1]", "cannot unmarshal"},
		{"default: {actions: {pii: on}}", `pii must be block, mask, observe or off, got "true"`},
	} {
		_, err := Parse([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err %v, want %q", c.yaml, err, c.want)
		}
	}
	// Every problem of one file at once.
	_, err := Parse([]byte("default: {sides: x, on_error: y}"))
	if err == nil || !strings.Contains(err.Error(), "sides") || !strings.Contains(err.Error(), "on_error") {
		t.Errorf("err %v", err)
	}
}

func TestSidesNoneIsInactive(t *testing.T) {
	tab, err := Parse([]byte("rules: [{tenant: quiet, sides: none}, {tenant: silent, actions: {pii: off, secret: off, injection: off, jailbreak: off}}]"))
	if err != nil {
		t.Fatal(err)
	}
	if tab.Resolve("quiet", "", "").Active() || tab.Resolve("silent", "", "").Active() || !tab.Resolve("x", "", "").Active() {
		t.Error("Active wrong")
	}
}

func TestSourceReloadsAndKeepsTheLastGoodFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("default: {actions: {pii: observe}}")
	var loads []error
	src, err := Load(path, slog.New(slog.DiscardHandler), func(err error) { loads = append(loads, err) })
	if err != nil {
		t.Fatal(err)
	}
	email := finding("pii.email", detect.CategoryPII, 0.9)
	if src.Get().Resolve("a", "", "").Decide(email) != Observe {
		t.Fatal("first file not in force")
	}
	write("default: {actions: {pii: nope}}")
	if _, err := src.Load(); err == nil {
		t.Fatal("bad file loaded")
	}
	if src.Get().Resolve("a", "", "").Decide(email) != Observe {
		t.Fatal("bad file replaced the good one")
	}
	write("default: {actions: {pii: block}}")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, time.Millisecond) }()
	for src.Get().Resolve("a", "", "").Decide(email) != Block {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(loads) < 3 || loads[0] != nil || loads[1] == nil || loads[2] != nil {
		t.Errorf("loads %v", loads)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil, nil); err == nil {
		t.Error("a missing file loaded")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(file))
	f.Add([]byte(BuiltinYAML))
	f.Add([]byte("rules: [{tenant: a, project: b, model: c, sides: none}]"))
	f.Add([]byte("default: {thresholds: {pii: .NaN}}"))
	cats := append(detect.Categories, "other")
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := Parse(data)
		if err != nil {
			if tab != nil {
				t.Fatal("a table with an error")
			}
			return
		}
		for _, tn := range []string{"", "a", "acme"} {
			for _, m := range []string{"", "c", "gpt-4o"} {
				p := tab.Resolve(tn, "b", m)
				if p == nil {
					t.Fatalf("no policy for %s/b/%s", tn, m)
				}
				if p.OnError != FailOpen && p.OnError != FailClosed {
					t.Fatalf("on_error %q", p.OnError)
				}
				for _, c := range cats {
					a := p.Decide(finding(string(c)+".x", c, 0.99))
					if rank(a) >= len(Actions) {
						t.Fatalf("action %q", a)
					}
				}
			}
		}
	})
}
