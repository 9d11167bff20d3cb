package redistest

import (
	"net"
	"testing"
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
