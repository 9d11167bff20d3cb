package redistest

import (
	"bufio"
	"net"
	"testing"
	"time"
)

func TestStartAndStop(t *testing.T) {
	s, err := StartIn(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.waitReady(0); err != nil && s.waitReady(1e9) != nil {
		t.Fatalf("not answering: %v", err)
	}
	s.Stop()
	if conn, err := net.Dial("tcp", s.Addr()); err == nil {
		conn.Close()
		t.Fatal("still listening after Stop")
	}
}

func TestMissingBinaryNamesTheMakeTarget(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := StartIn(t.TempDir())
	if err == nil || err.Error() != "redis-server is not installed: run `make redis-server`" {
		t.Fatalf("err = %v", err)
	}
}

// A paused server accepts connections but does not answer; resumed, it answers again. A
// killed one refuses connections; restarted, it listens on the same port.
func TestPauseResumeKillRestart(t *testing.T) {
	s := Start(t)
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatalf("a paused server's port refused a connection: %v", err)
	}
	// Only keeps a regression from hanging the test: a paused server never answers.
	_ = conn.SetDeadline(time.Now().Add(200 * time.Millisecond))
	_, _ = conn.Write([]byte("PING\r\n"))
	if _, err := bufio.NewReader(conn).ReadString('\n'); err == nil {
		t.Fatal("a paused server answered")
	}
	conn.Close()
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := s.waitReady(30 * time.Second); err != nil {
		t.Fatalf("not answering after Resume: %v", err)
	}
	s.Stop()
	if conn, err := net.Dial("tcp", s.Addr()); err == nil {
		conn.Close()
		t.Fatal("still listening after Stop")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := s.waitReady(0); err != nil && s.waitReady(30*time.Second) != nil {
		t.Fatalf("not answering after Restart: %v", err)
	}
}
