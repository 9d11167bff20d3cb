package chtest

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustplane/trustplane/clickhouse/localserver"
)

func TestStartAnswersPingAndStops(t *testing.T) {
	s := Start(t)
	if err := localserver.Ping(context.Background(), s.Addr()); err != nil {
		t.Fatalf("ping %s: %v", s.Addr(), err)
	}
	if s.StartupTime() <= 0 {
		t.Fatalf("startup time not measured: %s", s.StartupTime())
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := localserver.Ping(context.Background(), s.Addr()); err == nil {
		t.Fatalf("server on %s still answers after Stop", s.Addr())
	}
}

func TestServersLiveUnderCHTEST_DIR(t *testing.T) {
	parent := t.TempDir()
	t.Setenv("CHTEST_DIR", parent)
	s := Start(t)
	if filepath.Dir(s.Config().Dir) != parent {
		t.Fatalf("server directory %s is not under CHTEST_DIR %s", s.Config().Dir, parent)
	}

	t.Setenv("CHTEST_DIR", filepath.Join(parent, "missing"))
	if _, err := tempDir(); err == nil || !strings.Contains(err.Error(), "CHTEST_DIR") {
		t.Fatalf("a missing CHTEST_DIR gave %v, want an error naming it", err)
	}
}
