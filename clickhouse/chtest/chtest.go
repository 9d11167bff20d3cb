// Package chtest starts a real clickhouse-server for tests: temporary directory, free ports,
// stopped on cleanup. A missing server binary fails the test with the make target to run.
//
// CHTEST_DIR, when set, names an existing directory to hold the servers' temporary
// directories instead of the system's, for example a tmpfs: ClickHouse creates and deletes
// many small files, and on an ext4 without a journal every file creation scans the inodes
// deleted in the last minute, which dominates the server's CPU time under a steady insert load.
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

// Start starts a server in a fresh temporary directory (under CHTEST_DIR when it is set) and
// stops it and removes the directory when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	dir, err := tempDir()
	if err != nil {
		t.Fatalf("chtest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s, err := localserver.Start(context.Background(), localserver.Config{Dir: dir})
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
	dir, err := tempDir()
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

// tempDir makes a fresh directory for one server, under CHTEST_DIR when it is set.
func tempDir() (string, error) {
	parent := os.Getenv("CHTEST_DIR")
	if parent != "" {
		if fi, err := os.Stat(parent); err != nil || !fi.IsDir() {
			return "", fmt.Errorf("CHTEST_DIR=%q is not an existing directory", parent)
		}
	}
	return os.MkdirTemp(parent, "chtest-")
}
