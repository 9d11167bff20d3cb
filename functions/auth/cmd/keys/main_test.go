package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustplane/trustplane/functions/auth"
)

const pepper = "a-pepper-of-at-least-thirty-two-bytes!!"

func keys(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errw bytes.Buffer
	getenv := func(k string) string {
		if k == "AUTH_PEPPER" {
			return pepper
		}
		return ""
	}
	err = run(args, getenv, &out, &errw, func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) })
	return out.String(), errw.String(), err
}

func TestCreateListRevoke(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keys.yaml")
	out, errOut, err := keys(t, "create", "--file", file, "--tenant", "acme", "--project", "web",
		"--scopes", "ingest,query", "--description", "web app")
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(out)
	id, err := auth.ParseKey(key)
	if err != nil {
		t.Fatalf("stdout is not exactly one key: %q", out)
	}
	if strings.Contains(errOut, key) || strings.Contains(errOut, key[12:]) || !strings.Contains(errOut, id) {
		t.Fatalf("stderr must name the key id and never the key: %q", errOut)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", st, err)
	}

	// The created key verifies against the file, with the auth function's own store.
	p, _ := auth.NewPepper([]byte(pepper))
	store, err := auth.OpenStore(file, p, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := store.Verify(context.Background(), key, auth.ScopeQuery)
	if err != nil || pr.KeyID != id || pr.Tenant != "acme" || pr.Project != "web" {
		t.Fatalf("verify created key: %+v %v", pr, err)
	}

	out, _, err = keys(t, "list", "--file", file)
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "ingest,query") || !strings.Contains(out, "active") ||
		strings.Contains(out, key[12:]) {
		t.Fatalf("list: %v\n%s", err, out)
	}

	if _, _, err := keys(t, "revoke", "--file", file, "--id", id); err != nil {
		t.Fatal(err)
	}
	if changed, err := store.Reload(); !changed || err != nil {
		t.Fatalf("reload after revoke: %v %v", changed, err)
	}
	var d *auth.DeniedError
	if _, err := store.Verify(context.Background(), key, auth.ScopeQuery); !errors.As(err, &d) || d.Reason != auth.ReasonRevoked {
		t.Fatalf("revoked key: %v", err)
	}
	out, _, _ = keys(t, "list", "--file", file)
	if !strings.Contains(out, "revoked") {
		t.Fatalf("list after revoke:\n%s", out)
	}
}

func TestCommandErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keys.json")
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"rotate"}, `unknown command "rotate"`},
		{[]string{"create", "--tenant", "a", "--project", "b", "--scopes", "ingest"}, "--file is required"},
		{[]string{"create", "--file", file, "--tenant", "a", "--project", "b", "--scopes", "admin"}, `--scopes: unknown scope "admin"`},
		{[]string{"create", "--file", file, "--tenant", "Bad!", "--project", "b", "--scopes", "ingest"}, "tenant: must match"},
		{[]string{"revoke", "--file", file}, "--id is required"},
		{[]string{"list", "--file", file}, "no such file"},
		{[]string{"list", "--file", file, "extra"}, "unexpected arguments"},
	} {
		_, _, err := keys(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want %q", c.args, err, c.want)
		}
	}
	var out, errw bytes.Buffer
	err := run([]string{"create", "--file", file, "--tenant", "a", "--project", "b", "--scopes", "ingest"},
		func(string) string { return "" }, &out, &errw, time.Now)
	if err == nil || !strings.Contains(err.Error(), "AUTH_PEPPER") || out.Len() != 0 {
		t.Fatalf("create without a pepper: %v, stdout %q", err, out.String())
	}
}
