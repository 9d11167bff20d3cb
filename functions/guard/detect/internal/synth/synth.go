// Package synth makes synthetic personal data and credentials in their real formats, with valid
// check digits, from a seeded source: the detectors' tests and the evaluation set are built
// from them, so no real value is ever committed.
package synth

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
)

// Gen draws values from a seeded source.
type Gen struct{ R *rand.Rand }

// New returns a generator seeded with seed.
func New(seed uint64) *Gen { return &Gen{R: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} }

const (
	Upper  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	Lower  = "abcdefghijklmnopqrstuvwxyz"
	Digits = "0123456789"
	Alnum  = Upper + Lower + Digits
	Hex    = "0123456789abcdef"
	B32    = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	URLB64 = Alnum + "_-"
	B64    = Alnum + "+/"
)

// S is n characters drawn from alphabet.
func (g *Gen) S(alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[g.R.IntN(len(alphabet))]
	}
	return string(b)
}

// Pick is one of xs.
func (g *Gen) Pick(xs ...string) string { return xs[g.R.IntN(len(xs))] }

func luhnDigit(d string) byte {
	sum := 0
	dbl := true
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
	return byte('0' + (10-sum%10)%10)
}

// Card is a card number of a random brand, valid by Luhn, grouped as printed when grouped.
func (g *Gen) Card(grouped bool) string {
	var d string
	switch g.R.IntN(4) {
	case 0:
		d = "4" + g.S(Digits, 14)
	case 1:
		d = g.Pick("51", "52", "53", "54", "55") + g.S(Digits, 13)
	case 2:
		d = g.Pick("34", "37") + g.S(Digits, 12)
	default:
		d = "6011" + g.S(Digits, 11)
	}
	d += string(luhnDigit(d))
	if !grouped {
		return d
	}
	sep := g.Pick(" ", "-")
	if len(d) == 15 {
		return d[:4] + sep + d[4:10] + sep + d[10:]
	}
	return d[:4] + sep + d[4:8] + sep + d[8:12] + sep + d[12:]
}

// BadCard is a card-like number whose Luhn check fails.
func (g *Gen) BadCard() string {
	c := g.Card(false)
	last := c[len(c)-1]
	return c[:len(c)-1] + string(rune('0'+(int(last-'0')+1+g.R.IntN(8))%10))
}

var ibanFormats = map[string]string{ // country: BBAN shape, n = digit, a = upper alnum
	"DE": "nnnnnnnnnnnnnnnnnn", "GB": "AAAAnnnnnnnnnnnnnn", "FR": "nnnnnnnnnnnnnnnnnnnnnnn",
	"ES": "nnnnnnnnnnnnnnnnnnnn", "NL": "AAAAnnnnnnnnnn", "IT": "Annnnnnnnnnnnnnnnnnnnnn", "CH": "nnnnnnnnnnnnnnnnn",
}

// IBAN is an IBAN of one of a few countries with correct check digits, printed in groups of
// four when grouped.
func (g *Gen) IBAN(grouped bool) string {
	cc := g.Pick("DE", "GB", "FR", "ES", "NL", "IT", "CH")
	var b strings.Builder
	for _, c := range ibanFormats[cc] {
		if c == 'n' {
			b.WriteString(g.S(Digits, 1))
		} else {
			b.WriteString(g.S(Upper, 1))
		}
	}
	bban := b.String()
	check := 98 - mod97(bban+cc+"00")
	v := fmt.Sprintf("%s%02d%s", cc, check, bban)
	if !grouped {
		return v
	}
	var out strings.Builder
	for i := 0; i < len(v); i += 4 {
		if i > 0 {
			out.WriteByte(' ')
		}
		out.WriteString(v[i:min(i+4, len(v))])
	}
	return out.String()
}

// BadIBAN is an IBAN whose check digits are wrong.
func (g *Gen) BadIBAN() string {
	v := g.IBAN(false)
	c := (int(v[3]-'0') + 1 + g.R.IntN(8)) % 10
	return v[:3] + string(rune('0'+c)) + v[4:]
}

func mod97(s string) int {
	var digits strings.Builder
	for _, c := range s {
		if c >= 'A' && c <= 'Z' {
			fmt.Fprintf(&digits, "%d", c-'A'+10)
		} else {
			digits.WriteRune(c)
		}
	}
	n, _ := new(big.Int).SetString(digits.String(), 10)
	return int(new(big.Int).Mod(n, big.NewInt(97)).Int64())
}

// SSN is a US social security number that follows the area, group and serial rules.
func (g *Gen) SSN() string {
	area := 1 + g.R.IntN(898)
	if area == 666 {
		area = 667
	}
	return fmt.Sprintf("%03d-%02d-%04d", area, 1+g.R.IntN(99), 1+g.R.IntN(9999))
}

// Phone is a phone number in one of the formats people write.
func (g *Gen) Phone() string {
	n3 := func() string { return string(rune('2'+g.R.IntN(8))) + g.S(Digits, 2) }
	switch g.R.IntN(8) {
	case 0:
		return "+1 " + n3() + " " + n3() + " " + g.S(Digits, 4)
	case 1:
		return "(" + n3() + ") " + n3() + "-" + g.S(Digits, 4)
	case 2:
		return n3() + "-" + n3() + "-" + g.S(Digits, 4)
	case 3:
		return "+44 20 " + g.S(Digits, 4) + " " + g.S(Digits, 4)
	case 4:
		return "+49 30 " + g.S(Digits, 8)
	case 5:
		return "+33 6 " + g.S(Digits, 2) + " " + g.S(Digits, 2) + " " + g.S(Digits, 2) + " " + g.S(Digits, 2)
	case 6:
		return "+34 6" + g.S(Digits, 2) + " " + g.S(Digits, 3) + " " + g.S(Digits, 3)
	default:
		return "07" + g.S(Digits, 3) + " " + g.S(Digits, 6)
	}
}

// Email is an address at a plausible (not reserved) domain.
func (g *Gen) Email() string {
	first := g.Pick("jane", "john", "maria", "li", "ahmed", "sofia", "lukas", "chloe", "diego", "anna")
	last := g.Pick("doe", "smith", "garcia", "muller", "martin", "rossi", "chen", "kowalski")
	dom := g.Pick("gmail.com", "outlook.com", "acme-corp.io", "uni-hamburg.de", "orange.fr", "telefonica.es", "proton.me")
	return g.Pick(first+"."+last, first+last[:1]+g.S(Digits, 2), first+"_"+last) + "@" + dom
}

// IPv4 is a public address outside the reserved ranges.
func (g *Gen) IPv4() string {
	return fmt.Sprintf("%d.%d.%d.%d", g.Pick2(11, 100, 150, 185, 212, 81, 91), g.R.IntN(256), g.R.IntN(256), 1+g.R.IntN(254))
}

// Pick2 is one of xs.
func (g *Gen) Pick2(xs ...int) int { return xs[g.R.IntN(len(xs))] }

// IPv6 is a global unicast address.
func (g *Gen) IPv6() string {
	return fmt.Sprintf("2a0%d:%s:%s:%s::%s", 1+g.R.IntN(8), g.S(Hex, 4), g.S(Hex, 4), g.S(Hex, 3), g.S(Hex, 4))
}

// Secret is a credential of kind, in its documented format.
func (g *Gen) Secret(kind string) string {
	switch kind {
	case "aws_access_key":
		return g.Pick("AKIA", "ASIA") + g.S(B32, 16)
	case "aws_secret_key":
		return g.S(B64, 40)
	case "gcp_api_key":
		return "AIza" + g.S(URLB64, 35)
	case "github_token":
		return g.Pick("ghp_", "gho_", "ghs_") + g.S(Alnum, 36)
	case "github_pat":
		return "github_pat_" + g.S(Alnum, 22) + "_" + g.S(Alnum, 59)
	case "gitlab_token":
		return "glpat-" + g.S(URLB64, 20)
	case "slack_token":
		return "xoxb-" + g.S(Digits, 12) + "-" + g.S(Digits, 13) + "-" + g.S(Alnum, 24)
	case "stripe_key":
		return "sk_live_" + g.S(Alnum, 24)
	case "openai_key":
		return "sk-proj-" + g.S(URLB64, 48) + "T3BlbkFJ" + g.S(URLB64, 48)
	case "anthropic_key":
		return "sk-ant-api03-" + g.S(URLB64, 93) + "AA"
	case "twilio_key":
		return "SK" + g.S(Hex, 32)
	case "sendgrid_key":
		return "SG." + g.S(URLB64, 22) + "." + g.S(URLB64, 43)
	case "npm_token":
		return "npm_" + g.S(Alnum, 36)
	case "pypi_token":
		return "pypi-AgEIcHlwaS5vcmc" + g.S(URLB64, 60)
	case "huggingface_token":
		return "hf_" + g.S(Upper+Lower, 34)
	case "azure_storage_key":
		return g.S(B64, 86) + "=="
	case "jwt":
		return JWT(g)
	case "private_key":
		var b strings.Builder
		b.WriteString("-----BEGIN RSA PRIVATE KEY-----\n")
		for i := 0; i < 6; i++ {
			b.WriteString(g.S(B64, 64) + "\n")
		}
		b.WriteString("-----END RSA PRIVATE KEY-----")
		return b.String()
	case "password":
		return g.S(Alnum, 4) + g.Pick("!", "#", "%", "&") + g.S(Alnum, 7)
	}
	panic("synth: no secret kind " + kind)
}

// SecretKinds are the kinds Secret makes.
var SecretKinds = []string{"aws_access_key", "aws_secret_key", "gcp_api_key", "github_token", "github_pat", "gitlab_token", "slack_token",
	"stripe_key", "openai_key", "anthropic_key", "twilio_key", "sendgrid_key", "npm_token", "pypi_token", "huggingface_token",
	"azure_storage_key", "jwt", "private_key", "password"}
