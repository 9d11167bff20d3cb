package detect

import "strings"

// Email finds e-mail addresses (a dot-atom local part, a domain with a letter-only top-level
// label). It scans for '@' and grows the match on both sides, so its cost is linear.
type Email struct{}

func (Email) Name() string { return "pii.email" }

var emailContext = []string{"email", "e-mail", "mail", "contact", "correo", "courriel", "reach me"}

func isLocalChar(b byte) bool {
	return isAlnum(b) || strings.IndexByte(".!#$%&'*+/=?^_`{|}~-", b) >= 0
}

func isDomainChar(b byte) bool { return isAlnum(b) || b == '-' || b == '.' }

func (Email) Detect(text string, emit func(Finding)) {
	var lower string
	for i := 0; i < len(text); {
		at := strings.IndexByte(text[i:], '@')
		if at < 0 {
			return
		}
		at += i
		i = at + 1
		s := at
		for s > 0 && isLocalChar(text[s-1]) && at-s < 64 {
			s--
		}
		for s < at && (text[s] == '.' || !isAlnum(text[s]) && text[s] != '_') {
			s++ // a local part starts with a letter, digit or underscore
		}
		if s == at || text[at-1] == '.' {
			continue
		}
		if s > 0 && (text[s-1] == ':' || text[s-1] == '/') {
			continue // a URL's user information (https://token@host), not an address
		}
		work(at - s + 1)
		e := at + 1
		for e < len(text) && isDomainChar(text[e]) && e-at < 255 {
			e++
		}
		for e > at+1 && (text[e-1] == '.' || text[e-1] == '-') {
			e-- // a sentence's full stop is not part of the domain
		}
		work(e - at)
		domain := text[at+1 : e]
		dot := strings.LastIndexByte(domain, '.')
		if dot <= 0 || strings.Contains(domain, "..") || domain[0] == '-' || domain[0] == '.' {
			continue
		}
		tld := domain[dot+1:]
		if len(tld) < 2 || len(tld) > 24 || !allLetters(tld) {
			continue
		}
		if e < len(text) && (isAlnum(text[e]) || text[e] == '_') {
			continue
		}
		if lower == "" {
			lower = lowerASCII(text)
		}
		score, reasons := contextScore(lower, s, e, 0.85, 0.15, emailContext, nil)
		reasons = append([]string{"pattern: address@domain.tld"}, reasons...)
		if isExampleDomain(lower[at+1 : e]) {
			score -= 0.45
			reasons = append(reasons, "documentation domain")
		}
		emit(Finding{
			Detector: "pii.email", Category: CategoryPII, Entity: "EMAIL", Severity: SeverityMedium,
			Score: clamp01(score), Start: s, End: e, Preview: emailPreview(text[s:e]), Reasons: reasons,
		})
		i = e
	}
}

func allLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isLetter(s[i]) {
			return false
		}
	}
	return true
}

// isExampleDomain reports the domains reserved for documentation (RFC 2606, RFC 6761).
func isExampleDomain(d string) bool {
	for _, x := range []string{"example.com", "example.org", "example.net", "example", "test", "invalid", "localhost"} {
		if d == x || strings.HasSuffix(d, "."+x) {
			return true
		}
	}
	return false
}

// emailPreview keeps the first letter of the local part and of the domain and the top-level
// label: "j***@e******.com".
func emailPreview(v string) string {
	at := strings.LastIndexByte(v, '@')
	dot := strings.LastIndexByte(v, '.')
	var b strings.Builder
	b.WriteByte(v[0])
	b.WriteString(strings.Repeat("*", min(at-1, 8)))
	b.WriteByte('@')
	b.WriteByte(v[at+1])
	b.WriteString(strings.Repeat("*", min(dot-at-2, 8)))
	b.WriteString(v[dot:])
	return b.String()
}
