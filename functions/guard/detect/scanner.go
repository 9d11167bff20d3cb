package detect

import (
	"sort"
)

// DefaultMaxBytes bounds one scan: past it the rest of a text is not scanned, and the Result
// says so. 1 MiB covers every prompt seen in practice while keeping one scan's time bounded.
const DefaultMaxBytes = 1 << 20

// Options configure a Scanner.
type Options struct {
	// MaxBytes is how much of a text is scanned; 0 means DefaultMaxBytes.
	MaxBytes int
	// HashKey keys the findings' fingerprints; without it findings carry none.
	HashKey []byte
}

// Scanner runs a set of detectors over texts. It is safe for concurrent use.
type Scanner struct {
	detectors []Detector
	maxBytes  int
	hashKey   []byte
}

// NewScanner returns a scanner running detectors in order.
func NewScanner(opts Options, detectors ...Detector) *Scanner {
	maxBytes := opts.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	return &Scanner{detectors: detectors, maxBytes: maxBytes, hashKey: opts.HashKey}
}

// Detectors are the scanner's detectors, in the order they run.
func (s *Scanner) Detectors() []Detector { return s.detectors }

// Scan runs every detector over text (up to MaxBytes of it) and returns the findings ordered
// by start offset.
func (s *Scanner) Scan(text string) Result {
	res := Result{Scanned: len(text)}
	if len(text) > s.maxBytes {
		text = text[:validCut(text, s.maxBytes)]
		res.Scanned, res.Truncated = len(text), true
	}
	for _, d := range s.detectors {
		d.Detect(text, func(f Finding) {
			if f.Start < 0 || f.End > len(text) || f.Start > f.End {
				return
			}
			if f.Fingerprint == "" && f.End > f.Start {
				f.Fingerprint = Fingerprint(s.hashKey, text[f.Start:f.End])
			}
			res.Findings = append(res.Findings, f)
		})
	}
	sort.SliceStable(res.Findings, func(i, j int) bool { return res.Findings[i].Start < res.Findings[j].Start })
	return res
}

// validCut is the largest n <= max at which text can be cut without splitting a UTF-8
// sequence.
func validCut(text string, max int) int {
	n := max
	for n > 0 && n > max-4 && text[n]&0xC0 == 0x80 {
		n--
	}
	return n
}
