package detect

import (
	"strings"
	"unicode/utf8"
)

// isAlnum reports whether b is an ASCII letter or digit.
func isAlnum(b byte) bool { return isDigit(b) || isLetter(b) }

func isDigit(b byte) bool  { return b >= '0' && b <= '9' }
func isLetter(b byte) bool { return (b|0x20) >= 'a' && (b|0x20) <= 'z' }
func isUpper(b byte) bool  { return b >= 'A' && b <= 'Z' }

// lowerASCII lowers ASCII letters only, keeping every byte offset.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if isUpper(s[i]) {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if isUpper(b[j]) {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// boundaryBefore reports whether the match starting at i is not glued to a preceding letter or
// digit; boundaryAfter the same for a match ending at j.
func boundaryBefore(text string, i int) bool { return i == 0 || !isAlnum(text[i-1]) }
func boundaryAfter(text string, j int) bool  { return j >= len(text) || !isAlnum(text[j]) }

// preview masks value: it keeps a few characters (never more than a sixth of the value, at
// most four) and the separators, and replaces every other letter or digit with '*'. A preview
// identifies the kind and rough shape of a value, never the value.
func preview(value string, keepFront, keepBack int) string {
	n := utf8.RuneCountInString(value)
	limit := n / 6
	if limit > 4 {
		limit = 4
	}
	if keepFront+keepBack > limit {
		keepFront, keepBack = min(keepFront, limit), 0
		if keepFront+keepBack > limit {
			keepBack = 0
		}
	}
	var b strings.Builder
	i := 0
	for _, r := range value {
		switch {
		case i < keepFront || i >= n-keepBack:
			b.WriteRune(r)
		case r < utf8.RuneSelf && !isAlnum(byte(r)) && r != '+' && r != '/' && r != '=':
			b.WriteRune(r)
		default:
			b.WriteByte('*')
		}
		i++
		if b.Len() > 64 {
			b.WriteString("…")
			break
		}
	}
	return b.String()
}

// contextWindow is how far before and after a match context words are looked for, in bytes.
const contextWindow = 64

// contextWords reports which of words (lower case ASCII) occur within contextWindow bytes
// around text[start:end]. lower is text lowered with lowerASCII.
func contextWords(lower string, start, end int, words []string) (hits []string) {
	lo, hi := start-contextWindow, end+contextWindow
	if lo < 0 {
		lo = 0
	}
	if hi > len(lower) {
		hi = len(lower)
	}
	before, after := lower[lo:start], lower[end:hi]
	for _, w := range words {
		if strings.Contains(before, w) || strings.Contains(after, w) {
			hits = append(hits, w)
		}
	}
	return hits
}

// contextScore raises base by boost when a context word is near the match, lowers it by
// penalty when a negative word is, and returns the score and the reasons.
func contextScore(lower string, start, end int, base, boost float64, words, negative []string) (float64, []string) {
	score := base
	var reasons []string
	if hits := contextWords(lower, start, end, words); len(hits) > 0 {
		score += boost
		reasons = append(reasons, "context: "+strings.Join(hits, ","))
	}
	if hits := negativeWords(lower, start, negative); len(hits) > 0 {
		score -= 0.3
		reasons = append(reasons, "negative context: "+strings.Join(hits, ","))
	}
	return clamp01(score), reasons
}

// negativeWindow is how far before a match negative words count: "order no. 4111…" says
// what the number is; a word further away says little.
const negativeWindow = 24

func negativeWords(lower string, start int, words []string) (hits []string) {
	before := lower[max(0, start-negativeWindow):start]
	for _, w := range words {
		if strings.Contains(before, w) {
			hits = append(hits, w)
		}
	}
	return hits
}

func clamp01(f float64) float64 {
	if f < 0 {
		return 0
	}
	if f > 1 {
		return 1
	}
	return f
}
