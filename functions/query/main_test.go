package query

import (
	"context"
	"os"
	"testing"

	"github.com/kelseyhightower/envconfig"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/clickhouse/chtest"
)

// Every test shares one ClickHouse 18.16 server; each test writes under tenants of its own.
var server *chtest.Server

func TestMain(m *testing.M) { os.Exit(chtest.RunMain(m, &server)) }

// store opens the writer (default user) with the schema migrated once.
func store(t testing.TB) *clickhouse.Store {
	t.Helper()
	s, err := clickhouse.Open(context.Background(), clickhouse.Config{Addr: server.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := clickhouse.Migrate(context.Background(), s.Conn(), s.MigrateOptions()); err != nil {
		t.Fatal(err)
	}
	return s
}

// testReader is a reader over the test server with the default limits.
func testReader(t testing.TB, s *clickhouse.Store) *reader {
	t.Helper()
	r := newReader(s.Conn(), clickhouse.DefaultDatabase, s.Features(), defaultLimits())
	if err := r.refreshFindings(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

// defaultLimits are Limits with the defaults of their tags (no QUERY_* variable is set in
// tests).
func defaultLimits() Limits {
	var l Limits
	if err := envconfig.Process("", &l); err != nil {
		panic(err)
	}
	return l
}
