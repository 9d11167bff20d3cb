package auth

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustplane/trustplane/functions/auth/authclient"
)

func TestHashAndMatch(t *testing.T) {
	key, _, _ := authclient.GenerateKey()
	h := testPepper.Hash(key)
	if !testPepper.Matches(key, h) {
		t.Fatal("key does not match its own hash")
	}
	other, _, _ := authclient.GenerateKey()
	if testPepper.Matches(other, h) {
		t.Fatal("another key matches")
	}
	if mustPepper(strings.Repeat("x", 32)).Matches(key, h) {
		t.Fatal("the same key under another pepper matches")
	}
	if got := testPepper.HashHex(key); len(got) != 64 || strings.ToLower(got) != got {
		t.Fatalf("HashHex = %q, want 64 lowercase hex", got)
	}
	if testPepper.HashHex(key) == testPepper.HashHex(key[:63]+"a") && key[63] != 'a' {
		t.Fatal("different keys hash alike")
	}
}

func TestPepper(t *testing.T) {
	if _, err := NewPepper([]byte("short")); err == nil {
		t.Fatal("short pepper accepted")
	}
	secret := strings.Repeat("s", 40)
	p := mustPepper(secret)
	for _, s := range []string{p.String(), fmt.Sprintf("%v %+v %#v %s", p, p, p, p)} {
		if strings.Contains(s, secret) {
			t.Fatalf("pepper printed: %s", s)
		}
	}
	file := filepath.Join(t.TempDir(), "pepper")
	writeFile(t, file, secret+"\n")
	fromFile, err := LoadPepper("", file)
	if err != nil {
		t.Fatal(err)
	}
	key, _, _ := authclient.GenerateKey()
	if fromFile.HashHex(key) != p.HashHex(key) {
		t.Fatal("pepper file with a trailing newline differs from the value")
	}
	cases := []struct{ value, file, want string }{
		{"", "", "one of AUTH_PEPPER and AUTH_PEPPER_FILE is required"},
		{secret, file, "set only one"},
		{"short", "", "AUTH_PEPPER: pepper must be at least 32 bytes"},
		{"", filepath.Join(t.TempDir(), "missing"), "AUTH_PEPPER_FILE"},
	}
	for _, c := range cases {
		_, err := LoadPepper(c.value, c.file)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("LoadPepper(%q, %q) = %v, want %q", c.value, c.file, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks the pepper: %v", err)
		}
	}
	// A pepper set where its file's path belongs is not repeated in the error, which ends up in
	// the function's log.
	if _, err := LoadPepper("", secret); err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("pepper given as AUTH_PEPPER_FILE: %v", err)
	}
	short := filepath.Join(t.TempDir(), "short")
	writeFile(t, short, "tiny")
	if _, err := LoadPepper("", short); err == nil || strings.Contains(err.Error(), "tiny") {
		t.Fatalf("short pepper file: %v", err)
	}
	_ = os.Remove(short)
}
