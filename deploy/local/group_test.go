package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A function stopped by the group, as after another one failed to start, is not reported as
// having exited unexpectedly.
func TestGroupStopIsNotAnUnexpectedExit(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "fn"), []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	g := &group{logger: slog.New(slog.NewTextHandler(logs, nil)), exited: make(chan string, 1)}
	p := &proc{name: "fn"}
	if err := g.start(context.Background(), bin, p, logs); err != nil {
		t.Fatal(err)
	}
	g.stop()
	select {
	case <-p.done:
	default:
		t.Fatal("stop returned before the process ended")
	}
	select {
	case name := <-g.exited:
		t.Errorf("%s reported as exited unexpectedly after stop", name)
	default:
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("stop logged an error:\n%s", logs.String())
	}
}

// runnerHelperEnv makes the test binary act as a runner holding one function (see
// TestGroupChildDiesWithTheRunner); it prints the function's pid and waits to be killed.
const runnerHelperEnv = "LOCAL_TEST_RUNNER_BIN"

func TestMain(m *testing.M) {
	if bin := os.Getenv(runnerHelperEnv); bin != "" {
		g := &group{logger: slog.New(slog.NewTextHandler(io.Discard, nil)), exited: make(chan string, 1)}
		p := &proc{name: "fn"}
		if err := g.start(context.Background(), bin, p, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(p.cmd.Process.Pid)
		select {}
	}
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(builtBin)
	}
	os.Exit(code)
}

// A runner killed without the chance to stop its functions (SIGKILL, the OOM killer) must not
// leave them running and holding their ports.
func TestGroupChildDiesWithTheRunner(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "fn"), []byte("#!/bin/sh\nexec sleep 120\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	runner := exec.Command(os.Args[0], "-test.run=^$")
	runner.Env = append(os.Environ(), runnerHelperEnv+"="+bin)
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
		t.Fatalf("runner did not report its function's pid: %v", err)
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
			t.Fatalf("function (pid %d) still running after its runner was killed", pid)
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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := options{
		dir: t.TempDir(), bin: bin, clickhouseAddr: "127.0.0.1:1",
		ingestPort: freePort(t), authPort: freePort(t), persistPort: freePort(t), dispatcherPort: freePort(t), routerPort: freePort(t),
		started: func(string, int) { cancel() },
	}
	logs := &lockedBuffer{}
	if err := start(ctx, o, slog.New(slog.NewTextHandler(logs, nil)), io.Discard, logs); err != nil {
		t.Fatalf("stopped while starting: got %v, want no error\n%s", err, logs.String())
	}
}
