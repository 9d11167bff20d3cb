// Package chtest starts a real clickhouse-server for tests: temporary directory, free ports,
// stopped on cleanup. A missing server binary fails the test with the make target to run.
package chtest

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/trustplane/trustplane/clickhouse/localserver"
)

// Server is a clickhouse-server started for a test.
type Server struct {
	*localserver.Server
}

// Start starts a server in t.TempDir() and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := localserver.Start(context.Background(), localserver.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("chtest: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	t.Logf("chtest: clickhouse-server on %s started in %s", s.Addr(), s.StartupTime())
	return &Server{s}
}

// StartMain is Start for TestMain: it returns the server and a function that stops it and
// removes its directory.
func StartMain() (*Server, func(), error) {
	dir, err := os.MkdirTemp("", "chtest-")
	if err != nil {
		return nil, nil, fmt.Errorf("chtest: %w", err)
	}
	s, err := localserver.Start(context.Background(), localserver.Config{Dir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("chtest: %w", err)
	}
	fmt.Fprintf(os.Stderr, "chtest: clickhouse-server on %s started in %s\n", s.Addr(), s.StartupTime())
	return &Server{s}, func() {
		_ = s.Stop()
		os.RemoveAll(dir)
	}, nil
}

// RunMain is a package's whole TestMain when every test shares one server: it starts the
// server, stores it in *server, runs the tests and stops the server. It returns the exit code
// for os.Exit; if the server cannot start it prints why and returns 1.
//
//	func TestMain(m *testing.M) { os.Exit(chtest.RunMain(m, &server)) }
func RunMain(m *testing.M, server **Server) int {
	s, stop, err := StartMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	*server = s
	return m.Run()
}
