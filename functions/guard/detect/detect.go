// Package detect finds personal data, secrets and prompt injections in text. It does no I/O:
// router runs it inline on every call and the guard function on every telemetry event, so a
// finding is the same wherever it was made.
//
// A Finding never holds the matched value. It holds the byte span, a masked preview and a
// keyed hash (for counting repeats of one value without storing it).
package detect

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// Category is what kind of risk a finding is; policies choose an action per category.
type Category string

const (
	CategoryPII       Category = "pii"
	CategorySecret    Category = "secret"
	CategoryInjection Category = "injection"
	CategoryJailbreak Category = "jailbreak"
)

// Categories lists every category, in the order policies and reports show them.
var Categories = []Category{CategoryPII, CategorySecret, CategoryInjection, CategoryJailbreak}

// Severity orders findings for alerting; it never decides an action on its own.
type Severity string

const (
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// Finding is one detected value or pattern in a text.
type Finding struct {
	// Detector names the rule that fired, as "<category>.<entity>": "pii.email",
	// "secret.aws_access_key", "injection.instruction_override".
	Detector string   `json:"detector"`
	Category Category `json:"category"`
	// Entity is the placeholder label masking uses: EMAIL, CREDIT_CARD, AWS_ACCESS_KEY.
	Entity   string   `json:"entity"`
	Severity Severity `json:"severity"`
	// Score is the confidence in [0, 1]; policies compare it with their thresholds.
	Score float64 `json:"score"`
	// Start and End are the byte offsets of the match in the scanned text, End exclusive.
	Start int `json:"start"`
	End   int `json:"end"`
	// Preview is the match with all but a few characters masked ("j***@e******.com").
	Preview string `json:"preview"`
	// Fingerprint is a keyed hash of the matched value (see Options.HashKey), empty without a
	// key.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Reasons say what raised the score: the pattern, the validation passed, context words.
	Reasons []string `json:"reasons,omitempty"`
}

// Result is what a scan found, and how much of the text it looked at.
type Result struct {
	Findings []Finding `json:"findings"`
	// Scanned is the number of bytes of the text that were scanned.
	Scanned int `json:"scanned"`
	// Truncated is true when the text was longer than Options.MaxBytes and the rest was not
	// scanned.
	Truncated bool `json:"truncated,omitempty"`
}

// Detector is one family of rules. Detect reports each finding in text through emit, with
// spans relative to text; it must take time linear in len(text).
type Detector interface {
	Name() string
	Detect(text string, emit func(Finding))
}

// Fingerprint is the keyed hash a finding carries for value, or "" without a key.
func Fingerprint(key []byte, value string) string {
	if len(key) == 0 {
		return ""
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil)[:16])
}
