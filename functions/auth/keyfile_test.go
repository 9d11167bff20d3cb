package auth

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustplane/trustplane/functions/auth/authclient"
)

const goodRecord = `{"id":"abcdefgh","hash":"` + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" +
	`","tenant":"acme","project":"web","scopes":["ingest"],"status":"active","created_at":"2026-01-01T00:00:00Z"}`

// record returns goodRecord with one field replaced (or removed when value is empty).
func record(field, value string) string {
	r := goodRecord
	start := strings.Index(r, `"`+field+`":`)
	if start < 0 {
		return strings.TrimSuffix(r, "}") + `,"` + field + `":` + value + "}"
	}
	end := start + len(field) + 3
	depth := 0
	for ; end < len(r); end++ {
		c := r[end]
		if c == '[' || c == '{' {
			depth++
		}
		if c == ']' || c == '}' {
			if depth == 0 {
				break
			}
			depth--
		}
		if c == ',' && depth == 0 {
			break
		}
	}
	if value == "" {
		out := r[:start] + r[end:]
		out = strings.Replace(out, ",,", ",", 1)
		return strings.Replace(strings.Replace(out, "{,", "{", 1), ",}", "}", 1)
	}
	return r[:start] + `"` + field + `":` + value + r[end:]
}

func TestParseKeyFileValid(t *testing.T) {
	for name, doc := range map[string]string{
		"json": `{"keys":[` + goodRecord + `]}`,
		"yaml": "keys:\n- id: abcdefgh\n  hash: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n" +
			"  tenant: acme\n  project: web\n  scopes: [ingest, query, llm]\n  status: revoked\n" +
			"  created_at: 2026-01-01T00:00:00Z\n  description: the web app\n  limits: {requests_per_minute: 600}\n",
		"empty list": `{"keys":[]}`,
	} {
		kf, err := ParseKeyFile([]byte(doc))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if name != "empty list" && (len(kf.Keys) != 1 || kf.Keys[0].Tenant != "acme") {
			t.Errorf("%s: decoded %+v", name, kf)
		}
	}
}

func TestParseKeyFileErrors(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want []string // every substring must appear in the error
	}{
		{"empty file", ``, []string{"key file is empty"}},
		{"not a document", `[1,2`, []string{"decode key file"}},
		{"unknown top-level field", `{"keys":[],"version":2}`, []string{"unknown field", "version"}},
		{"unknown record field", `{"keys":[` + record("owner", `"bob"`) + `]}`, []string{"unknown field", "owner"}},
		{"id missing", `{"keys":[` + record("id", "") + `]}`, []string{`keys[0] (id "")`, "id: must be 8 characters"}},
		{"id bad chars", `{"keys":[` + record("id", `"ABCDEFGH"`) + `]}`, []string{`keys[0] (id "ABCDEFGH")`, "id:"}},
		{"hash short", `{"keys":[` + record("hash", `"abc"`) + `]}`, []string{`(id "abcdefgh")`, "hash: must be 64 lowercase hex"}},
		{"hash upper", `{"keys":[` + record("hash", `"`+strings.Repeat("A", 64)+`"`) + `]}`, []string{"hash:"}},
		{"hash not hex", `{"keys":[` + record("hash", `"`+strings.Repeat("g", 64)+`"`) + `]}`, []string{"hash:"}},
		{"tenant empty", `{"keys":[` + record("tenant", `""`) + `]}`, []string{"tenant: must match"}},
		{"tenant bad charset", `{"keys":[` + record("tenant", `"Acme Corp"`) + `]}`, []string{"tenant: must match"}},
		{"tenant too long", `{"keys":[` + record("tenant", `"`+strings.Repeat("a", 64)+`"`) + `]}`, []string{"tenant:"}},
		{"project missing", `{"keys":[` + record("project", "") + `]}`, []string{"project: must match"}},
		{"project leading dash", `{"keys":[` + record("project", `"-web"`) + `]}`, []string{"project:"}},
		{"scopes empty", `{"keys":[` + record("scopes", `[]`) + `]}`, []string{"scopes: at least one"}},
		{"scope unknown", `{"keys":[` + record("scopes", `["ingest","admin"]`) + `]}`, []string{`scopes[1]: unknown scope "admin"`}},
		{"scope duplicate", `{"keys":[` + record("scopes", `["query","query"]`) + `]}`, []string{`scopes[1]: duplicate scope "query"`}},
		{"status unknown", `{"keys":[` + record("status", `"paused"`) + `]}`, []string{`status: must be active or revoked, got "paused"`}},
		{"created_at missing", `{"keys":[` + record("created_at", "") + `]}`, []string{"created_at: is required"}},
		{"created_at bad", `{"keys":[` + record("created_at", `"yesterday"`) + `]}`, []string{"decode key file"}},
		{"description too long", `{"keys":[` + record("description", `"`+strings.Repeat("d", 513)+`"`) + `]}`, []string{"description: longer than 512"}},
		{"limits negative", `{"keys":[` + record("limits", `{"requests_per_minute":-1}`) + `]}`, []string{"limits: must not be negative"}},
		{"limits unknown field", `{"keys":[` + record("limits", `{"burst":5}`) + `]}`, []string{"unknown field", "burst"}},
		{"duplicate id", `{"keys":[` + goodRecord + `,` + goodRecord + `]}`, []string{`keys[1] (id "abcdefgh"): id: duplicate of keys[0]`}},
		{"all errors reported", `{"keys":[` + record("tenant", `""`) + `,` + record("status", `"x"`) + `]}`,
			[]string{"keys[0]", "tenant:", "keys[1]", "status:"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseKeyFile([]byte(c.doc))
			if err == nil {
				t.Fatalf("accepted: %s", c.doc)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestWriteKeyFileAtomicAndPrivate(t *testing.T) {
	for _, name := range []string{"keys.json", "keys.yaml"} {
		path := filepath.Join(t.TempDir(), name)
		key, rec, err := AddKey(path, testPepper, NewKey{Tenant: "acme", Project: "web", Scopes: []authclient.Scope{authclient.ScopeIngest}}, timeZero())
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", name, st.Mode().Perm())
		}
		data, _ := os.ReadFile(path)
		if strings.Contains(string(data), key) || !strings.Contains(string(data), rec.Hash) {
			t.Errorf("%s: file must hold the hash and not the key", name)
		}
		kf, err := ReadKeyFile(path)
		if err != nil || len(kf.Keys) != 1 || kf.Keys[0].ID != rec.ID {
			t.Fatalf("%s: reread %+v, %v", name, kf, err)
		}
		entries, _ := os.ReadDir(filepath.Dir(path))
		if len(entries) != 1 {
			t.Errorf("%s: temporary files left: %v", name, entries)
		}
	}
	if err := WriteKeyFile(filepath.Join(t.TempDir(), "k.json"), KeyFile{Keys: []Record{{ID: "bad"}}}); err == nil {
		t.Fatal("invalid key file written")
	}
	if _, err := ReadKeyFile(filepath.Join(t.TempDir(), "none.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestRevokeKeyUnknownID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	if _, _, err := AddKey(path, testPepper, NewKey{Tenant: "acme", Project: "web", Scopes: []authclient.Scope{authclient.ScopeQuery}}, timeZero()); err != nil {
		t.Fatal(err)
	}
	if _, err := RevokeKey(path, "zzzzzzzz"); err == nil || !strings.Contains(err.Error(), `no key with id "zzzzzzzz"`) {
		t.Fatalf("RevokeKey unknown id: %v", err)
	}
}

// An API key pasted where its id belongs (in the key file, or to revoke) is not repeated in the
// error: a reload error goes to the function's log, a command's error to a terminal or CI log.
func TestKeyInPlaceOfIDIsNotEchoed(t *testing.T) {
	key, _, _ := authclient.GenerateKey()
	if _, err := ParseKeyFile([]byte(`{"keys":[` + record("id", `"`+key+`"`) + `]}`)); err == nil ||
		strings.Contains(err.Error(), key[12:]) || !strings.Contains(err.Error(), "keys[0]") {
		t.Errorf("key as id in the key file: %v", err)
	}
	dup := record("id", `"`+key+`"`)
	if _, err := ParseKeyFile([]byte(`{"keys":[` + dup + `,` + dup + `]}`)); err == nil || strings.Contains(err.Error(), key[12:]) {
		t.Errorf("key as a duplicate id: %v", err)
	}
	path := filepath.Join(t.TempDir(), "keys.json")
	if _, _, err := AddKey(path, testPepper, NewKey{Tenant: "acme", Project: "web", Scopes: []authclient.Scope{authclient.ScopeQuery}}, timeZero()); err != nil {
		t.Fatal(err)
	}
	if _, err := RevokeKey(path, key); err == nil || strings.Contains(err.Error(), key[12:]) {
		t.Errorf("key as the id to revoke: %v", err)
	}
}
