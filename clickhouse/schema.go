// Package clickhouse holds trustplane's ClickHouse schema, its migrations, and the writer of
// telemetry rows (traces, observations, scores, llm calls, findings). Tests read rows back with
// chtest/readback.
//
// One migration source serves every server: the templates in migrations/ are rendered for the
// features of the server they run on (see Features) and for single-node or cluster mode.
package clickhouse

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
)

//go:embed migrations/*.tmpl
var migrationFS embed.FS

// DefaultDatabase is the database the tables live in unless configured otherwise.
const DefaultDatabase = "trustplane"

// Options say where and how the schema is created.
type Options struct {
	// Database defaults to DefaultDatabase.
	Database string
	// Cluster is the remote_servers cluster name; empty means a single node. With a cluster,
	// DDL runs ON CLUSTER, data lives in replicated <table>_local tables, and <table> is a
	// Distributed table over them.
	Cluster string
	// RetentionDays adds a TTL that drops rows older than this many days; 0 keeps them
	// forever. It needs a server with TTL support.
	RetentionDays int
	// Logger receives one line per applied migration; nil discards them.
	Logger *slog.Logger
}

// RollupQuantiles are the latency quantile levels the rollup tables keep (quantilesTiming
// states); a reader asks for the same levels and picks one.
var RollupQuantiles = []float64{0.5, 0.75, 0.9, 0.95, 0.99}

const rollupQuantileList = "0.5, 0.75, 0.9, 0.95, 0.99"

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkIdent accepts names that are safe to put into SQL unquoted: database and cluster names
// are identifiers, not values, so they cannot be bound with ?.
func checkIdent(what, name string) error {
	if !identRE.MatchString(name) {
		return fmt.Errorf("%s %q must match %s", what, name, identRE)
	}
	return nil
}

func (o Options) withDefaults() (Options, error) {
	if o.Database == "" {
		o.Database = DefaultDatabase
	}
	var errs []error
	if err := checkIdent("database", o.Database); err != nil {
		errs = append(errs, err)
	}
	if o.Cluster != "" {
		if err := checkIdent("cluster", o.Cluster); err != nil {
			errs = append(errs, err)
		}
	}
	if o.RetentionDays < 0 {
		errs = append(errs, fmt.Errorf("retention days must not be negative, got %d", o.RetentionDays))
	}
	return o, errors.Join(errs...)
}

// Features are the server capabilities the schema adapts to.
type Features struct {
	DateTime64     bool // DateTime64(3) time columns (20.1+); else DateTime, whole seconds
	Codecs         bool // CODEC(ZSTD(3)) on big text columns (19.1+)
	LowCardinality bool // LowCardinality(String) (19.3+, or older with the experimental setting on)
	TTL            bool // table TTL for retention (19.6+)
	// TTLRules: TTL elements with DELETE WHERE (20.5+), ALTER TABLE ... MODIFY TTL and REMOVE
	// TTL, which batch uses to keep one TTL rule per project. Assumed from 21.8 (the first LTS
	// release with all of them); proven on 26.9 (chDB) only.
	TTLRules bool
}

// FeaturesFor derives the features from a version string as returned by SELECT version(),
// e.g. "18.16.1" or "24.3.2.23".
func FeaturesFor(version string) (Features, error) {
	major, minor, err := parseVersion(version)
	if err != nil {
		return Features{}, err
	}
	atLeast := func(ma, mi int) bool { return major > ma || major == ma && minor >= mi }
	return Features{
		DateTime64: atLeast(20, 1),
		Codecs:     atLeast(19, 1),
		// 19.3 removed allow_experimental_low_cardinality_type; before it the type needs
		// the setting, which Detect reads from the session.
		LowCardinality: atLeast(19, 3),
		TTL:            atLeast(19, 6),
		TTLRules:       atLeast(21, 8),
	}, nil
}

func parseVersion(v string) (major, minor int, err error) {
	parts := strings.SplitN(strings.TrimSpace(v), ".", 3)
	if len(parts) < 2 {
		return 0, 0, fmt.Errorf("clickhouse: cannot parse server version %q", v)
	}
	if major, err = strconv.Atoi(parts[0]); err == nil {
		minor, err = strconv.Atoi(parts[1])
	}
	if err != nil {
		return 0, 0, fmt.Errorf("clickhouse: cannot parse server version %q", v)
	}
	return major, minor, nil
}

// Migration is one numbered schema step, rendered into its statements.
type Migration struct {
	Version    uint32
	Name       string
	Statements []string
}

// Plan is the rendered schema: the bootstrap statements (database and schema_migrations,
// always run) and the numbered migrations in order.
type Plan struct {
	Bootstrap  []string
	Migrations []Migration
}

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql\.tmpl$`)

// Render renders the schema for a server with features f.
func Render(f Features, opts Options) (Plan, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return Plan{}, err
	}
	if opts.RetentionDays > 0 && !f.TTL {
		return Plan{}, fmt.Errorf("clickhouse: retention of %d days needs TTL support (ClickHouse 19.6+); this server has none", opts.RetentionDays)
	}
	tmpl, err := template.New("").Funcs(templateFuncs(f, opts)).ParseFS(migrationFS, "migrations/*.tmpl")
	if err != nil {
		return Plan{}, fmt.Errorf("clickhouse: parse migrations: %w", err)
	}
	var p Plan
	if p.Bootstrap, err = renderStatements(tmpl, "bootstrap.sql.tmpl"); err != nil {
		return Plan{}, err
	}
	names, err := fs.Glob(migrationFS, "migrations/[0-9]*.sql.tmpl")
	if err != nil {
		return Plan{}, err
	}
	sort.Strings(names)
	for _, path := range names {
		base := path[len("migrations/"):]
		m := migrationName.FindStringSubmatch(base)
		if m == nil {
			return Plan{}, fmt.Errorf("clickhouse: migration file %q is not named NNNN_name.sql.tmpl", base)
		}
		v, _ := strconv.ParseUint(m[1], 10, 32)
		if n := len(p.Migrations); n > 0 && p.Migrations[n-1].Version == uint32(v) {
			return Plan{}, fmt.Errorf("clickhouse: two migrations numbered %d", v)
		}
		stmts, err := renderStatements(tmpl, base)
		if err != nil {
			return Plan{}, err
		}
		p.Migrations = append(p.Migrations, Migration{Version: uint32(v), Name: m[2], Statements: stmts})
	}
	return p, nil
}

// statementEnd is a semicolon ending a line; the templates put one after every statement.
var statementEnd = regexp.MustCompile(`;[ \t]*(\n|$)`)

func renderStatements(tmpl *template.Template, name string) ([]string, error) {
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, name, nil); err != nil {
		return nil, fmt.Errorf("clickhouse: render %s: %w", name, err)
	}
	var out []string
	for _, s := range statementEnd.Split(buf.String(), -1) {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// templateFuncs are the words the migration templates use; everything that differs between
// servers and modes is decided here, so the templates read like plain DDL.
func templateFuncs(f Features, o Options) template.FuncMap {
	clustered := o.Cluster != ""
	return template.FuncMap{
		"db": func() string { return o.Database },
		"onCluster": func() string {
			if clustered {
				return " ON CLUSTER " + o.Cluster
			}
			return ""
		},
		// table is where rows are stored: the table itself, or its _local shard table.
		"table": func(t string) string {
			if clustered {
				return o.Database + "." + t + "_local"
			}
			return o.Database + "." + t
		},
		"engine": func(t string) string {
			if clustered {
				return fmt.Sprintf("ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/%s/%s', '{replica}', version)", o.Database, t)
			}
			return "ReplacingMergeTree(version)"
		},
		// One schema_migrations for the whole cluster: a single ZooKeeper path, and replica
		// names made unique across shards.
		"migrationsEngine": func() string {
			if clustered {
				return fmt.Sprintf("ReplicatedReplacingMergeTree('/clickhouse/tables/all/%s/schema_migrations', '{shard}-{replica}')", o.Database)
			}
			return "ReplacingMergeTree()"
		},
		// distributed creates the cluster-wide table over the _local tables. The sharding key
		// keeps a trace's rows, and every redelivered copy of a row, on one shard, where
		// ReplacingMergeTree can collapse them.
		"distributed": func(t, shardingKey string) string {
			if !clustered {
				return ""
			}
			return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %[1]s.%[2]s ON CLUSTER %[3]s AS %[1]s.%[2]s_local\nENGINE = Distributed(%[3]s, %[1]s, %[2]s_local, %[4]s)",
				o.Database, t, o.Cluster, shardingKey)
		},
		"time": func() string {
			if f.DateTime64 {
				return "DateTime64(3, 'UTC')"
			}
			return "DateTime('UTC')"
		},
		"lc": func() string {
			if f.LowCardinality {
				return "LowCardinality(String)"
			}
			return "String"
		},
		"zstd": func() string {
			if f.Codecs {
				return " CODEC(ZSTD(3))"
			}
			return ""
		},
		// aggEngine is the engine of a rollup table.
		"aggEngine": func(t string) string {
			if clustered {
				return fmt.Sprintf("ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/%s/%s', '{replica}')", o.Database, t)
			}
			return "AggregatingMergeTree()"
		},
		// indexEngine keeps one row per key, whatever version.
		"indexEngine": func(t string) string {
			if clustered {
				return fmt.Sprintf("ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/%s/%s', '{replica}')", o.Database, t)
			}
			return "ReplacingMergeTree()"
		},
		// view names a materialized view; in cluster mode every server has its own over its
		// _local table.
		"view": func(name string) string { return o.Database + "." + name },
		// source is the table a rollup SELECT reads: the shard's own rows for a view, every
		// shard's for the backfill.
		"source": func(use, t string) (string, error) {
			switch use {
			case "view":
				if clustered {
					return o.Database + "." + t + "_local", nil
				}
				return o.Database + "." + t, nil
			case "backfill":
				return o.Database + "." + t, nil
			}
			return "", fmt.Errorf("source: use %q is neither view nor backfill", use)
		},
		// backfillTarget is where the backfill inserts: in cluster mode the Distributed
		// table, so rows reach every shard.
		"backfillTarget": func(t string) string { return o.Database + "." + t },
		"split":          strings.Fields,
		// q is the latency quantile function with a combinator suffix ("", "If", "State",
		// "IfState"); its levels are RollupQuantiles.
		"q": func(suffix string) string { return "quantilesTiming" + suffix + "(" + rollupQuantileList + ")" },
		// nanos and micros turn a Float64 column into an integer that sums the same in any
		// order.
		"nanos":  func(col string) string { return "toUInt64(round(" + col + " * 1000000000))" },
		"micros": func(col string) string { return "toUInt64(round(" + col + " * 1000))" },
		// millionths does the same for a value in [0, 1], such as a finding's score.
		"millionths": func(col string) string { return "toUInt64(round(" + col + " * 1000000))" },
		// durationMs is end - start in milliseconds, as Float64.
		"durationMs": func(start, end string) string {
			if f.DateTime64 {
				return fmt.Sprintf("toFloat64(toUnixTimestamp64Milli(%s) - toUnixTimestamp64Milli(%s))", end, start)
			}
			return fmt.Sprintf("toFloat64((toInt64(toUInt32(%s)) - toInt64(toUInt32(%s))) * 1000)", end, start)
		},
		"ttl": func(col string) string {
			if o.RetentionDays == 0 {
				return ""
			}
			return fmt.Sprintf("TTL toDateTime(%s) + toIntervalDay(%d)", col, o.RetentionDays)
		},
	}
}
