package detect

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
		Email{}, Numbers{}, IBAN{}, IPv6{}, Secrets{},
	}
}
