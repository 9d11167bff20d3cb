// Package policy is guard's policy: which detectors run on a call or an event, their
// thresholds, what to do with each category of finding (block, mask, observe or off), which
// side is inspected, and whether a failed check lets the traffic through. It is read from a
// YAML file (a ConfigMap), per tenant, project and model alias, more specific levels overriding
// broader ones. Router applies it inline, the guard function asynchronously. No I/O but the
// file's, through Source.
package policy

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/trustplane/trustplane/functions/guard/detect"
)

// Action is what is done with a finding.
type Action string

const (
	// Block refuses the request (or ends the response) with an error naming the category.
	Block Action = "block"
	// Mask replaces the value with a stable placeholder (<EMAIL_1>) before it goes on.
	Mask Action = "mask"
	// Observe records the finding only.
	Observe Action = "observe"
	// Off ignores the finding: it is not recorded.
	Off Action = "off"
)

// UnmarshalJSON reads an action. YAML 1.1, which the policy file is read as, turns a bare
// off into false: that is read as Off too.
func (a *Action) UnmarshalJSON(b []byte) error {
	if string(b) == "false" {
		*a = Off
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("an action is block, mask, observe or off, got %s", b)
	}
	if s == "false" { // how the YAML reader hands a bare off to a string
		s = string(Off)
	}
	*a = Action(s)
	return nil
}

// Actions lists the actions, strongest first.
var Actions = []Action{Block, Mask, Observe, Off}

// Stronger reports whether a wins over b when several findings meet.
func (a Action) Stronger(b Action) bool { return rank(a) < rank(b) }

func rank(a Action) int {
	if i := slices.Index(Actions, a); i >= 0 {
		return i
	}
	return len(Actions)
}

// Sides a policy inspects.
const (
	SidesRequest  = "request"
	SidesResponse = "response"
	SidesBoth     = "both"
	SidesNone     = "none"
)

// On errors: what happens to traffic when a check fails (a detector panicked).
const (
	// FailOpen lets the traffic through and records the failure.
	FailOpen = "open"
	// FailClosed refuses it.
	FailClosed = "closed"
)

// File is the policy file.
type File struct {
	// Default applies to everyone; what it leaves unset comes from the built-in defaults
	// (Builtin).
	Default Settings `json:"default,omitempty"`
	// Rules apply to the tenants, projects and model aliases they name.
	Rules []Rule `json:"rules,omitempty"`
}

// Rule is settings for a tenant, a project of a tenant, a model alias, or a combination.
// Empty selectors match everything; a project needs its tenant.
type Rule struct {
	Tenant  string `json:"tenant,omitempty"`
	Project string `json:"project,omitempty"`
	Model   string `json:"model,omitempty"`
	Settings
}

// Settings are what a level sets. Unset fields inherit from the broader level; Thresholds and
// Actions merge key by key; Detectors, when set, replaces the broader list.
type Settings struct {
	// Sides is request, response, both or none.
	Sides string `json:"sides,omitempty"`
	// OnError is open or closed.
	OnError string `json:"on_error,omitempty"`
	// Restore puts masked values back into the answer (router only): the provider never sees
	// them, the client gets them back.
	Restore *bool `json:"restore,omitempty"`
	// Detectors enables detectors by category ("pii") or by finding detector ("pii.email");
	// empty: all.
	Detectors []string `json:"detectors,omitempty"`
	// Thresholds are the minimum score of a finding to act on, by category or detector; the
	// default is detect.DefaultThreshold.
	Thresholds map[string]float64 `json:"thresholds,omitempty"`
	// Actions by category or detector; a detector's entry wins over its category's.
	Actions map[string]Action `json:"actions,omitempty"`
}

// BuiltinYAML is the policy in force without a file, and the base of every file: personal data
// masked, secrets, injections and jailbreaks blocked, on both sides, failing open.
const BuiltinYAML = `
default:
  sides: both
  on_error: open
  restore: false
  actions:
    pii: mask
    secret: block
    injection: block
    jailbreak: block
`

// Policy is the effective policy for one tenant, project and model.
type Policy struct {
	Request    bool               `json:"request"`
	Response   bool               `json:"response"`
	OnError    string             `json:"on_error"`
	Restore    bool               `json:"restore"`
	Detectors  []string           `json:"detectors,omitempty"`
	Thresholds map[string]float64 `json:"thresholds,omitempty"`
	Actions    map[string]Action  `json:"actions"`
	// From names the levels merged into this policy, broadest first.
	From []string `json:"from"`
}

// Active reports whether the policy acts on anything at all; when it does not, callers skip
// scanning.
func (p *Policy) Active() bool {
	if !p.Request && !p.Response {
		return false
	}
	for _, a := range p.Actions {
		if a != Off {
			return true
		}
	}
	return false
}

// Inspects reports whether side (request or response; input and output count as request and
// response) is scanned.
func (p *Policy) Inspects(response bool) bool {
	if response {
		return p.Response
	}
	return p.Request
}

// Decide is the action for a finding: Off when its detector is not enabled, its score is
// below the threshold, or the policy names no action for it.
func (p *Policy) Decide(f detect.Finding) Action {
	cat := string(f.Category)
	if len(p.Detectors) > 0 && !slices.ContainsFunc(p.Detectors, func(d string) bool {
		return d == cat || d == f.Detector || strings.HasPrefix(f.Detector, d+".")
	}) {
		return Off
	}
	th, ok := p.Thresholds[f.Detector]
	if !ok {
		if th, ok = p.Thresholds[cat]; !ok {
			th = detect.DefaultThreshold
		}
	}
	if f.Score < th {
		return Off
	}
	if a, ok := p.Actions[f.Detector]; ok {
		return a
	}
	if a, ok := p.Actions[cat]; ok {
		return a
	}
	return Off
}

// Table is a parsed policy file: the effective policy of every level it names, computed when
// it is loaded, so that Resolve only looks one up.
type Table struct {
	tenants  map[string]bool
	projects map[string]map[string]bool // tenant -> projects with rules
	models   map[string]bool
	policies map[key]*Policy
}

type key struct{ tenant, project, model string }

// maxLevels bounds the policies a file expands to (tenants x projects x models).
const maxLevels = 200000

// Parse parses and validates a policy file, strictly: unknown fields, bad values and
// conflicting rules are errors, every problem named.
func Parse(data []byte) (*Table, error) {
	var builtin File
	if err := yaml.UnmarshalStrict([]byte(BuiltinYAML), &builtin); err != nil {
		panic("policy: built-in policy: " + err.Error())
	}
	var f File
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	checkSettings("default", &f.Default, add)
	seen := map[key]int{}
	t := &Table{tenants: map[string]bool{"": true}, projects: map[string]map[string]bool{"": {"": true}},
		models: map[string]bool{"": true}, policies: map[key]*Policy{}}
	for i, r := range f.Rules {
		where := fmt.Sprintf("rules[%d]", i)
		if r.Tenant == "" && r.Project == "" && r.Model == "" {
			add("%s: names no tenant, project or model; put settings for everyone under default", where)
		}
		if r.Project != "" && r.Tenant == "" {
			add("%s: project %q needs its tenant (projects belong to a tenant)", where, r.Project)
		}
		for name, v := range map[string]string{"tenant": r.Tenant, "project": r.Project, "model": r.Model} {
			if len(v) > 128 || strings.ContainsAny(v, " \t\r\n") {
				add("%s: %s %q must be at most 128 characters without spaces", where, name, v)
			}
		}
		k := key{r.Tenant, r.Project, r.Model}
		if j, dup := seen[k]; dup {
			add("%s: the same tenant, project and model as rules[%d]", where, j)
		}
		seen[k] = i
		rs := r.Settings
		checkSettings(where, &rs, add)
		t.tenants[r.Tenant] = true
		if t.projects[r.Tenant] == nil {
			t.projects[r.Tenant] = map[string]bool{"": true}
		}
		t.projects[r.Tenant][r.Project] = true
		t.models[r.Model] = true
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("policy: %s", strings.Join(problems, "; "))
	}
	levels := 0
	for tn := range t.tenants {
		levels += len(t.projects[tn]) * len(t.models)
	}
	if levels > maxLevels {
		return nil, fmt.Errorf("policy: the rules expand to %d levels (tenants x projects x models), more than %d", levels, maxLevels)
	}
	// Rules broadest first: a tenant outranks a model alone, a project its tenant.
	order := make([]int, len(f.Rules))
	for i := range order {
		order[i] = i
	}
	spec := func(r Rule) int {
		n := 0
		if r.Tenant != "" {
			n += 4
		}
		if r.Project != "" {
			n += 2
		}
		if r.Model != "" {
			n++
		}
		return n
	}
	sort.SliceStable(order, func(a, b int) bool { return spec(f.Rules[order[a]]) < spec(f.Rules[order[b]]) })
	for tn := range t.tenants {
		for pn := range t.projects[tn] {
			for mn := range t.models {
				p := &Policy{}
				merge(p, builtin.Default, "builtin")
				merge(p, f.Default, "default")
				for _, i := range order {
					r := f.Rules[i]
					if (r.Tenant == "" || r.Tenant == tn) && (r.Project == "" || r.Project == pn) && (r.Model == "" || r.Model == mn) {
						merge(p, r.Settings, fmt.Sprintf("rules[%d]%s", i, r.selector()))
					}
				}
				t.policies[key{tn, pn, mn}] = p
			}
		}
	}
	return t, nil
}

func (r Rule) selector() string {
	var parts []string
	for _, kv := range [][2]string{{"tenant", r.Tenant}, {"project", r.Project}, {"model", r.Model}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	return " (" + strings.Join(parts, " ") + ")"
}

// Builtin is the table of the built-in policy.
func Builtin() *Table {
	t, err := Parse(nil)
	if err != nil {
		panic(err)
	}
	return t
}

// Resolve is the effective policy for a call or event of tenant and project on model (an
// alias as clients name it; "" when there is none, as for most telemetry). The result is
// shared: do not modify it.
func (t *Table) Resolve(tenant, project, model string) *Policy {
	if !t.tenants[tenant] {
		tenant = ""
	}
	if !t.projects[tenant][project] {
		project = ""
	}
	if !t.models[model] {
		model = ""
	}
	return t.policies[key{tenant, project, model}]
}

func merge(p *Policy, s Settings, from string) {
	switch s.Sides {
	case SidesRequest:
		p.Request, p.Response = true, false
	case SidesResponse:
		p.Request, p.Response = false, true
	case SidesBoth:
		p.Request, p.Response = true, true
	case SidesNone:
		p.Request, p.Response = false, false
	}
	if s.OnError != "" {
		p.OnError = s.OnError
	}
	if s.Restore != nil {
		p.Restore = *s.Restore
	}
	if s.Detectors != nil {
		p.Detectors = slices.Clone(s.Detectors)
	}
	if len(s.Thresholds) > 0 {
		m := make(map[string]float64, len(p.Thresholds)+len(s.Thresholds))
		for k, v := range p.Thresholds {
			m[k] = v
		}
		for k, v := range s.Thresholds {
			m[k] = v
		}
		p.Thresholds = m
	}
	if len(s.Actions) > 0 || p.Actions == nil {
		m := make(map[string]Action, len(p.Actions)+len(s.Actions))
		for k, v := range p.Actions {
			m[k] = v
		}
		for k, v := range s.Actions {
			m[k] = v
		}
		p.Actions = m
	}
	p.From = append(p.From, from)
}

// checkSettings reports every bad value of s. Keys of thresholds and actions are a category
// or a detector of a category ("pii.email").
func checkSettings(where string, s *Settings, add func(string, ...any)) {
	if s.Sides != "" && !slices.Contains([]string{SidesRequest, SidesResponse, SidesBoth, SidesNone}, s.Sides) {
		add("%s: sides must be request, response, both or none, got %q", where, s.Sides)
	}
	if s.OnError != "" && s.OnError != FailOpen && s.OnError != FailClosed {
		add("%s: on_error must be open or closed, got %q", where, s.OnError)
	}
	for _, d := range s.Detectors {
		if err := checkName(d); err != nil {
			add("%s: detectors: %v", where, err)
		}
	}
	for _, k := range sortedKeys(s.Thresholds) {
		v := s.Thresholds[k]
		if err := checkName(k); err != nil {
			add("%s: thresholds: %v", where, err)
		}
		if !(v >= 0 && v <= 1) {
			add("%s: thresholds: %s must be between 0 and 1, got %v", where, k, v)
		}
	}
	for _, k := range sortedKeys(s.Actions) {
		a := s.Actions[k]
		if err := checkName(k); err != nil {
			add("%s: actions: %v", where, err)
		}
		if !slices.Contains(Actions, a) {
			add("%s: actions: %s must be block, mask, observe or off, got %q", where, k, a)
		}
		cat, _, _ := strings.Cut(k, ".")
		if a == Mask && cat != string(detect.CategoryPII) && cat != string(detect.CategorySecret) {
			add("%s: actions: %s cannot be mask: only personal data and secrets have values to mask", where, k)
		}
	}
}

func checkName(name string) error {
	cat, rest, dotted := strings.Cut(name, ".")
	if !slices.Contains(detect.Categories, detect.Category(cat)) {
		return fmt.Errorf("%q is not a category (%s) or one of their detectors", name, categoryList())
	}
	if dotted && (rest == "" || !slices.Contains(detectorNames, name)) {
		return fmt.Errorf("%q is not a detector name (%s)", name, strings.Join(detectorNames, ", "))
	}
	return nil
}

// detectorNames are the detector names findings of the default scanner carry.
var detectorNames = detect.DetectorNames()

func categoryList() string {
	var s []string
	for _, c := range detect.Categories {
		s = append(s, string(c))
	}
	return strings.Join(s, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
