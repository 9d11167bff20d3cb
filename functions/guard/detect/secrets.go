package detect

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"regexp"
	"strings"
)

// Secrets finds credentials: cloud and SaaS keys and tokens by their documented formats,
// private key blocks, JSON web tokens (the header decoded and checked), credentials in URLs,
// and high-entropy values assigned to secret-sounding names (password=, api_key: ...).
//
// Each rule has keywords; one Aho-Corasick pass over the text finds which keywords occur, and
// only those rules' expressions run (RE2, linear time). Placeholders and published example or
// test keys are dropped.
type Secrets struct{}

func (Secrets) Name() string { return "secret" }

type secretRule struct {
	id       string // detector suffix: secret.<id>
	entity   string
	keywords []string
	re       *regexp.Regexp
	group    int     // the capture group holding the secret; 0 the whole match
	entropy  float64 // minimum Shannon entropy of the secret, bits per character; 0 none
	severity Severity
	score    float64
	check    func(v string) bool // extra validation
	reason   string
}

var secretRules = []secretRule{
	{id: "aws_access_key", entity: "AWS_ACCESS_KEY", keywords: []string{"akia", "asia", "abia", "acca"},
		re: regexp.MustCompile(`\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b`), severity: SeverityCritical, score: 0.95, entropy: 3.0, reason: "AWS access key id"},
	{id: "aws_secret_key", entity: "AWS_SECRET_KEY", keywords: []string{"aws"},
		re: regexp.MustCompile(`(?i)aws.{0,20}?(?:secret|private)?.{0,10}?(?:key|token)["']?\s*[:=]\s*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+]|$)`), group: 1, entropy: 4.0, severity: SeverityCritical, score: 0.9, reason: "AWS secret access key assignment"},
	{id: "gcp_api_key", entity: "GCP_API_KEY", keywords: []string{"aiza"},
		re: regexp.MustCompile(`\bAIza[0-9A-Za-z_\-]{35}(?:[^A-Za-z0-9_\-]|$)`), entropy: 3.5, severity: SeverityHigh, score: 0.95, reason: "Google API key"},
	{id: "gcp_oauth_secret", entity: "GCP_OAUTH_SECRET", keywords: []string{"gocspx-"},
		re: regexp.MustCompile(`\bGOCSPX-[0-9A-Za-z_\-]{28}(?:[^A-Za-z0-9_\-]|$)`), entropy: 3.5, severity: SeverityHigh, score: 0.95, reason: "Google OAuth client secret"},
	{id: "azure_storage_key", entity: "AZURE_STORAGE_KEY", keywords: []string{"accountkey"},
		re: regexp.MustCompile(`(?i)AccountKey=([A-Za-z0-9+/]{86}==)`), group: 1, entropy: 4.5, severity: SeverityCritical, score: 0.95, reason: "Azure storage account key"},
	{id: "azure_client_secret", entity: "AZURE_CLIENT_SECRET", keywords: []string{"q~"},
		re: regexp.MustCompile(`\b[a-zA-Z0-9_~.]{3}\dQ~[a-zA-Z0-9_~.\-]{31,34}`), entropy: 3.5, severity: SeverityCritical, score: 0.9, reason: "Azure AD client secret"},
	{id: "github_token", entity: "GITHUB_TOKEN", keywords: []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_"},
		re: regexp.MustCompile(`\bgh[pousr]_[A-Za-z0-9]{36}\b`), entropy: 3.5, severity: SeverityCritical, score: 0.97, reason: "GitHub token"},
	{id: "github_token", entity: "GITHUB_TOKEN", keywords: []string{"github_pat_"},
		re: regexp.MustCompile(`\bgithub_pat_[A-Za-z0-9_]{82}\b`), entropy: 3.5, severity: SeverityCritical, score: 0.97, reason: "GitHub fine-grained token"},
	{id: "gitlab_token", entity: "GITLAB_TOKEN", keywords: []string{"glpat-", "gldt-", "glptt-", "glrt-"},
		re: regexp.MustCompile(`\b(?:glpat|gldt|glptt|glrt)-[A-Za-z0-9_\-]{20,}(?:[^A-Za-z0-9_\-]|$)`), entropy: 3.3, severity: SeverityCritical, score: 0.95, reason: "GitLab token"},
	{id: "slack_token", entity: "SLACK_TOKEN", keywords: []string{"xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe-"},
		re: regexp.MustCompile(`\bxox[bpares](?:\.[a-z0-9]+)?-[0-9A-Za-z\-]{20,}\b`), entropy: 3.0, severity: SeverityCritical, score: 0.95, reason: "Slack token"},
	{id: "slack_webhook", entity: "SLACK_WEBHOOK", keywords: []string{"hooks.slack.com"},
		re: regexp.MustCompile(`https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]{40,}|https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]{20,}`), severity: SeverityHigh, score: 0.95, reason: "Slack webhook URL"},
	{id: "stripe_key", entity: "STRIPE_KEY", keywords: []string{"sk_live_", "rk_live_"},
		re: regexp.MustCompile(`\b[sr]k_live_[0-9A-Za-z]{20,247}\b`), entropy: 3.3, severity: SeverityCritical, score: 0.97, reason: "Stripe live secret key"},
	{id: "openai_key", entity: "OPENAI_API_KEY", keywords: []string{"t3blbkfj", "sk-proj-", "sk-svcacct-", "sk-admin-"},
		re: regexp.MustCompile(`\bsk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{40,200}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})(?:[^A-Za-z0-9_\-]|$)`), entropy: 3.5, severity: SeverityCritical, score: 0.97, reason: "OpenAI API key"},
	{id: "anthropic_key", entity: "ANTHROPIC_API_KEY", keywords: []string{"sk-ant-"},
		re: regexp.MustCompile(`\bsk-ant-(?:api|admin|sid)\d{2}-[A-Za-z0-9_\-]{80,120}(?:[^A-Za-z0-9_\-]|$)`), entropy: 3.5, severity: SeverityCritical, score: 0.97, reason: "Anthropic API key"},
	{id: "twilio_key", entity: "TWILIO_KEY", keywords: []string{"sk"},
		re: regexp.MustCompile(`\bSK[0-9a-f]{32}\b`), entropy: 3.0, severity: SeverityHigh, score: 0.85, reason: "Twilio API key"},
	{id: "sendgrid_key", entity: "SENDGRID_KEY", keywords: []string{"sg."},
		re: regexp.MustCompile(`\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}(?:[^A-Za-z0-9_\-]|$)`), entropy: 3.5, severity: SeverityCritical, score: 0.97, reason: "SendGrid API key"},
	{id: "npm_token", entity: "NPM_TOKEN", keywords: []string{"npm_"},
		re: regexp.MustCompile(`\bnpm_[A-Za-z0-9]{36}\b`), entropy: 3.5, severity: SeverityCritical, score: 0.95, reason: "npm access token"},
	{id: "pypi_token", entity: "PYPI_TOKEN", keywords: []string{"pypi-ageichlwas5vcmc"},
		re: regexp.MustCompile(`\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}(?:[^A-Za-z0-9_\-]|$)`), entropy: 3.5, severity: SeverityCritical, score: 0.97, reason: "PyPI upload token"},
	{id: "huggingface_token", entity: "HUGGINGFACE_TOKEN", keywords: []string{"hf_"},
		re: regexp.MustCompile(`\bhf_[A-Za-z]{34}\b`), entropy: 3.5, severity: SeverityHigh, score: 0.9, reason: "Hugging Face token"},
	{id: "shopify_token", entity: "SHOPIFY_TOKEN", keywords: []string{"shpat_", "shpss_", "shpca_", "shppa_"},
		re: regexp.MustCompile(`\bshp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}\b`), entropy: 3.0, severity: SeverityHigh, score: 0.95, reason: "Shopify token"},
	{id: "digitalocean_token", entity: "DIGITALOCEAN_TOKEN", keywords: []string{"dop_v1_", "doo_v1_", "dor_v1_"},
		re: regexp.MustCompile(`\bdo[opr]_v1_[a-f0-9]{64}\b`), entropy: 3.0, severity: SeverityHigh, score: 0.95, reason: "DigitalOcean token"},
	{id: "databricks_token", entity: "DATABRICKS_TOKEN", keywords: []string{"dapi"},
		re: regexp.MustCompile(`\bdapi[a-f0-9]{32}(?:-\d)?\b`), entropy: 3.0, severity: SeverityHigh, score: 0.9, reason: "Databricks token"},
	{id: "mailchimp_key", entity: "MAILCHIMP_KEY", keywords: []string{"-us"},
		re: regexp.MustCompile(`\b[0-9a-f]{32}-us\d{1,2}\b`), entropy: 3.0, severity: SeverityHigh, score: 0.9, reason: "Mailchimp API key"},
	{id: "telegram_bot_token", entity: "TELEGRAM_BOT_TOKEN", keywords: []string{":aa"},
		re: regexp.MustCompile(`\b\d{8,10}:AA[0-9A-Za-z_\-]{33}(?:[^A-Za-z0-9_\-]|$)`), entropy: 3.5, severity: SeverityHigh, score: 0.9, reason: "Telegram bot token"},
	{id: "square_token", entity: "SQUARE_TOKEN", keywords: []string{"sq0atp-", "sq0csp-", "eaaa"},
		re: regexp.MustCompile(`\b(?:sq0atp-[0-9A-Za-z\-_]{22}|sq0csp-[0-9A-Za-z\-_]{43}|EAAA[A-Za-z0-9\-_]{60})(?:[^A-Za-z0-9_\-]|$)`), entropy: 3.5, severity: SeverityHigh, score: 0.9, reason: "Square token"},
	{id: "linear_key", entity: "LINEAR_KEY", keywords: []string{"lin_api_"},
		re: regexp.MustCompile(`\blin_api_[a-zA-Z0-9]{40}\b`), entropy: 3.5, severity: SeverityHigh, score: 0.95, reason: "Linear API key"},
	{id: "doppler_token", entity: "DOPPLER_TOKEN", keywords: []string{"dp.pt."},
		re: regexp.MustCompile(`\bdp\.pt\.[a-zA-Z0-9]{43}\b`), entropy: 3.5, severity: SeverityHigh, score: 0.95, reason: "Doppler token"},
	{id: "age_secret_key", entity: "AGE_SECRET_KEY", keywords: []string{"age-secret-key-1"},
		re: regexp.MustCompile(`AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}`), severity: SeverityCritical, score: 0.97, reason: "age secret key"},
	{id: "private_key", entity: "PRIVATE_KEY", keywords: []string{"private key-----", "private key block-----"},
		re: regexp.MustCompile(`-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----[A-Za-z0-9+/=\s:,\\-]*?-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----|-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----[A-Za-z0-9+/=\s\\]{64,}`), severity: SeverityCritical, score: 0.97, check: privateKeyBody, reason: "private key block"},
	{id: "jwt", entity: "JWT", keywords: []string{"eyj"},
		re: regexp.MustCompile(`\beyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]{16,}\b`), severity: SeverityHigh, score: 0.9, check: jwtHeader, reason: "JSON web token, header decoded"},
	{id: "bearer_token", entity: "BEARER_TOKEN", keywords: []string{"bearer "},
		re: regexp.MustCompile(`(?i)\bauthorization["']?\s*[:=]\s*["']?bearer\s+([A-Za-z0-9._~+/\-]{20,}=*)`), group: 1, entropy: 3.5, severity: SeverityHigh, score: 0.9, reason: "bearer token in an Authorization header"},
	{id: "url_credentials", entity: "URL_CREDENTIALS", keywords: []string{"://"},
		re: regexp.MustCompile(`\b[a-z][a-z0-9+.\-]{1,20}://[^\s:@/'"<>]{1,64}:([^\s:@/'"<>]{3,128})@[a-zA-Z0-9.\-_]+`), group: 1, entropy: 0, severity: SeverityHigh, score: 0.85, reason: "password in URL"},
	// The generic rule's expression documents the shape it finds; genericAssignments finds it
	// by hand, which is many times faster than the expression.
	{id: "generic", entity: "SECRET", keywords: []string{"pass", "pwd", "secret", "token", "api_key", "api-key", "apikey", "access_key", "access-key", "client_secret", "auth", "credential", "contraseña", "passwort", "mot de passe", "clave"},
		re: regexp.MustCompile(`(?i)(?:^|[^a-z0-9])((?:[a-z0-9_.\-]{0,20}(?:password|passwd|pwd|secret|token|api[_\-]?key|access[_\-]?key|client[_\-]?secret|auth[_\-]?key|credentials?|contraseña|passwort|clave)[a-z0-9_.\-]{0,20}))["']?\s{0,3}(?:[:=]|:=|=>|\bis\b|\bes\b|\bist\b|\best\b)\s{0,3}["'` + "`" + `]?([^\s"'` + "`" + `,;<>(){}\[\]]{6,200})`), group: 2, entropy: 3.0, severity: SeverityHigh, score: 0.8, reason: "high-entropy value assigned to a secret name"},
}

var secretKeywords = func() *keywords {
	var words []string
	for _, r := range secretRules {
		words = append(words, r.keywords...)
	}
	return newKeywords(words)
}()

// ruleOfKeyword maps a keyword index to its rule.
var ruleOfKeyword = func() []int {
	var out []int
	for i, r := range secretRules {
		for range r.keywords {
			out = append(out, i)
		}
	}
	return out
}()

// Each rule's expression runs only on windows around its keywords' occurrences, merged where
// they overlap: from windowBefore bytes before a keyword to windowAfter bytes past it (more for
// the rules whose matches are long or whose keyword sits late in the match).
const (
	windowBefore = 64
	windowAfter  = 320
)

func (r *secretRule) window() (before, after int) {
	switch r.id {
	case "private_key":
		return 128, 20000
	case "jwt":
		return 8, 8192
	case "openai_key":
		return 256, windowAfter
	}
	return windowBefore, windowAfter
}

func (Secrets) Detect(text string, emit func(Finding)) {
	work(len(text))
	windows := make([][]span, len(secretRules))
	found := false
	secretKeywords.positions(text, func(w, end int) {
		i := ruleOfKeyword[w]
		before, after := secretRules[i].window()
		s := max(0, end-len(secretKeywords.words[w])-before)
		e := min(len(text), end+after)
		ws := windows[i]
		if n := len(ws); n > 0 && s <= ws[n-1].end {
			ws[n-1].start, ws[n-1].end = min(ws[n-1].start, s), max(ws[n-1].end, e)
		} else {
			windows[i] = append(ws, span{s, e})
		}
		found = true
	})
	if !found {
		return
	}
	var claimed []span // spans of specific rules, so the generic rule does not repeat them
	for i := range secretRules {
		r := &secretRules[i]
		var matches [][]int
		if r.id == "generic" {
			if len(windows[i]) > 0 {
				matches = genericAssignments(text)
			}
			windows[i] = nil
		}
		for _, win := range windows[i] {
			for _, m := range r.re.FindAllStringSubmatchIndex(text[win.start:win.end], -1) {
				for k := range m {
					if m[k] >= 0 {
						m[k] += win.start
					}
				}
				matches = append(matches, m)
			}
			work(win.end - win.start)
		}
		for _, m := range matches {
			s, e := m[2*r.group], m[2*r.group+1]
			if s < 0 {
				continue
			}
			v := text[s:e]
			if r.id == "openai_key" || r.id == "generic" {
				v = strings.TrimRight(v, ".")
				e = s + len(v)
			}
			if r.group == 0 && r.id != "private_key" && r.id != "slack_webhook" {
				for e > s && !(isAlnum(text[e-1]) || text[e-1] == '_' || text[e-1] == '-') {
					e--
				}
				v = text[s:e]
			}
			if overlaps(claimed, s, e) {
				continue
			}
			reasons := []string{"pattern: " + r.reason}
			if r.check != nil {
				if !r.check(v) {
					continue
				}
			}
			if p := placeholder(v); p != "" {
				continue
			}
			if r.id == "generic" {
				name := strings.ToLower(text[m[2]:m[3]])
				if strings.Contains(name, "example") || isNotASecret(name, v) || classes(v) < 2 || len(v) < 8 {
					continue
				}
			}
			if r.id == "url_credentials" && (commonWord(v) || len(v) < 6 && classes(v) < 2) {
				continue
			}
			score := r.score
			if r.entropy > 0 {
				h := entropy(v)
				need := r.entropy
				if r.id == "generic" && isPasswordName(strings.ToLower(text[m[2]:m[3]])) {
					need = 2.5 // passwords chosen by people are short and low in entropy
				}
				if h < need {
					continue
				}
				reasons = append(reasons, "entropy "+formatBits(h)+" bits/char")
			}
			if r.check != nil {
				reasons = append(reasons, "valid: structure checked")
			}
			claimed = append(claimed, span{s, e})
			emit(Finding{
				Detector: "secret." + r.id, Category: CategorySecret, Entity: r.entity, Severity: r.severity,
				Score: score, Start: s, End: e, Preview: secretPreview(r.id, v), Reasons: reasons,
			})
		}
	}
}

// secretNames are the words a name must hold for its value to be taken as a secret.
var secretNames = []string{"password", "passwd", "pwd", "secret", "token", "apikey", "api_key", "api-key", "accesskey", "access_key",
	"access-key", "authkey", "auth_key", "auth-key", "credential", "contraseña", "passwort", "clave", "mot de passe"}

// secretNameKeywords finds where such names start.
var secretNameKeywords = newKeywords(secretNames)

func isNameChar(c byte) bool { return isAlnum(c) || c == '_' || c == '.' || c == '-' || c >= 0x80 }

// genericAssignments finds values assigned to secret-sounding names (db_password: "...",
// API_KEY=..., "token" => '...', la contraseña es ...) by hand, in one pass: it returns
// matches shaped as the rule's expression would give them (whole, name, value).
func genericAssignments(text string) [][]int {
	var out [][]int
	last := -1
	secretNameKeywords.positions(text, func(w, ke int) {
		ks := ke - len(secretNames[w])
		ns := ks
		for ns > 0 && isNameChar(text[ns-1]) && ks-ns < 20 {
			ns--
		}
		if ns > 0 && isAlnum(text[ns-1]) || ns <= last {
			return
		}
		ne := ke
		for ne < len(text) && isNameChar(text[ne]) && ne-ke < 20 {
			ne++
		}
		p := ne
		if p < len(text) && (text[p] == '"' || text[p] == '\'') {
			p++
		}
		p = skipSpaces(text, p, 3)
		switch {
		case strings.HasPrefix(text[p:], ":="), strings.HasPrefix(text[p:], "=>"):
			p += 2
		case p < len(text) && (text[p] == ':' || text[p] == '='):
			p++
		default:
			op := false
			for _, word := range []string{"is ", "es ", "ist ", "est "} {
				if p > ne && strings.HasPrefix(strings.ToLower(text[p:min(len(text), p+4)]), word) {
					p += len(word) - 1
					op = true
					break
				}
			}
			if !op {
				return
			}
		}
		p = skipSpaces(text, p, 3)
		if p < len(text) && (text[p] == '"' || text[p] == '\'' || text[p] == '`') {
			p++
		}
		vs := p
		for p < len(text) && p-vs < 200 && !isSpaceByte(text[p]) && strings.IndexByte("\"'`,;<>(){}[]", text[p]) < 0 {
			p++
		}
		work(p - ns)
		if p-vs < 6 {
			return
		}
		last = ne
		out = append(out, []int{ns, p, ns, ne, vs, p})
	})
	return out
}

func skipSpaces(text string, p, n int) int {
	for k := 0; k < n && p < len(text) && isSpaceByte(text[p]); k++ {
		p++
	}
	return p
}

func isSpaceByte(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func overlaps(spans []span, s, e int) bool {
	for _, x := range spans {
		if s < x.end && x.start < e {
			return true
		}
	}
	return false
}

func isPasswordName(name string) bool {
	for _, w := range []string{"password", "passwd", "pwd", "contraseña", "passwort", "clave"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// isNotASecret drops assignments whose name only sounds secret (token_count, password_policy)
// and values that are code, not literals.
func isNotASecret(name, v string) bool {
	for _, w := range []string{"count", "limit", "length", "len", "size", "type", "policy", "url", "uri", "path", "file", "name", "field", "expir", "ttl", "timeout", "max", "min", "_id", "hash", "header", "usage", "budget", "bucket", "strategy", "prompt", "endpoint", "env"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	if strings.HasPrefix(v, "process.env") || strings.HasPrefix(v, "os.") || strings.HasPrefix(v, "env.") || strings.HasPrefix(v, "$") ||
		strings.HasPrefix(v, "self.") || strings.HasPrefix(v, "this.") || strings.HasPrefix(v, "config.") || strings.HasPrefix(v, "settings.") ||
		strings.HasPrefix(v, "getenv") || strings.HasPrefix(v, "req.") || strings.HasPrefix(v, "request.") || strings.HasPrefix(v, "args.") || strings.Contains(v, "(") {
		return true
	}
	// An identifier (a variable or a call) rather than a literal.
	lowerOnly := true
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c == '_' || c == '.') {
			lowerOnly = false
		}
	}
	if lowerOnly && strings.ContainsAny(v, "_.") {
		return true
	}
	return commonWord(v)
}

// commonWord reports values that are words, not secrets.
func commonWord(v string) bool {
	switch strings.ToLower(v) {
	case "true", "false", "null", "none", "nil", "undefined", "required", "optional", "string", "bearer", "basic", "hidden",
		"secret", "password", "passwd", "pass", "token", "user", "username", "admin", "root", "guest", "pwd":
		return true
	}
	return false
}

// classes counts the character classes in v: lower case, upper case, digits, others.
func classes(v string) int {
	var l, u, d, o int
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c >= 'a' && c <= 'z':
			l = 1
		case isUpper(c):
			u = 1
		case isDigit(c):
			d = 1
		default:
			o = 1
		}
	}
	return l + u + d + o
}

// placeholder says why v is a placeholder or a published example rather than a secret, or "".
func placeholder(v string) string {
	l := strings.ToLower(v)
	for _, w := range []string{"example", "xxxx", "****", "....", "<", ">", "${", "{{", "%s", "your", "placeholder", "dummy", "sample", "changeme", "change_me", "redacted", "fake", "sk_test_", "rk_test_", "pk_test_", "test_key", "testkey", "insert", "replace", "mytoken", "mysecret", "mypassword", "0000000000", "1234567890", "abcdef123456", "abcdefghij", "notreal", "not_real", "lorem", "foobar", "here"} {
		if strings.Contains(l, w) {
			return "placeholder word " + w
		}
	}
	if entropy(v) < 1.5 {
		return "repeated characters"
	}
	return ""
}

// entropy is the Shannon entropy of s in bits per character.
func entropy(s string) float64 {
	if s == "" {
		return 0
	}
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	h, n := 0.0, float64(len(s))
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

func formatBits(h float64) string {
	v := int(h*10 + 0.5)
	return string(rune('0'+v/10)) + "." + string(rune('0'+v%10))
}

// secretPreview keeps a token's public prefix ("ghp_", "AKIA", "sk-ant-") and masks the rest.
func secretPreview(id, v string) string {
	keep := 0
	switch id {
	case "aws_access_key", "gcp_api_key", "dapi", "databricks_token":
		keep = 4
	case "github_token", "npm_token":
		keep = strings.IndexByte(v, '_') + 1
	case "gitlab_token", "stripe_key", "slack_token", "openai_key", "anthropic_key", "gcp_oauth_secret", "shopify_token", "digitalocean_token", "linear_key":
		keep = strings.LastIndexAny(v[:min(len(v), 12)], "-_") + 1
	case "private_key":
		if i := strings.Index(v, "-----\n"); i > 0 && i < 64 {
			return v[:i+5] + "…"
		}
		return "-----BEGIN PRIVATE KEY-----…"
	case "jwt":
		keep = 3
	case "url_credentials", "generic":
		return strings.Repeat("*", min(len(v), 12))
	}
	if keep > len(v)/2 {
		keep = len(v) / 2
	}
	return v[:keep] + strings.Repeat("*", min(len(v)-keep, 24))
}

// privateKeyBody checks that a private key block has a body of base64 (not "..." or a
// placeholder).
func privateKeyBody(v string) bool {
	i := strings.Index(v, "-----")
	j := strings.Index(v[i+5:], "-----")
	if j < 0 {
		return false
	}
	body := v[i+5+j+5:]
	if k := strings.Index(body, "-----END"); k >= 0 {
		body = body[:k]
	}
	n := 0
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSpace(line)
		if strings.Contains(line, ":") { // PEM headers (Proc-Type, DEK-Info)
			continue
		}
		for k := 0; k < len(line); k++ {
			c := line[k]
			if isAlnum(c) || c == '+' || c == '/' || c == '=' {
				n++
			} else {
				return false
			}
		}
	}
	return n >= 64 && entropy(body) > 4.0
}

// jwtHeader decodes a token's header: it must be a JSON object naming an "alg".
func jwtHeader(v string) bool {
	dot := strings.IndexByte(v, '.')
	if dot < 0 {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(v[:dot], "="))
	if err != nil {
		return false
	}
	var h map[string]any
	if json.Unmarshal(raw, &h) != nil {
		return false
	}
	alg, ok := h["alg"].(string)
	if !ok || alg == "" || strings.EqualFold(alg, "none") && len(v)-strings.LastIndexByte(v, '.') < 2 {
		return false
	}
	rest := v[dot+1:]
	dot2 := strings.IndexByte(rest, '.')
	if dot2 < 0 {
		return false
	}
	raw, err = base64.RawURLEncoding.DecodeString(rest[:dot2])
	if err != nil {
		return false
	}
	var claims map[string]any
	return json.Unmarshal(raw, &claims) == nil
}
