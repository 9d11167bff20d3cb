package clickhouse

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/trustplane/trustplane/clickhouse/chtest"
)

// One server for the package; every test works in a database of its own.
var server *chtest.Server

func TestMain(m *testing.M) { os.Exit(chtest.RunMain(m, &server)) }

// openMigrated opens a store on a fresh database named after the test and migrates it.
func openMigrated(t testing.TB) *Store {
	t.Helper()
	ctx := context.Background()
	db := "t_" + strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name()))
	st, err := Open(ctx, Config{Addr: server.Addr(), Database: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := Migrate(ctx, st.Conn(), st.MigrateOptions()); err != nil {
		t.Fatal(err)
	}
	return st
}
