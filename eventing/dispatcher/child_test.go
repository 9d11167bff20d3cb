package dispatcher

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
)

// startChild runs a dispatcher for manifest in a child process (the test binary) until the
// test ends.
func startChild(t testing.TB, e env, manifest, subURL string, env ...string) *exec.Cmd {
	t.Helper()
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), crashChildEnv+"=1", "CHILD_MANIFEST="+manifest, "CHILD_SUBSCRIBERS=sub="+subURL,
		"CHILD_BROKERS="+strings.Join(e.addrs, ","), "CHILD_TOPIC="+e.topic, "CHILD_DLQ="+e.dlq, "CHILD_GROUP_PREFIX=g-"+e.topic)
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
		var subs Subscribers
		if subs, err = ParseSubscribers(os.Getenv("CHILD_SUBSCRIBERS")); err == nil {
			var d *Dispatcher
			d, err = New(Config{
				Brokers: strings.Split(os.Getenv("CHILD_BROKERS"), ","), Topic: os.Getenv("CHILD_TOPIC"),
				DeadLetterTopic: os.Getenv("CHILD_DLQ"), Subscribers: subs, GroupPrefix: os.Getenv("CHILD_GROUP_PREFIX"),
			}, m)
			if err == nil {
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
	if path := os.Getenv("CHILD_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	return d.Run(ctx)
}
