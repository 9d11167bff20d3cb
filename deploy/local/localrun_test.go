package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustplane/trustplane/internal/testsupport"
)

// The local-run tests start the runner as `make run` does: from its command line, with its own
// Kafka and ClickHouse, in a directory of its own.

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// binaries builds every binary the runner starts, once per test process, into a directory
// TestMain removes.
func binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := filepath.Abs("../..")
		if err != nil {
			buildErr = err
			return
		}
		builtBin, buildErr = os.MkdirTemp("", "trustplane-local-bin-")
		if buildErr != nil {
			return
		}
		build := exec.Command("go", "build", "-o", builtBin+"/", "./functions/auth/cmd/auth", "./functions/ingest/cmd/ingest",
			"./functions/persist/cmd/persist", "./eventing/cmd/dispatcher", "./functions/router/cmd/router", "./functions/query/cmd/query", "./functions/batch/cmd/batch", "./functions/guard/cmd/guard", "./kafka/cmd/embedded-kafka")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

type localRun struct {
	o      options
	mu     sync.Mutex
	pids   map[string]int // each child's latest pid
	key    string
	stdout *testsupport.Buffer // the banner
	logs   *testsupport.Buffer
	stop   func() error // stops the runner and returns what it returned; safe to call again
}

// startLocalRun runs the runner on free ports in a new directory, with the given extra
// command-line arguments (which may override those), and waits until it is ready. configure,
// when not nil, changes the options before the start.
func startLocalRun(t testing.TB, configure func(*options), args ...string) *localRun {
	t.Helper()
	// A port testsupport.Port found free may be taken by another process (an outgoing connection gets
	// its port from the same range) before a child binds it; the run is then started again on
	// other ports.
	for attempt := 1; ; attempt++ {
		r, err := tryLocalRun(t, configure, args...)
		if err == nil {
			return r
		}
		if attempt == 3 || !strings.Contains(err.Error()+r.logs.String(), "address already in use") {
			t.Fatalf("%v\n%s", err, r.logs.String())
		}
		t.Logf("a port was taken meanwhile (%v); starting again on other ports", err)
	}
}

func tryLocalRun(t testing.TB, configure func(*options), args ...string) (*localRun, error) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	full := []string{"-dir", t.TempDir(), "-bin", binaries(t), "-triggers", filepath.Join(root, "eventing", "config"),
		"-pingsources", filepath.Join(root, "deploy", "base", "functions", "batch.yaml")}
	for _, f := range []string{"ingest", "auth", "persist", "dispatcher", "router", "query", "batch", "kafka", "clickhouse", "clickhouse-http", "clickhouse-interserver"} {
		full = append(full, "-"+f+"-port", strconv.Itoa(testsupport.Port(t)))
	}
	o, err := parseOptions(append(full, args...), func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// The tests bring their own servers only when they ask: the local run is about its own.
	o.kafkaBrokers, o.clickhouseAddr = "", ""
	ready := make(chan string, 1)
	o.ready = ready
	if configure != nil {
		configure(&o)
	}
	r := &localRun{o: o, pids: map[string]int{}, stdout: &testsupport.Buffer{}, logs: &testsupport.Buffer{}}
	started := o.started
	o.started = func(name string, pid int) {
		r.mu.Lock()
		r.pids[name] = pid
		r.mu.Unlock()
		if started != nil {
			started(name, pid)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	var result error
	go func() {
		result = start(ctx, o, slog.New(slog.NewJSONHandler(r.logs, nil)), r.stdout, r.logs)
		close(finished)
	}()
	r.stop = func() error {
		cancel()
		<-finished
		return result
	}
	select {
	case r.key = <-ready:
	case <-finished:
		return r, fmt.Errorf("runner stopped before ready: %v", result)
	case <-time.After(3 * time.Minute):
		r.stop()
		return r, errors.New("runner not ready in time")
	}
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("runner: %v", err)
		}
		if t.Failed() {
			t.Logf("runner logs:\n%s", r.logs.String())
		}
	})
	return r, nil
}

// listener is a listening TCP socket of a process.
type listener struct {
	ip   net.IP
	port int
	pid  int
}

// children returns the latest pid of each child of the run.
func (r *localRun) children() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, pid := range r.pids {
		out = append(out, pid)
	}
	return out
}

// listeners lists the listening TCP sockets of the given processes and all their descendants,
// from /proc/net/tcp{,6} and each process's open descriptors.
func listeners(t testing.TB, roots []int) []listener {
	t.Helper()
	var pids []int
	for _, root := range roots {
		pids = append(pids, descendants(t, root)...)
	}
	byInode := map[string]int{}
	for _, pid := range pids {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
				byInode[strings.TrimSuffix(inode, "]")] = pid
			}
		}
	}
	var out []listener
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if os.IsNotExist(err) {
			continue // no IPv6 on this host
		}
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			const listen = "0A"
			if len(fields) < 10 || fields[3] != listen {
				continue
			}
			pid, ok := byInode[fields[9]]
			if !ok {
				continue
			}
			ip, port, err := procNetAddr(fields[1])
			if err != nil {
				t.Fatalf("%s: %q: %v", file, fields[1], err)
			}
			out = append(out, listener{ip: ip, port: port, pid: pid})
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// procNetAddr decodes /proc/net/tcp's "0100007F:1F90": the address in 32-bit words of host
// byte order (little-endian here), the port in big-endian hex.
func procNetAddr(s string) (net.IP, int, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return nil, 0, fmt.Errorf("no port")
	}
	raw, err := hex.DecodeString(a)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return nil, 0, fmt.Errorf("bad address")
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return nil, 0, err
	}
	return net.IP(raw), int(port), nil
}

// descendants returns pid and every process below it.
func descendants(t testing.TB, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // ended meanwhile
		}
		// The command name is parenthesized and may hold spaces: the fields after its last ")"
		// are state, then the parent's pid.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		if f := strings.Fields(rest); len(f) > 1 {
			if ppid, err := strconv.Atoi(f[1]); err == nil {
				children[ppid] = append(children[ppid], p)
			}
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}
