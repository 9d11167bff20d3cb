package detect

import "sort"

// DefaultThreshold is the score from which a finding is likely real: every detector scores a
// validated, unambiguous match at or above it, and a match that needs context to be believed
// below it when the context is missing. Policies may choose their own thresholds.
const DefaultThreshold = 0.5

// Default returns a scanner with every detector of this package, in the order PII, secrets,
// injection, jailbreak.
func Default(opts Options) *Scanner {
	return NewScanner(opts, DefaultDetectors()...)
}

// DefaultDetectors are the detectors Default runs, for callers that pick among them.
func DefaultDetectors() []Detector {
	return []Detector{
		Email{}, Numbers{}, IBAN{}, IPv6{}, Secrets{}, Injection{},
	}
}

// piiDetectorNames are the detector names the PII detectors emit.
var piiDetectorNames = []string{"pii.email", "pii.phone", "pii.credit_card", "pii.iban", "pii.us_ssn", "pii.ip_address", "pii.date_of_birth"}

// DetectorNames lists every detector name a finding of the Default scanner can carry, sorted;
// policies can check the names they are given against it.
func DetectorNames() []string {
	seen := map[string]bool{}
	for _, n := range piiDetectorNames {
		seen[n] = true
	}
	for _, r := range secretRules {
		seen["secret."+r.id] = true
	}
	for _, s := range signals {
		seen[string(s.category)+"."+s.id] = true
	}
	seen["injection.hidden_text"] = true
	// The n-gram model's own findings (no signal matched) are <category>.classifier.
	for _, c := range []Category{CategoryInjection, CategoryJailbreak} {
		seen[string(c)+".classifier"] = true
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
