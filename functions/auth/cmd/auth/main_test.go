package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trustplane/trustplane/functions/auth"
	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/internal/testsupport"
)

const pepper = "the-auth-function-test-pepper-0123456789"

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// build compiles this command once per test run into a temporary directory.
func build(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "auth-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "auth")
		out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binary != "" {
		os.RemoveAll(filepath.Dir(binary))
	}
	os.Exit(code)
}

type proc struct {
	out    *testsupport.Buffer // stdout and stderr
	stdout *testsupport.Buffer
	exited chan struct{} // closed when the process has ended
	err    error         // of Wait, once exited is closed
}

// start runs the auth binary with env in its own process group, killed at cleanup.
func start(t *testing.T, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(build(t))
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	out, stdout := &testsupport.Buffer{}, &testsupport.Buffer{}
	cmd.Stdout, cmd.Stderr = io.MultiWriter(out, stdout), out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{out: out, stdout: stdout, exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	})
	return p
}

func TestRefusesToStartWithBadConfig(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "keys.json")
	if err := os.WriteFile(bad, []byte(`{"keys":[{"id":"abcdefgh","tenant":"acme"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		env  []string
		want string
	}{
		{[]string{"AUTH_PEPPER=" + pepper}, "AUTH_KEYS_FILE"},
		{[]string{"AUTH_KEYS_FILE=" + bad}, "AUTH_PEPPER"},
		{[]string{"AUTH_KEYS_FILE=" + bad, "AUTH_PEPPER=short"}, "at least 32 bytes"},
		{[]string{"AUTH_KEYS_FILE=" + bad, "AUTH_PEPPER=" + pepper}, `keys[0] (id "abcdefgh"): hash:`},
	} {
		p := start(t, append(c.env, fmt.Sprintf("PORT=%d", testsupport.Port(t)))...)
		<-p.exited
		out, err := p.out, p.err
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(out.String(), c.want) {
			t.Errorf("%v: %v, output %q, want exit 1 naming %q", c.env, err, out, c.want)
		}
		if strings.Contains(out.String(), pepper) {
			t.Errorf("%v: output contains the pepper", c.env)
		}
	}
}

func TestServesVerifyAndReloads(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keys.json")
	p, _ := auth.NewPepper([]byte(pepper))
	key, rec, err := auth.AddKey(file, p, auth.NewKey{Tenant: "acme", Project: "web", Scopes: []authclient.Scope{authclient.ScopeIngest}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	port := testsupport.Port(t)
	proc := start(t, fmt.Sprintf("PORT=%d", port), "AUTH_KEYS_FILE="+file, "AUTH_PEPPER="+pepper,
		"AUTH_RELOAD_INTERVAL=20ms", "LOG_LEVEL=debug")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for {
		select {
		case <-proc.exited:
			t.Fatalf("auth exited: %v\n%s", proc.err, proc.out)
		default:
		}
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			t.Logf("readyz %d %s", resp.StatusCode, body)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// No caching, so each call sees the function's current keys. Its 5 s timeout is 75 times
	// the slowest of a million loopback calls on the 2-core build machine under load (66 ms).
	c, err := authclient.New(authclient.ClientConfig{URL: base, CacheSize: 1, Timeout: 5 * time.Second}, authclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pr, err := c.Verify(ctx, key, authclient.ScopeIngest)
	if err != nil || pr.KeyID != rec.ID || pr.Tenant != "acme" {
		t.Fatalf("verify: %+v %v", pr, err)
	}
	if _, err := c.Verify(ctx, key, authclient.ScopeQuery); authclient.HTTPStatus(err) != http.StatusForbidden {
		t.Fatalf("missing scope: %v", err)
	}

	if _, err := auth.RevokeKey(file, rec.ID); err != nil {
		t.Fatal(err)
	}
	for { // the function's poll picks the revocation up without a restart
		_, err := c.Verify(ctx, key, authclient.ScopeIngest)
		var d *authclient.DeniedError
		if errors.As(err, &d) && d.Reason == authclient.ReasonRevoked {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`trustplane_auth_verifications_total{result="missing_scope"} 1`, `trustplane_auth_verifications_total{result="revoked"} 1`,
		`trustplane_auth_keys{status="revoked"} 1`, `trustplane_auth_key_file_reloads_total{result="success"} 2`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if logs := proc.out.String(); strings.Contains(logs, key) || strings.Contains(logs, key[12:]) || strings.Contains(logs, pepper) ||
		!strings.Contains(logs, rec.ID) {
		t.Fatalf("logs must name the key id and never the key or pepper:\n%s", logs)
	}
	if out := proc.stdout.String(); out != "" {
		t.Fatalf("logs belong on stderr, stdout got:\n%s", out)
	}
}
