package detect

import (
	"strings"
	"testing"

	"github.com/trustplane/trustplane/functions/guard/detect/internal/synth"
)

func TestSecretsEveryKind(t *testing.T) {
	g := synth.New(1)
	templates := map[string]string{
		"aws_secret_key":    "aws_secret_access_key = %s",
		"azure_storage_key": "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=%s;EndpointSuffix=core.windows.net",
		"password":          `db_password: "%s"`,
	}
	want := map[string]string{"github_pat": "secret.github_token", "password": "secret.generic"}
	for _, kind := range synth.SecretKinds {
		for i := 0; i < 20; i++ {
			v := g.Secret(kind)
			tpl, ok := templates[kind]
			if !ok {
				tpl = "here you go: %s thanks"
			}
			text := strings.Replace(tpl, "%s", v, 1)
			det := want[kind]
			if det == "" {
				det = "secret." + kind
			}
			var got []Finding
			Secrets{}.Detect(text, func(f Finding) { got = append(got, f) })
			if len(got) != 1 || got[0].Detector != det || text[got[0].Start:got[0].End] != v {
				t.Fatalf("%s in %q: %+v", kind, text, got)
			}
			if strings.Contains(got[0].Preview, v[len(v)/2:]) {
				t.Fatalf("%s: preview %q shows the value", kind, got[0].Preview)
			}
		}
	}
}

func TestSecretsPlaceholdersAndNegatives(t *testing.T) {
	for _, text := range []string{
		"export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
		"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"stripe.api_key = 'sk_test_4eC39HqLyjWDarjtT1zdp7dc'",
		"OPENAI_API_KEY=<your-key>",
		"api_key: YOUR_API_KEY_HERE",
		"token = ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		"password = ********",
		"password: ${DB_PASSWORD}",
		"api_key = os.environ['API_KEY']",
		"const token = await getToken()",
		"max_tokens = 1024",
		"token_count: 1500000",
		"password_policy = strict_mode",
		"-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----",
		"eyJhbGciOiJIUzI1NiJ9.notbase64json.abcdefghijklmnopqrstu", // payload not a JSON object
		"commit 4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a3f",
		"The password is stored hashed with bcrypt.",
		"Use the Authorization header: Bearer <token>.",
		"postgres://user:password@localhost:5432/db",
	} {
		var got []Finding
		Secrets{}.Detect(text, func(f Finding) { got = append(got, f) })
		if len(got) != 0 {
			t.Errorf("%q: %s %q", text, got[0].Detector, text[got[0].Start:got[0].End])
		}
	}
}

func TestSecretsMore(t *testing.T) {
	runCases(t, Secrets{}, "", []tcase{
		{"Authorization: Bearer 8f3kQ9zP2mX7vL1nB4cR6tY0wE5uI8oA", []string{"8f3kQ9zP2mX7vL1nB4cR6tY0wE5uI8oA"}},
		{"DATABASE_URL=postgres://app:Zx9!qT4mLp2w@db.internal:5432/prod", []string{"Zx9!qT4mLp2w"}},
		{"password=hunter2", nil}, // too short to tell from a word
		{"password: Tr0ub4dor&3x", []string{"Tr0ub4dor&3x"}},
		{"contraseña: Qm7#vT2xLp9w", []string{"Qm7#vT2xLp9w"}},
	})
}

func TestKeywordsAutomaton(t *testing.T) {
	k := newKeywords([]string{"he", "she", "his", "hers"})
	hit := make([]bool, 4)
	if n := k.find("uSHErs", hit); n != 3 || !hit[0] || !hit[1] || hit[2] || !hit[3] {
		t.Fatalf("n=%d hit=%v", n, hit)
	}
}
