package chtest

import (
	"context"
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
