package dispatcher

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"

	"github.com/trustplane/trustplane/internal/testsupport"
)

// startChild runs a dispatcher for manifest in a child process (the test binary) until the
// test ends.
func startChild(t testing.TB, e env, manifest, subURL string, env ...string) *exec.Cmd {
	t.Helper()
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), crashChildEnv+"=1", "CHILD_MANIFEST="+manifest)
	child.Env = append(child.Env, configEnv(e, subURL)...)
	child.Env = append(child.Env, env...)
	child.Stderr = os.Stderr
	child.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if child.ProcessState == nil { // not waited for yet
			_ = syscall.Kill(-child.Process.Pid, syscall.SIGKILL)
			_ = child.Wait()
		}
	})
	return child
}

// crashChildEnv makes the test binary run a dispatcher (configured from the environment)
// instead of the tests, so that a test can kill it as a crash would.
const crashChildEnv = "DISPATCHER_TEST_CHILD"

func runCrashChild() int {
	m, err := DecodeManifests(context.Background(), "child.yaml", []byte(os.Getenv("CHILD_MANIFEST")))
	if err == nil {
		var s settings
		if s, err = loadSettings(); err == nil {
			var d *Dispatcher
			if d, err = newDispatcher(s, m); err == nil {
				err = runChild(d)
			}
		}
	}
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, "dispatcher child:", err)
	return 1
}

// runChild runs d until the process is killed, or until SIGTERM, after which it writes the
// CPU profile asked for by CHILD_CPUPROFILE.
func runChild(d *Dispatcher) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	stopProfile, err := testsupport.CPUProfile("CHILD_CPUPROFILE")
	if err != nil {
		return err
	}
	defer stopProfile()
	return d.Run(ctx)
}
