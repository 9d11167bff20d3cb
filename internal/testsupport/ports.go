package testsupport

import (
	"fmt"
	"net"
)

// FreePorts asks the kernel for n distinct free TCP ports on 127.0.0.1. They are released
// before the caller binds them, so a caller must cope with losing a race for one (a clash
// shows as a failed bind).
func FreePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// FreePort is one free TCP port on 127.0.0.1, with FreePorts' caveat.
func FreePort() (int, error) {
	ports, err := FreePorts(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// TB is the part of testing.TB that Port uses.
type TB interface {
	Helper()
	Fatal(args ...any)
}

// Port is FreePort for a test: it fails t when no port is to be had.
func Port(t TB) int {
	t.Helper()
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
