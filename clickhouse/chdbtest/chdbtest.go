// Package chdbtest runs statements on a current ClickHouse in tests: chDB (PyPI chdb-core,
// ClickHouse 26.9) in a Python child process, one session in a temporary directory. The
// 18.16 server of chtest is the one the integration tests run against; chdbtest is where the
// modern schema variant, the materialized views and every statement of the query function
// also run. `make chdb` installs chDB into .cache/chdb (make deps and make test do it).
//
// chDB has no network server, no Keeper and no Replicated tables: the cluster variant of the
// schema does not run here.
package chdbtest

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/trustplane/trustplane/clickhouse"
)

//go:embed server.py
var serverPy []byte

// Engine is one chDB session.
type Engine struct {
	mu  sync.Mutex
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// Python is the interpreter with chdb-core: CHDB_PYTHON, else .cache/chdb/bin/python at the
// module root.
func Python() (string, error) {
	if p := os.Getenv("CHDB_PYTHON"); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, ".cache", "chdb", "bin", "python")
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("chdbtest: %s is missing: run `make chdb` (make deps installs it)", p)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("chdbtest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Start starts an engine for the test, stopped when it ends. A missing chDB fails the test
// with the make target to run.
func Start(t testing.TB) *Engine {
	t.Helper()
	py, err := Python()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "server.py")
	if err := os.WriteFile(script, serverPy, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, script, filepath.Join(dir, "session"))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("chdbtest: start %s: %v", py, err)
	}
	e := &Engine{cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<20)}
	t.Cleanup(func() {
		in.Close()
		_ = cmd.Wait()
	})
	if _, err := e.Query("SELECT 1"); err != nil {
		t.Fatalf("chdbtest: %v", err)
	}
	return e
}

// Result is a statement's answer in ClickHouse's JSONCompact format.
type Result struct {
	Meta []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"meta"`
	Data [][]json.RawMessage `json:"data"`
}

// Query runs one statement and returns its rows (none for DDL and inserts).
func (e *Engine) Query(sql string) (Result, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	req, _ := json.Marshal(map[string]string{"sql": sql})
	if _, err := e.in.Write(append(req, '\n')); err != nil {
		return Result{}, fmt.Errorf("chdbtest: write: %w", err)
	}
	line, err := e.out.ReadBytes('\n')
	if err != nil {
		return Result{}, fmt.Errorf("chdbtest: read: %w", err)
	}
	var ans struct {
		Result *string `json:"result"`
		Error  string  `json:"error"`
	}
	if err := json.Unmarshal(line, &ans); err != nil {
		return Result{}, fmt.Errorf("chdbtest: answer %.200q: %w", line, err)
	}
	if ans.Error != "" {
		return Result{}, fmt.Errorf("chdb: %s\n%s", strings.TrimSpace(ans.Error), sql)
	}
	var r Result
	if ans.Result != nil && strings.TrimSpace(*ans.Result) != "" {
		if err := json.Unmarshal([]byte(*ans.Result), &r); err != nil {
			return Result{}, fmt.Errorf("chdbtest: result of %s: %w", sql, err)
		}
	}
	return r, nil
}

// Exec runs statements in order and stops at the first error.
func (e *Engine) Exec(stmts ...string) error {
	for _, s := range stmts {
		if _, err := e.Query(s); err != nil {
			return err
		}
	}
	return nil
}

// Version is SELECT version().
func (e *Engine) Version() (string, error) {
	r, err := e.Query("SELECT version()")
	if err != nil {
		return "", err
	}
	if len(r.Data) != 1 || len(r.Data[0]) != 1 {
		return "", errors.New("chdbtest: no version")
	}
	var v string
	err = json.Unmarshal(r.Data[0][0], &v)
	return v, err
}

// Features are what clickhouse.FeaturesFor gives for the engine's version.
func (e *Engine) Features() (clickhouse.Features, error) {
	v, err := e.Version()
	if err != nil {
		return clickhouse.Features{}, err
	}
	return clickhouse.FeaturesFor(v)
}

// Migrate creates the schema on the engine as the migrations render it for its version (the
// single-node modern variant) with opts, and returns the features it was rendered for.
func (e *Engine) Migrate(opts clickhouse.Options) (clickhouse.Features, error) {
	f, err := e.Features()
	if err != nil {
		return f, err
	}
	plan, err := clickhouse.Render(f, opts)
	if err != nil {
		return f, err
	}
	if err := e.Exec(plan.Bootstrap...); err != nil {
		return f, fmt.Errorf("bootstrap: %w", err)
	}
	for _, m := range plan.Migrations {
		if err := e.Exec(m.Statements...); err != nil {
			return f, fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
		}
	}
	return f, nil
}
