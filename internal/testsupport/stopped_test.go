package testsupport

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// A running process group is not stopped; once SIGSTOP has taken effect it is, and once it
// continues it is not again. The short wait on the running group ends in an error by design;
// the 10 s wait after SIGSTOP is missed only by a machine stalled that long.
func TestWaitStopped(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(-pid, syscall.SIGKILL); _ = cmd.Wait() })

	if err := WaitStopped(pid, 20*time.Millisecond); err == nil {
		t.Fatal("a running process group was reported stopped")
	}
	if err := syscall.Kill(-pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := WaitStopped(pid, 10*time.Second); err != nil {
		t.Fatalf("after SIGSTOP: %v", err)
	}
	if err := syscall.Kill(-pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := WaitStopped(pid, 20*time.Millisecond); err == nil {
		t.Fatal("a continued process group was reported stopped")
	}
	if err := WaitStopped(1<<22+1, time.Millisecond); err == nil {
		t.Fatal("a group with no process was reported stopped")
	}
}

func TestReadStatCountsFieldsFromTheLastParenthesis(t *testing.T) {
	path := t.TempDir() + "/stat"
	if err := os.WriteFile(path, []byte("42 (a) b) (c) T 1 77 77 0 -1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	state, pgid, ok := readStat(path)
	if !ok || state != 'T' || pgid != 77 {
		t.Fatalf("readStat = %q, %d, %v; want 'T', 77, true", state, pgid, ok)
	}
}
