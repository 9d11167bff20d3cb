package detect

import (
	"net/netip"
	"strings"
)

// IBAN finds international bank account numbers, in the electronic form (DE89370400440532013000)
// or the printed one in groups of four, validated by the country's length and the ISO 7064
// mod-97 check digits.
type IBAN struct{}

func (IBAN) Name() string { return "pii.iban" }

// ibanLengths is the IBAN length per country (the SWIFT IBAN registry).
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
	"BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
	"ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
	"HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
	"LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
	"MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25,
	"QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25,
	"SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}

var ibanContext = []string{"iban", "bank", "account", "transfer", "wire", "cuenta", "konto", "compte", "sepa", "virement", "überweisung", "transferencia"}

func (IBAN) Detect(text string, emit func(Finding)) {
	var lower string
	for i := 0; i+4 <= len(text); i++ {
		if !isUpper(text[i]) || !isUpper(text[i+1]) || !isDigit(text[i+2]) || !isDigit(text[i+3]) || !boundaryBefore(text, i) {
			continue
		}
		want, ok := ibanLengths[text[i:i+2]]
		if !ok {
			continue
		}
		// Collect want characters, allowing single spaces between groups of four.
		var b strings.Builder
		j := i
		for j < len(text) && b.Len() < want {
			c := text[j]
			if isDigit(c) || isUpper(c) {
				b.WriteByte(c)
				j++
				continue
			}
			if c == ' ' && b.Len()%4 == 0 && j+1 < len(text) && (isDigit(text[j+1]) || isUpper(text[j+1])) {
				j++
				continue
			}
			break
		}
		work(j - i + 1)
		if b.Len() != want || !boundaryAfter(text, j) {
			continue
		}
		v := b.String()
		if !ibanChecksum(v) {
			continue
		}
		if lower == "" {
			lower = lowerASCII(text)
		}
		score, reasons := contextScore(lower, i, j, 0.85, 0.15, ibanContext, nil)
		emit(Finding{
			Detector: "pii.iban", Category: CategoryPII, Entity: "IBAN", Severity: SeverityHigh,
			Score: score, Start: i, End: j, Preview: text[i:i+2] + preview(text[i+2:j], 0, 0),
			Reasons: append([]string{"pattern: IBAN " + text[i:i+2], "valid: country length and mod-97 check digits"}, reasons...),
		})
		i = j - 1
	}
}

// ibanChecksum is ISO 13616's check: the country code and check digits moved to the end,
// letters as 10..35, the number mod 97 is 1.
func ibanChecksum(v string) bool {
	r := 0
	for k := 0; k < len(v); k++ {
		c := v[(k+4)%len(v)]
		if isDigit(c) {
			r = (r*10 + int(c-'0')) % 97
		} else {
			r = (r*100 + int(c-'A') + 10) % 97
		}
	}
	return r == 1
}

// IPv6 finds IPv6 addresses, parsed by net/netip (so "12:30:45" and MAC addresses are not).
type IPv6 struct{}

func (IPv6) Name() string { return "pii.ipv6" }

func isHex(b byte) bool { return isDigit(b) || (b|0x20) >= 'a' && (b|0x20) <= 'f' }

func (IPv6) Detect(text string, emit func(Finding)) {
	for i := 0; i < len(text); {
		c := strings.IndexByte(text[i:], ':')
		if c < 0 {
			return
		}
		c += i
		s := c
		for s > 0 && (isHex(text[s-1]) || text[s-1] == ':') && c-s < 40 {
			s--
		}
		e := c
		colons := 0
		for e < len(text) && (isHex(text[e]) || text[e] == ':' || text[e] == '.') && e-s < 45 {
			if text[e] == ':' {
				colons++
			}
			e++
		}
		for e > c && (text[e-1] == '.' || text[e-1] == ':' && (e-2 < 0 || text[e-2] != ':')) {
			e--
		}
		work(e - s + 1)
		i = e + 1
		if colons < 2 || !boundaryBefore(text, s) || !boundaryAfter(text, e) {
			continue
		}
		a, err := netip.ParseAddr(text[s:e])
		if err != nil || !a.Is6() || a.Is4In6() {
			continue
		}
		score := 0.8
		reasons := []string{"pattern: IPv6 address", "valid: parses"}
		if a.IsLoopback() || a.IsPrivate() || a.IsUnspecified() || a.IsLinkLocalUnicast() || a.IsMulticast() ||
			strings.HasPrefix(strings.ToLower(text[s:e]), "2001:db8:") {
			score = 0.3
			reasons = append(reasons, "loopback, private, link-local or documentation range")
		}
		emit(Finding{
			Detector: "pii.ip_address", Category: CategoryPII, Entity: "IP_ADDRESS", Severity: SeverityLow,
			Score: score, Start: s, End: e, Preview: ipPreview(text[s:e]), Reasons: reasons,
		})
	}
}
