package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/trustplane/trustplane/clickhouse/chtest"
)

func TestMigrateTwiceAppliesOnce(t *testing.T) {
	srv := chtest.Start(t)
	env := map[string]string{"CLICKHOUSE_ADDR": srv.Addr(), "CLICKHOUSE_DATABASE": "cmdtest"}
	var first, second bytes.Buffer
	if err := run(context.Background(), nil, func(k string) string { return env[k] }, &first, &first); err != nil {
		t.Fatalf("first run: %v\n%s", err, first.String())
	}
	if !strings.Contains(first.String(), `"name":"traces"`) {
		t.Errorf("first run did not report applying traces:\n%s", first.String())
	}
	if err := run(context.Background(), nil, func(k string) string { return env[k] }, &second, &second); err != nil {
		t.Fatalf("second run: %v\n%s", err, second.String())
	}
	if strings.Contains(second.String(), "migration applied") {
		t.Errorf("second run applied migrations again:\n%s", second.String())
	}
	if !strings.Contains(second.String(), "schema up to date") {
		t.Errorf("second run did not finish:\n%s", second.String())
	}
}

func TestPrintClusterDDL(t *testing.T) {
	var out bytes.Buffer
	args := []string{"-print", "-cluster", "main", "-server-version", "24.3"}
	if err := run(context.Background(), args, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"ON CLUSTER main", "Distributed(main, trustplane, traces_local", "DateTime64(3, 'UTC')"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("printed DDL lacks %q", s)
		}
	}
}

func TestBadInput(t *testing.T) {
	env := map[string]string{"CLICKHOUSE_RETENTION_DAYS": "ten"}
	if err := run(context.Background(), nil, func(k string) string { return env[k] }, &bytes.Buffer{}, &bytes.Buffer{}); err == nil ||
		!strings.Contains(err.Error(), "CLICKHOUSE_RETENTION_DAYS") {
		t.Errorf("bad retention: err = %v", err)
	}
	if err := run(context.Background(), []string{"-database", "a-b"}, func(string) string { return "" }, &bytes.Buffer{}, &bytes.Buffer{}); err == nil ||
		!strings.Contains(err.Error(), "database") {
		t.Errorf("bad database: err = %v", err)
	}
}
