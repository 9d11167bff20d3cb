package detect

import (
	"strings"
)

// Numbers finds the personal data written as digit groups: payment card numbers, phone
// numbers, US social security numbers, IPv4 addresses and dates of birth. One pass cuts the
// text into runs of digit groups (digits joined by single separators: space, '-', '.', '/',
// and a phone's '+' and parentheses); each run is then classified and validated: Luhn, card
// issuer ranges and lengths, NANP and national numbering plans, the SSN's area, group and
// serial rules, octet ranges, calendar dates.
type Numbers struct{}

func (Numbers) Name() string { return "pii.numbers" }

// run is a candidate: a sequence of digit groups.
type run struct {
	start, end int    // span in the text, with a leading '+' or '('
	groups     []span // the digit groups
	seps       []byte // separator before each group after the first (' ' for ") ")
	plus       bool
	paren      bool // the first group is in parentheses
}

type span struct{ start, end int }

func (r *run) digits(text string) string {
	var b strings.Builder
	for _, g := range r.groups {
		b.WriteString(text[g.start:g.end])
	}
	return b.String()
}

func (r *run) sepsAll(c byte) bool {
	for _, s := range r.seps {
		if s != c {
			return false
		}
	}
	return true
}

func (r *run) groupLens() []int {
	out := make([]int, len(r.groups))
	for i, g := range r.groups {
		out[i] = g.end - g.start
	}
	return out
}

// maxRunGroups bounds a run: a longer list of numbers is cut, which keeps the cost linear.
const maxRunGroups = 8

func (Numbers) Detect(text string, emit func(Finding)) {
	var lower string
	for i := 0; i < len(text); {
		// Find the next digit.
		j := i
		for j < len(text) && !isDigit(text[j]) {
			j++
		}
		if j >= len(text) {
			return
		}
		r := run{start: j}
		if j > 0 && text[j-1] == '+' {
			r.start, r.plus = j-1, true
		} else if j > 0 && text[j-1] == '(' {
			r.start, r.paren = j-1, true
		}
		glued := !boundaryBefore(text, j) || (r.start > 0 && isAlnum(text[r.start-1])) ||
			(j > 0 && (text[j-1] == '.' || text[j-1] == '_' || text[j-1] == '-' || text[j-1] == '$' || text[j-1] == '#') && !r.plus && !r.paren)
		k := j
		for {
			gs := k
			for k < len(text) && isDigit(text[k]) {
				k++
			}
			r.groups = append(r.groups, span{gs, k})
			if len(r.groups) == maxRunGroups || k >= len(text) {
				break
			}
			// A separator followed by a digit continues the run.
			if r.paren && len(r.groups) == 1 && text[k] == ')' {
				if k+1 < len(text) && isDigit(text[k+1]) {
					r.seps = append(r.seps, ')')
					k++
					continue
				}
				if k+2 < len(text) && (text[k+1] == ' ' || text[k+1] == '-') && isDigit(text[k+2]) {
					r.seps = append(r.seps, ' ')
					k += 2
					continue
				}
				break
			}
			c := text[k]
			if (c == ' ' || c == '-' || c == '.' || c == '/') && k+1 < len(text) && isDigit(text[k+1]) {
				r.seps = append(r.seps, c)
				k++
				continue
			}
			break
		}
		r.end = k
		work(k - j + 1)
		if r.paren && (len(r.seps) == 0 || r.seps[0] != ' ' && r.seps[0] != ')') {
			r.start, r.paren = r.start+1, false
		}
		i = k
		for i < len(text) && isDigit(text[i]) {
			i++
		}
		if glued || !boundaryAfter(text, r.end) || (r.end < len(text) && (text[r.end] == '_' || text[r.end] == '@')) {
			continue
		}
		if r.end+1 < len(text) && (text[r.end] == '.' || text[r.end] == ',') && isDigit(text[r.end+1]) {
			continue // a decimal number
		}
		if lower == "" {
			lower = lowerASCII(text)
		}
		classify(text, lower, &r, emit)
	}
}

func classify(text, lower string, r *run, emit func(Finding)) {
	d := r.digits(text)
	if f, ok := ipv4(text, lower, r); ok {
		emit(f)
		return
	}
	if f, ok := card(text, lower, r, d); ok {
		emit(f)
		return
	}
	if f, ok := ssn(text, lower, r, d); ok {
		emit(f)
		return
	}
	if f, ok := dateOfBirth(text, lower, r); ok {
		emit(f)
		return
	}
	if f, ok := phone(text, lower, r, d); ok {
		emit(f)
	}
}

// ---- payment cards

var cardContext = []string{"card", "credit", "debit", "visa", "mastercard", "amex", "american express", "cc", "cvv", "expir", "tarjeta", "karte", "carte", "pan", "payment"}

// numberNegative are words near a number that say it is an identifier of something else.
var numberNegative = []string{"order", "invoice", "tracking", "ref", "ticket", "isbn", "sku", "serial", "build", "version", "commit", "id:", "id ", "pedido", "bestell", "commande", "account number", "acct"}

// cardBrand names the issuer of digits by its IIN range and checks the length it issues.
func cardBrand(d string) string {
	n := len(d)
	p := func(k int) int {
		v := 0
		for i := 0; i < k && i < n; i++ {
			v = v*10 + int(d[i]-'0')
		}
		return v
	}
	switch {
	case d[0] == '4' && (n == 13 || n == 16 || n == 19):
		return "visa"
	case (p(2) >= 51 && p(2) <= 55 || p(4) >= 2221 && p(4) <= 2720) && n == 16:
		return "mastercard"
	case (p(2) == 34 || p(2) == 37) && n == 15:
		return "amex"
	case (p(4) == 6011 || p(2) == 65 || p(3) >= 644 && p(3) <= 649 || p(6) >= 622126 && p(6) <= 622925) && n >= 16 && n <= 19:
		return "discover"
	case p(4) >= 3528 && p(4) <= 3589 && n >= 16 && n <= 19:
		return "jcb"
	case (p(3) >= 300 && p(3) <= 305 || p(2) == 36 || p(2) == 38 || p(2) == 39) && n >= 14 && n <= 19:
		return "diners"
	case p(2) == 62 && n >= 16 && n <= 19:
		return "unionpay"
	case (p(4) == 5018 || p(4) == 5020 || p(4) == 5038 || p(4) == 5893 || p(4) == 6304 || p(4) == 6759 || p(4) == 6761 || p(4) == 6762 || p(4) == 6763) && n >= 12 && n <= 19:
		return "maestro"
	}
	return ""
}

func luhn(d string) bool {
	sum, dbl := 0, false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if dbl {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		dbl = !dbl
	}
	return sum%10 == 0
}

func card(text, lower string, r *run, d string) (Finding, bool) {
	if len(d) < 12 || len(d) > 19 || r.plus || r.paren {
		return Finding{}, false
	}
	seps := r.seps
	if len(seps) > 0 && !(r.sepsAll(' ') || r.sepsAll('-')) {
		return Finding{}, false
	}
	brand := cardBrand(d)
	if brand == "" || !luhn(d) || allSame(d) {
		return Finding{}, false
	}
	score, reasons := contextScore(lower, r.start, r.end, 0.75, 0.25, cardContext, numberNegative)
	reasons = append([]string{"pattern: " + brand + " card number", "valid: luhn checksum", "valid: issuer range and length"}, reasons...)
	if len(seps) > 0 {
		gl := r.groupLens()
		if isCardGrouping(gl) {
			score = clamp01(score + 0.1)
			reasons = append(reasons, "card grouping")
		}
	}
	return Finding{
		Detector: "pii.credit_card", Category: CategoryPII, Entity: "CREDIT_CARD", Severity: SeverityHigh,
		Score: score, Start: r.start, End: r.end, Preview: cardPreview(text[r.start:r.end]), Reasons: reasons,
	}, true
}

func isCardGrouping(gl []int) bool {
	if len(gl) == 3 && gl[0] == 4 && gl[1] == 6 && (gl[2] == 5 || gl[2] == 4) {
		return true
	}
	for i, n := range gl {
		if n != 4 && !(i == len(gl)-1 && n >= 1 && n <= 4) {
			return false
		}
	}
	return len(gl) >= 3
}

// cardPreview keeps the last four digits, as receipts do: "**** **** **** 1111".
func cardPreview(v string) string {
	b := []byte(v)
	seen := 0
	for i := len(b) - 1; i >= 0; i-- {
		if isDigit(b[i]) {
			seen++
			if seen > 4 {
				b[i] = '*'
			}
		}
	}
	return string(b)
}

func allSame(d string) bool {
	for i := 1; i < len(d); i++ {
		if d[i] != d[0] {
			return false
		}
	}
	return true
}

// ---- US social security numbers

var ssnContext = []string{"ssn", "social security", "social-security", "soc sec", "taxpayer", "tin"}

func ssn(text, lower string, r *run, d string) (Finding, bool) {
	if len(d) != 9 || r.plus || r.paren {
		return Finding{}, false
	}
	gl := r.groupLens()
	dashed := len(gl) == 3 && gl[0] == 3 && gl[1] == 2 && gl[2] == 4 && (r.sepsAll('-') || r.sepsAll(' '))
	if !dashed && len(gl) != 1 {
		return Finding{}, false
	}
	area, group, serial := d[:3], d[3:5], d[5:]
	if area == "000" || area == "666" || area[0] == '9' || group == "00" || serial == "0000" {
		return Finding{}, false
	}
	if d == "123456789" || d == "078051120" || d == "219099999" || allSame(d) {
		return Finding{}, false // the numbers used in advertising and examples
	}
	base := 0.3
	if dashed {
		base = 0.6
	}
	score, reasons := contextScore(lower, r.start, r.end, base, 0.4, ssnContext, numberNegative)
	reasons = append([]string{"pattern: ssn", "valid: area, group and serial"}, reasons...)
	return Finding{
		Detector: "pii.us_ssn", Category: CategoryPII, Entity: "US_SSN", Severity: SeverityHigh,
		Score: score, Start: r.start, End: r.end, Preview: cardPreview(text[r.start:r.end]), Reasons: reasons,
	}, true
}

// ---- IPv4

var ipContext = []string{"ip", "address", "host", "server", "client"}

func ipv4(text, lower string, r *run) (Finding, bool) {
	if len(r.groups) != 4 || !r.sepsAll('.') || r.plus || r.paren {
		return Finding{}, false
	}
	for _, g := range r.groups {
		s := text[g.start:g.end]
		if len(s) > 3 || len(s) > 1 && s[0] == '0' {
			return Finding{}, false
		}
		v := 0
		for i := 0; i < len(s); i++ {
			v = v*10 + int(s[i]-'0')
		}
		if v > 255 {
			return Finding{}, false
		}
	}
	if r.end < len(text) && text[r.end] == '.' && r.end+1 < len(text) && isDigit(text[r.end+1]) {
		return Finding{}, false
	}
	v := text[r.start:r.end]
	score, ctx := contextScore(lower, r.start, r.end, 0.7, 0.2, ipContext, numberNegative)
	reasons := append([]string{"pattern: dotted quad", "valid: octets 0-255"}, ctx...)
	if isNonPersonalIPv4(v) {
		score = 0.3
		reasons = append(reasons, "loopback, private or documentation range")
	}
	return Finding{
		Detector: "pii.ip_address", Category: CategoryPII, Entity: "IP_ADDRESS", Severity: SeverityLow,
		Score: score, Start: r.start, End: r.end, Preview: ipPreview(v), Reasons: reasons,
	}, true
}

// isNonPersonalIPv4 reports addresses that identify no one: loopback, unspecified, private
// ranges, the documentation ranges of RFC 5737, and the well-known public DNS resolvers.
func isNonPersonalIPv4(v string) bool {
	for _, p := range []string{"127.", "0.", "10.", "192.168.", "192.0.2.", "198.51.100.", "203.0.113.", "255.255.", "169.254."} {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	switch v {
	case "8.8.8.8", "8.8.4.4", "1.1.1.1", "1.0.0.1", "9.9.9.9", "149.112.112.112", "208.67.222.222", "208.67.220.220":
		return true // public DNS resolvers: infrastructure, not a person
	}
	if strings.HasPrefix(v, "172.") {
		sec := v[4:]
		if i := strings.IndexByte(sec, '.'); i > 0 {
			n := 0
			for _, c := range sec[:i] {
				n = n*10 + int(c-'0')
			}
			return n >= 16 && n <= 31
		}
	}
	return false
}

// ipPreview keeps the first group: "203.*.*.*".
func ipPreview(v string) string {
	if i := strings.IndexAny(v, ".:"); i > 0 {
		b := []byte(v)
		for j := i; j < len(b); j++ {
			if b[j] != '.' && b[j] != ':' {
				b[j] = '*'
			}
		}
		return string(b)
	}
	return preview(v, 0, 0)
}

// ---- dates of birth

var dobContext = []string{"born", "birth", "dob", "d.o.b", "birthday", "nacimiento", "nacido", "nacida", "geboren", "geburt", "né le", "née le", "naissance", "fecha de nac"}

func dateOfBirth(text, lower string, r *run) (Finding, bool) {
	if len(r.groups) != 3 || r.plus || r.paren || !(r.sepsAll('/') || r.sepsAll('-') || r.sepsAll('.')) {
		return Finding{}, false
	}
	gl := r.groupLens()
	num := func(i int) int {
		v := 0
		for _, c := range text[r.groups[i].start:r.groups[i].end] {
			v = v*10 + int(c-'0')
		}
		return v
	}
	var y, a, b int
	switch {
	case gl[0] == 4 && gl[1] <= 2 && gl[2] <= 2:
		y, a, b = num(0), num(1), num(2)
	case gl[2] == 4 && gl[0] <= 2 && gl[1] <= 2:
		y, a, b = num(2), num(0), num(1)
	default:
		return Finding{}, false
	}
	if y < 1900 || y > 2030 || !(validDay(a, b) || validDay(b, a)) {
		return Finding{}, false
	}
	hits := negativeWords(lower, r.start, dobContext) // "born 1984-03-12": the word comes first
	before := lower[max(0, r.start-negativeWindow):r.start]
	for _, h := range hits {
		if strings.ContainsAny(before[strings.LastIndex(before, h)+len(h):], "0123456789") {
			hits = nil // another number stands between the word and this date
			break
		}
	}
	if len(hits) == 0 {
		return Finding{}, false // a date is personal data only when it is someone's birth date
	}
	return Finding{
		Detector: "pii.date_of_birth", Category: CategoryPII, Entity: "DATE_OF_BIRTH", Severity: SeverityMedium,
		Score: 0.85, Start: r.start, End: r.end, Preview: preview(text[r.start:r.end], 0, 0),
		Reasons: []string{"pattern: calendar date", "context: " + strings.Join(hits, ",")},
	}, true
}

func validDay(month, day int) bool { return month >= 1 && month <= 12 && day >= 1 && day <= 31 }
