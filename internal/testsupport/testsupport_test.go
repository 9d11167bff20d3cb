package testsupport

import (
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
)

func TestFreePortsAreDistinctAndBindable(t *testing.T) {
	ports, err := FreePorts(4)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Fatalf("port %d given twice in %v", p, ports)
		}
		seen[p] = true
		// Another process may take a released port before this bind, an accident far rarer
		// than once in a million on a test machine.
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		l.Close()
	}
	if p := Port(t); p <= 0 {
		t.Fatalf("Port = %d", p)
	}
}

func TestLogKeepsLinesFromGoroutines(t *testing.T) {
	var l Log
	log := l.Logger()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { log.Warn("warned"); log.Debug("noted") })
	}
	wg.Wait()
	if n := l.Count("warned"); n != 8 {
		t.Errorf("Count(warned) = %d, want 8", n)
	}
	if n := len(AtLeast(l.Lines(), slog.LevelWarn)); n != 8 {
		t.Errorf("lines at warn or above = %d, want 8", n)
	}
	if _, err := l.Write([]byte("not json")); err == nil {
		t.Error("Write took a line that is not JSON")
	}
}

func TestBufferKeepsWhatWasWritten(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { b.Write([]byte("ab")) })
	}
	wg.Wait()
	if got := b.String(); got != "abababab" {
		t.Errorf("String = %q", got)
	}
}
