package detect

import "strings"

var phoneContext = []string{"phone", "tel", "call", "mobile", "cell", "contact", "whatsapp", "fax", "sms", "text me", "móvil", "movil", "teléfono", "telefono", "llámame", "telefon", "handy", "rufnummer", "anrufen", "portable", "téléphone", "telephone", "appelle", "numéro", "numero"}

// phone classifies r as a phone number: E.164 (a '+', a country calling code and the
// national number, its length checked for the common countries), or a national format: the
// North American numbering plan, the UK, Germany, France and Spain.
func phone(text, lower string, r *run, d string) (Finding, bool) {
	var base float64
	var reasons []string
	gl := r.groupLens()
	if r.plus {
		cc, ok := callingCode(d)
		if !ok || !e164Length(cc, len(d)-len(cc)) {
			return Finding{}, false
		}
		if cc == "1" && !nanp(d[1:]) {
			return Finding{}, false
		}
		base, reasons = 0.75, []string{"pattern: E.164 number", "valid: calling code +" + cc + " and length"}
	} else {
		switch {
		case len(d) == 10 && nanp(d) && (r.paren && len(gl) == 3 && gl[0] == 3 && gl[1] == 3 ||
			len(gl) == 3 && gl[0] == 3 && gl[1] == 3 && gl[2] == 4 && (r.sepsAll('-') || r.sepsAll('.') || r.sepsAll(' '))):
			base, reasons = 0.6, []string{"pattern: North American number", "valid: area code and exchange"}
		case len(d) == 11 && d[0] == '1' && nanp(d[1:]) && len(gl) == 4 && gl[0] == 1 && (r.sepsAll('-') || r.sepsAll(' ')):
			base, reasons = 0.6, []string{"pattern: North American number", "valid: area code and exchange"}
		case len(d) == 11 && d[0] == '0' && ukNational(d) && len(gl) >= 2:
			base, reasons = 0.5, []string{"pattern: UK national number"}
		case len(d) == 10 && d[0] == '0' && d[1] != '0' && len(gl) == 5 && allEqual(gl, 2):
			base, reasons = 0.55, []string{"pattern: French national number"}
		case len(d) == 9 && strings.IndexByte("6789", d[0]) >= 0 && (len(gl) == 3 && allEqual(gl, 3) || len(gl) == 4 && gl[0] == 3 && gl[1] == 2 || len(gl) == 4 && gl[0] == 2 && gl[1] == 3):
			base, reasons = 0.5, []string{"pattern: Spanish national number"}
		case len(d) >= 9 && len(d) <= 12 && d[0] == '0' && d[1] != '0' && len(gl) == 2 && gl[0] >= 3 && gl[0] <= 5 && (r.sepsAll(' ') || r.sepsAll('/') || r.sepsAll('-')):
			base, reasons = 0.45, []string{"pattern: German national number"}
		case len(gl) == 1 && len(d) >= 9 && len(d) <= 11 && (d[0] == '0' || nanp(d)):
			base, reasons = 0.2, []string{"pattern: digits only"}
		default:
			return Finding{}, false
		}
	}
	score, ctx := contextScore(lower, r.start, r.end, base, 0.4, phoneContext, numberNegative)
	if nd := nanpDigits(d, r.plus); nd != "" && nd[3:6] == "555" && nd[6:8] == "01" {
		score = min(score, 0.3) // 555-0100 to 555-0199 are reserved for fiction and examples
		ctx = append(ctx, "fictional 555-01XX number")
	}
	return Finding{
		Detector: "pii.phone", Category: CategoryPII, Entity: "PHONE_NUMBER", Severity: SeverityMedium,
		Score: score, Start: r.start, End: r.end, Preview: phonePreview(text[r.start:r.end]), Reasons: append(reasons, ctx...),
	}, true
}

// nanpDigits is the ten-digit North American number in d, or "".
func nanpDigits(d string, plus bool) string {
	switch {
	case len(d) == 11 && d[0] == '1':
		return d[1:]
	case len(d) == 10 && !plus:
		return d
	}
	return ""
}

func allEqual(gl []int, n int) bool {
	for _, g := range gl {
		if g != n {
			return false
		}
	}
	return true
}

// nanp checks a ten-digit North American number: the area code and the exchange start with
// 2-9, and the area code is not an N11 service code.
func nanp(d string) bool {
	if len(d) != 10 || d[0] < '2' || d[3] < '2' {
		return false
	}
	return !(d[1] == '1' && d[2] == '1')
}

// ukNational checks an eleven-digit UK number starting 0: geographic 01/02, 03, mobile 07,
// 08 freephone and shared.
func ukNational(d string) bool {
	return strings.IndexByte("12378", d[1]) >= 0
}

// callingCode returns the ITU country calling code d starts with.
func callingCode(d string) (string, bool) {
	if len(d) < 4 {
		return "", false
	}
	if d[0] == '1' || d[0] == '7' {
		return d[:1], true
	}
	two := map[string]bool{"20": true, "27": true, "30": true, "31": true, "32": true, "33": true, "34": true, "36": true, "39": true,
		"40": true, "41": true, "43": true, "44": true, "45": true, "46": true, "47": true, "48": true, "49": true,
		"51": true, "52": true, "53": true, "54": true, "55": true, "56": true, "57": true, "58": true,
		"60": true, "61": true, "62": true, "63": true, "64": true, "65": true, "66": true,
		"81": true, "82": true, "84": true, "86": true, "90": true, "91": true, "92": true, "93": true, "94": true, "95": true, "98": true}
	if two[d[:2]] {
		return d[:2], true
	}
	switch d[:2] {
	case "21", "22", "23", "24", "25", "26", "29", "35", "37", "38", "42", "50", "59", "67", "68", "69", "80", "85", "87", "88", "96", "97", "99":
		return d[:3], true
	}
	return "", false
}

// e164Length checks the national number's length for the calling codes whose plans are fixed,
// and E.164's bounds for the rest.
func e164Length(cc string, n int) bool {
	switch cc {
	case "1":
		return n == 10
	case "44":
		return n == 9 || n == 10
	case "33", "34":
		return n == 9
	case "49":
		return n >= 6 && n <= 13
	case "39":
		return n >= 6 && n <= 11
	case "31":
		return n == 9
	}
	return n >= 6 && n+len(cc) <= 15
}

// phonePreview keeps the leading '+' and calling code or trunk digit and the last two digits.
func phonePreview(v string) string {
	b := []byte(v)
	digits := 0
	for i := range b {
		if isDigit(b[i]) {
			digits++
		}
	}
	seen := 0
	for i := range b {
		if isDigit(b[i]) {
			seen++
			if seen > 2 && seen <= digits-2 {
				b[i] = '*'
			}
		}
	}
	return string(b)
}
