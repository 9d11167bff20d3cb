package localserver

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
)

// A server restarted on the same directory keeps its data, which the local run relies on.
func TestRestartKeepsData(t *testing.T) {
	ctx := context.Background()
	s, err := Start(ctx, Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	conn := open(t, s.Addr())
	if err := conn.Exec(ctx, "CREATE TABLE default.kept (n UInt64) ENGINE = MergeTree ORDER BY n"); err != nil {
		t.Fatal(err)
	}
	// 18.16 waits for data blocks after an INSERT query, so rows go in as a batch.
	b, err := conn.PrepareBatch(ctx, "INSERT INTO default.kept (n)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(uint64(42)); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	conn.Close() // an open connection delays the server's shutdown
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}

	s2, err := Start(ctx, s.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Stop() })
	if s2.Addr() != s.Addr() {
		t.Fatalf("restart moved the server from %s to %s", s.Addr(), s2.Addr())
	}
	var n uint64
	if err := open(t, s2.Addr()).QueryRow(ctx, "SELECT n FROM default.kept").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 42 {
		t.Fatalf("after restart n = %d, want 42", n)
	}
}

func TestMissingBinaryNamesMakeTarget(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Start(context.Background(), Config{Dir: t.TempDir()})
	if err != ErrNotInstalled {
		t.Fatalf("err = %v, want ErrNotInstalled", err)
	}
}

func open(t *testing.T, addr string) ch.Conn {
	t.Helper()
	conn, err := ch.Open(&ch.Options{Addr: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestCanceledStartReturns(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if s, err := Start(ctx, Config{Dir: t.TempDir()}); err == nil {
		s.Stop()
		t.Fatal("Start with a canceled context succeeded")
	}
}

func TestZooKeeperMissingJarsNamesMakeTarget(t *testing.T) {
	_, err := StartZooKeeper(context.Background(), ZooKeeperConfig{Dir: t.TempDir(), JarDir: t.TempDir()})
	if !errors.Is(err, ErrZooKeeperNotInstalled) || !strings.Contains(err.Error(), "make zookeeper") {
		t.Fatalf("err = %v, want ErrZooKeeperNotInstalled naming make zookeeper", err)
	}
}

// `make run` passes a directory relative to the repository; the server runs elsewhere.
func TestStartWithARelativeDirectory(t *testing.T) {
	t.Chdir(t.TempDir())
	s, err := Start(context.Background(), Config{Dir: filepath.Join("state", "clickhouse")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if !filepath.IsAbs(s.Config().Dir) {
		t.Fatalf("config dir %q is not absolute", s.Config().Dir)
	}
	if err := Ping(context.Background(), s.Addr()); err != nil {
		t.Fatal(err)
	}
}

// A paused server answers nothing, not even a ping, until resumed; a paused server stops.
func TestPauseStallsUntilResume(t *testing.T) {
	s, err := Start(context.Background(), Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	// Killed: the connection the paused ping left holds 18.16's graceful shutdown for 10 s.
	t.Cleanup(s.Kill)
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	// A stopped process never answers: the ping can only end by its own timeouts.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := Ping(ctx, s.Addr()); err == nil {
		t.Fatal("a paused server answered a ping")
	}
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := Ping(context.Background(), s.Addr()); err != nil {
		t.Fatalf("ping after Resume: %v", err)
	}

	paused, err := Start(context.Background(), Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := paused.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := paused.Stop(); err != nil {
		t.Fatal(err)
	}
	if ended, _ := paused.proc.exited(); !ended {
		t.Fatal("Stop returned with the paused server still running")
	}
	if err := paused.Resume(); err == nil {
		t.Fatal("Resume of a stopped server reported no error")
	}
}
