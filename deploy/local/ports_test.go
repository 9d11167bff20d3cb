package main

import (
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/trustplane/trustplane/internal/testsupport"
)

func TestCheckPortsNamesTheTakenPort(t *testing.T) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port
	free := testsupport.Port(t)

	if err := checkPorts([]namedPort{{"auth", loopback, free}}); err != nil {
		t.Fatalf("free port refused: %v", err)
	}
	err = checkPorts([]namedPort{{"auth", loopback, free}, {"ingest", loopback, taken}})
	if err == nil {
		t.Fatalf("port %d is taken, yet accepted", taken)
	}
	for _, want := range []string{"ingest port", strconv.Itoa(taken), "-ingest-port", "INGEST_PORT"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// The check must release what it held: the free port is still free.
	if err := checkPorts([]namedPort{{"auth", loopback, free}}); err != nil {
		t.Errorf("port %d not released by the previous check: %v", free, err)
	}
}

func TestCheckPortsRefusesAPortGivenTwice(t *testing.T) {
	p := testsupport.Port(t)
	err := checkPorts([]namedPort{{"auth", loopback, p}, {"router", loopback, p}})
	if err == nil || !strings.Contains(err.Error(), "router port") {
		t.Fatalf("port %d given to auth and router: got %v, want an error naming router's port", p, err)
	}
}

// Every port's error names its flag and variable, the local server's too.
func TestCheckPortsNamesEachPortsFlagAndVariable(t *testing.T) {
	err := checkPorts([]namedPort{{"clickhouse-http", loopback, 0}})
	if err == nil || !strings.Contains(err.Error(), "-clickhouse-http-port or CLICKHOUSE_HTTP_PORT") {
		t.Fatalf("got %v, want an error naming -clickhouse-http-port and CLICKHOUSE_HTTP_PORT", err)
	}
}

func TestCheckPortsRefusesOutOfRange(t *testing.T) {
	for _, p := range []int{0, -1, 65536} {
		if err := checkPorts([]namedPort{{"persist", loopback, p}}); err == nil || !strings.Contains(err.Error(), "PERSIST_PORT") {
			t.Errorf("port %d: got %v, want an error naming PERSIST_PORT", p, err)
		}
	}
}

func TestRunRefusesAPortVariableThatIsNotANumber(t *testing.T) {
	t.Setenv("ROUTER_PORT", "80a")
	// Were the variable ignored, the bad -ingest-port would stop the run before it starts
	// anything, with an error that does not name ROUTER_PORT.
	err := run(context.Background(), []string{"-dir", t.TempDir(), "-ingest-port", "-1"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `ROUTER_PORT="80a"`) {
		t.Fatalf("got %v, want an error naming ROUTER_PORT", err)
	}
}
