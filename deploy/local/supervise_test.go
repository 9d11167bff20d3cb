package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trustplane/trustplane/internal/testsupport"
)

func TestBackoffDoublesToItsCapAndStartsOverAfterAStableRun(t *testing.T) {
	var b backoff
	want := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond,
		3200 * time.Millisecond, 6400 * time.Millisecond, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		if got := b.after(time.Second); got != w {
			t.Fatalf("restart %d after short runs: wait %s, want %s", i+1, got, w)
		}
	}
	if got := b.after(stableRun); got != restartMin {
		t.Fatalf("after a stable run: wait %s, want %s", got, restartMin)
	}
	if got := b.after(0); got != 2*restartMin {
		t.Fatalf("the next short run: wait %s, want %s", got, 2*restartMin)
	}
}

// script writes an executable shell script into a new directory and returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fn")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func scriptChild(path string, out io.Writer) child {
	return child{
		name:  "fn",
		start: func(context.Context) (instance, error) { return startProcess(path, nil, nil, out) },
		ready: func(context.Context) error { return nil },
	}
}

// starts records the pids the supervisor reports, in order.
type starts struct {
	mu   sync.Mutex
	pids []int
	more chan struct{}
}

func newStarts() *starts { return &starts{more: make(chan struct{}, 100)} }

func (s *starts) add(_ string, pid int) {
	s.mu.Lock()
	s.pids = append(s.pids, pid)
	s.mu.Unlock()
	s.more <- struct{}{}
}

func (s *starts) list() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.pids...)
}

// logRecords decodes the JSON log lines.
func logRecords(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		out = append(out, rec)
	}
	return out
}

func hasRecord(recs []map[string]any, msg, child string) bool {
	for _, r := range recs {
		if r["msg"] == msg && r["child"] == child {
			return true
		}
	}
	return false
}

// A child that dies is started again, and both are logged.
func TestSupervisorRestartsAChildThatDies(t *testing.T) {
	logs := &testsupport.Buffer{}
	st := newStarts()
	sup := newSupervisor(slog.New(slog.NewJSONHandler(logs, nil)), st.add)
	defer sup.stop()
	if err := sup.start(context.Background(), scriptChild(script(t, "exec sleep 60"), logs)); err != nil {
		t.Fatal(err)
	}
	<-st.more
	first := st.list()[0]
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-st.more:
	case <-time.After(30 * time.Second): // the restart comes after 200 ms; the bound only ends a hang
		t.Fatalf("not restarted\n%s", logs.String())
	}
	second := st.list()[1]
	if second == first || syscall.Kill(second, 0) != nil {
		t.Fatalf("restarted as pid %d (first %d), not running", second, first)
	}
	recs := logRecords(t, logs.String())
	if !hasRecord(recs, "exited; restarting", "fn") || !hasRecord(recs, "restarted", "fn") {
		t.Fatalf("the exit and the restart are not both logged:\n%s", logs.String())
	}
	sup.stop()
	if err := syscall.Kill(second, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("pid %d still running after stop: %v", second, err)
	}
}

// A child stopped by the supervisor is neither reported as an exit nor restarted.
func TestSupervisorStopIsNotAnExit(t *testing.T) {
	logs := &testsupport.Buffer{}
	st := newStarts()
	sup := newSupervisor(slog.New(slog.NewJSONHandler(logs, nil)), st.add)
	if err := sup.start(context.Background(), scriptChild(script(t, "exec sleep 60"), logs)); err != nil {
		t.Fatal(err)
	}
	sup.stop()
	pid := st.list()[0]
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("pid %d still running after stop: %v", pid, err)
	}
	if n := len(st.list()); n != 1 {
		t.Errorf("%d starts, want 1", n)
	}
	if strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Errorf("stop logged an error:\n%s", logs.String())
	}
}

// A child that ends before it is ready on its first start stops the run with an error saying so:
// that is a configuration to fix, not a crash to wait out.
func TestFirstStartFailureIsAnError(t *testing.T) {
	sup := newSupervisor(slog.New(slog.DiscardHandler), nil)
	defer sup.stop()
	c := scriptChild(script(t, "exit 3"), io.Discard)
	c.ready = func(context.Context) error { return errors.New("not yet") }
	err := sup.start(context.Background(), c)
	if err == nil || !strings.Contains(err.Error(), "fn did not become ready") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("got %v, want an error naming fn and its exit", err)
	}
}

// runnerHelperEnv makes the test binary act as a runner holding one child (see
// TestChildDiesWithTheRunner); it prints the child's pid and waits to be killed.
const runnerHelperEnv = "LOCAL_TEST_RUNNER_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(runnerHelperEnv); path != "" {
		pids := make(chan int, 1)
		sup := newSupervisor(slog.New(slog.DiscardHandler), func(_ string, pid int) { pids <- pid })
		if err := sup.start(context.Background(), scriptChild(path, os.Stderr)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(<-pids)
		select {}
	}
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(builtBin)
	}
	os.Exit(code)
}

// A runner killed without the chance to stop its children (SIGKILL, the OOM killer) must not
// leave them running and holding their ports.
func TestChildDiesWithTheRunner(t *testing.T) {
	runner := exec.Command(os.Args[0], "-test.run=^$")
	runner.Env = append(os.Environ(), runnerHelperEnv+"="+script(t, "exec sleep 120"))
	out, err := runner.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := runner.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Fscan(out, &pid); err != nil {
		_ = runner.Process.Kill()
		t.Fatalf("runner did not report its child's pid: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-pid, syscall.SIGKILL) })
	if err := runner.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = runner.Wait()
	// The child is reparented, so it cannot be waited for: poll until it is gone. The bound
	// only turns a leak into a failure instead of a hang.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("child (pid %d) still running after its runner was killed", pid)
		}
	}
}

// Ctrl-C while the functions start is a stop like any other, not an error blaming the function
// being waited for.
func TestStopWhileStartingIsNotAFailure(t *testing.T) {
	bin := t.TempDir()
	// auth never answers its readiness check, so the runner is still starting when stopped.
	if err := os.WriteFile(filepath.Join(bin, "auth"), []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(binaries(t), "embedded-kafka"), filepath.Join(bin, "embedded-kafka")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := options{
		dir: t.TempDir(), bin: bin, clickhouseAddr: "127.0.0.1:1",
		ingestPort: testsupport.Port(t), authPort: testsupport.Port(t), persistPort: testsupport.Port(t), dispatcherPort: testsupport.Port(t), routerPort: testsupport.Port(t), guardPort: testsupport.Port(t),
		queryPort: testsupport.Port(t), batchPort: testsupport.Port(t),
		started: func(name string, _ int) {
			if name == "auth" {
				cancel()
			}
		},
	}
	logs := &testsupport.Buffer{}
	if err := start(ctx, o, slog.New(slog.NewJSONHandler(logs, nil)), io.Discard, logs); err != nil {
		t.Fatalf("stopped while starting: got %v, want no error\n%s", err, logs.String())
	}
}
