package clickhouse

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ServerVersion returns SELECT version() of the server behind conn.
func ServerVersion(ctx context.Context, conn driver.Conn) (string, error) {
	var v string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return "", fmt.Errorf("clickhouse: server version: %w", err)
	}
	return v, nil
}

// Detect returns the features of the server behind conn. On servers where LowCardinality is
// still experimental (before 19.3) it is used only when the session has it switched on.
func Detect(ctx context.Context, conn driver.Conn) (Features, string, error) {
	v, err := ServerVersion(ctx, conn)
	if err != nil {
		return Features{}, "", err
	}
	f, err := FeaturesFor(v)
	if err != nil {
		return Features{}, v, err
	}
	if !f.LowCardinality {
		var on uint64
		err := conn.QueryRow(ctx,
			"SELECT count() FROM system.settings WHERE name = ? AND value = '1'",
			"allow_experimental_low_cardinality_type").Scan(&on)
		if err != nil {
			return Features{}, v, fmt.Errorf("clickhouse: read settings: %w", err)
		}
		f.LowCardinality = on > 0
	}
	return f, v, nil
}

// Migrate creates the database and schema_migrations if needed and applies, in order, every
// migration not yet recorded there. Every statement is idempotent (IF NOT EXISTS), so a run
// cut short is finished by the next one; a migration is recorded only after all its
// statements succeeded.
func Migrate(ctx context.Context, conn driver.Conn, opts Options) error {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	f, version, err := Detect(ctx, conn)
	if err != nil {
		return err
	}
	plan, err := Render(f, opts)
	if err != nil {
		return err
	}
	for _, stmt := range plan.Bootstrap {
		if err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("clickhouse: bootstrap: %w\n%s", err, stmt)
		}
	}
	applied, err := appliedVersions(ctx, conn, opts.Database)
	if err != nil {
		return err
	}
	for _, m := range plan.Migrations {
		if applied[m.Version] {
			continue
		}
		for _, stmt := range m.Statements {
			if err := conn.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("clickhouse: migration %04d_%s: %w\n%s", m.Version, m.Name, err, stmt)
			}
		}
		if err := recordMigration(ctx, conn, opts.Database, m); err != nil {
			return err
		}
		logger.Info("clickhouse migration applied", "version", m.Version, "name", m.Name,
			"server_version", version, "cluster", opts.Cluster)
	}
	return nil
}

func appliedVersions(ctx context.Context, conn driver.Conn, db string) (map[uint32]bool, error) {
	rows, err := conn.Query(ctx, "SELECT DISTINCT version FROM "+db+".schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("clickhouse: read schema_migrations: %w", err)
	}
	defer rows.Close()
	applied := map[uint32]bool{}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("clickhouse: read schema_migrations: %w", err)
		}
		applied[v] = true
	}
	return applied, rows.Err()
}

// recordMigration inserts as a batch: over the native protocol an INSERT ... VALUES query
// with inline values is not accepted by every server version.
func recordMigration(ctx context.Context, conn driver.Conn, db string, m Migration) error {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".schema_migrations (version, name, applied_at)")
	if err == nil {
		if err = b.Append(m.Version, m.Name, time.Now().UTC()); err == nil {
			err = b.Send()
		} else {
			_ = b.Abort()
		}
	}
	if err != nil {
		return fmt.Errorf("clickhouse: record migration %04d_%s: %w", m.Version, m.Name, err)
	}
	return nil
}
