// Command migrate applies trustplane's ClickHouse migrations and exits. Re-running it applies
// nothing new. With -print it writes the DDL for a given server version instead of connecting,
// which shows what a cluster would get.
//
// Every flag defaults to its environment variable: CLICKHOUSE_ADDR, CLICKHOUSE_DATABASE,
// CLICKHOUSE_USER, CLICKHOUSE_CLUSTER (empty = single node), CLICKHOUSE_RETENTION_DAYS. The
// password is read from CLICKHOUSE_PASSWORD only, so it never shows in a process list.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/functions/runtime"
)

func main() {
	runtime.Main("migrate", func(ctx context.Context) error {
		return run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	})
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	retention, err := strconv.Atoi(env("CLICKHOUSE_RETENTION_DAYS", "0"))
	if err != nil {
		return fmt.Errorf("CLICKHOUSE_RETENTION_DAYS must be a whole number of days, got %q", getenv("CLICKHOUSE_RETENTION_DAYS"))
	}
	cfg := clickhouse.Config{Password: getenv("CLICKHOUSE_PASSWORD")}
	opts := clickhouse.Options{Logger: runtime.NewLogger("migrate", "info", stderr)}
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Addr, "addr", env("CLICKHOUSE_ADDR", "127.0.0.1:9000"), "native protocol address(es), host:port[,host:port] (CLICKHOUSE_ADDR)")
	fs.StringVar(&cfg.Database, "database", env("CLICKHOUSE_DATABASE", clickhouse.DefaultDatabase), "database (CLICKHOUSE_DATABASE)")
	fs.StringVar(&cfg.User, "user", env("CLICKHOUSE_USER", "default"), "user (CLICKHOUSE_USER)")
	fs.StringVar(&cfg.Cluster, "cluster", getenv("CLICKHOUSE_CLUSTER"), "cluster name; empty for a single node (CLICKHOUSE_CLUSTER)")
	fs.IntVar(&opts.RetentionDays, "retention-days", retention, "drop rows older than this many days; 0 keeps them (CLICKHOUSE_RETENTION_DAYS)")
	fs.DurationVar(&cfg.DialTimeout, "dial-timeout", 5*time.Second, "connect timeout")
	timeout := fs.Duration("timeout", 5*time.Minute, "overall time limit")
	printDDL := fs.Bool("print", false, "print the DDL for -server-version and exit without connecting")
	serverVersion := fs.String("server-version", "24.8", "server version the DDL is printed for (with -print)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	opts.Database, opts.Cluster = cfg.Database, cfg.Cluster

	if *printDDL {
		f, err := clickhouse.FeaturesFor(*serverVersion)
		if err != nil {
			return err
		}
		plan, err := clickhouse.Render(f, opts)
		if err != nil {
			return err
		}
		var b strings.Builder
		for _, stmt := range plan.Bootstrap {
			fmt.Fprintf(&b, "%s;\n\n", stmt)
		}
		for _, m := range plan.Migrations {
			fmt.Fprintf(&b, "-- %04d_%s\n", m.Version, m.Name)
			for _, stmt := range m.Statements {
				fmt.Fprintf(&b, "%s;\n\n", stmt)
			}
		}
		_, err = io.WriteString(stdout, b.String())
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	st, err := clickhouse.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := clickhouse.Migrate(ctx, st.Conn(), opts); err != nil {
		return err
	}
	opts.Logger.Info("clickhouse schema up to date", "addr", cfg.Addr, "database", cfg.Database,
		"cluster", cfg.Cluster, "server_version", st.ServerVersion())
	return nil
}
