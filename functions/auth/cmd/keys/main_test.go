package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trustplane/trustplane/functions/auth"
	"github.com/trustplane/trustplane/functions/auth/authclient"
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
	id, err := authclient.ParseKey(key)
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
	pr, err := store.Verify(context.Background(), key, authclient.ScopeQuery)
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
	var d *authclient.DeniedError
	if _, err := store.Verify(context.Background(), key, authclient.ScopeQuery); !errors.As(err, &d) || d.Reason != authclient.ReasonRevoked {
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

// readmeKeysCommands returns the `bin/keys` commands of the root README's shell blocks, in order.
func readmeKeysCommands(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile("../../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	inShell := false
	for _, line := range strings.Split(string(readme), "\n") {
		switch {
		case strings.HasPrefix(line, "```"):
			inShell = !inShell && strings.TrimPrefix(line, "```") == "sh"
		case inShell && strings.HasPrefix(line, "bin/keys "):
			cmds = append(cmds, line)
		}
	}
	return cmds
}

// The README's keys commands work as written, from the repository's root after `make run` has
// made its pepper, with no pepper variable set; the key created verifies with that pepper.
func TestREADMECommandsWorkAsWritten(t *testing.T) {
	cmds := readmeKeysCommands(t)
	if len(cmds) == 0 || !strings.HasPrefix(cmds[0], "bin/keys create ") {
		t.Fatalf("the README's shell blocks have no `bin/keys create` command first: %q", cmds)
	}
	root := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(root, "bin", "keys"), ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	// As the local run writes it: 64 hex characters, no newline.
	const localPepper = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	if err := os.MkdirAll(filepath.Join(root, ".run", "auth"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, ".run", "auth", "pepper"), []byte(localPepper), 0o600); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUTH_PEPPER") {
			env = append(env, kv)
		}
	}
	var key string
	for i, c := range cmds {
		cmd := exec.Command("sh", "-c", c)
		cmd.Dir, cmd.Env = root, env
		var out, errw bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errw
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\n%s", c, err, errw.String())
		}
		if i == 0 {
			key = strings.TrimSpace(out.String())
			if !strings.Contains(errw.String(), ".run/auth/pepper") {
				t.Errorf("create does not say it used the local run's pepper: %q", errw.String())
			}
		}
	}
	file := regexp.MustCompile(`--file (\S+)`).FindStringSubmatch(cmds[0])
	if file == nil {
		t.Fatalf("%q names no --file", cmds[0])
	}
	p, _ := auth.NewPepper([]byte(localPepper))
	store, err := auth.OpenStore(filepath.Join(root, file[1]), p, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Verify(context.Background(), key, authclient.ScopeIngest); err != nil {
		t.Fatalf("the key the README's create printed does not verify with the local run's pepper: %v", err)
	}
}
