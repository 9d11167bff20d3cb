// Package batch is trustplane's scheduled work: a PingSource (or, in the local run, the same
// schedule) sends it a CloudEvent, and it applies each project's retention, deleting the rows
// older than the project's retention from the telemetry tables, their rollups and the rollups'
// days. A run is idempotent: rows already deleted are not found again.
package batch

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/functions/runtime"
)

// PingType is the type of the CloudEvents a PingSource sends.
const PingType = "dev.knative.sources.ping"

// table is one table retention applies to, and how its rows' day is read.
type table struct {
	name string
	day  string // the row's day (UTC), a Date expression
}

// tables are every table that holds a project's rows. Whole days go at once, in the raw
// tables, the hourly rollups and the days tables alike, so a rollup never counts a row the
// raw table lost, nor the reverse.
var tables = []table{
	{"traces", "toDate(timestamp)"}, {"observations", "toDate(start_time)"}, {"scores", "toDate(timestamp)"},
	{"llm_calls", "toDate(timestamp)"}, {"findings", "toDate(timestamp)"},
	{"llm_calls_hourly", "toDate(hour)"}, {"observations_hourly", "toDate(hour)"},
	{"llm_calls_days", "day"}, {"observations_days", "day"},
}

// Retention applies rules to a ClickHouse database.
type Retention struct {
	conn    driver.Conn
	db      string
	cluster string
	rules   []Rule
	timeout time.Duration
	log     *slog.Logger
	deleted *prometheus.CounterVec
	runs    *prometheus.CounterVec
}

// NewRetention builds the retention job. reg may be nil.
func NewRetention(conn driver.Conn, db, cluster string, rules []Rule, timeout time.Duration, log *slog.Logger, reg prometheus.Registerer) *Retention {
	r := &Retention{conn: conn, db: db, cluster: cluster, rules: rules, timeout: timeout, log: log,
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "trustplane", Subsystem: "batch", Name: "deleted_rows_total",
			Help: "Rows deleted by retention, by table (stored rows: a row and its not yet merged copies count apart)."}, []string{"table"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "trustplane", Subsystem: "batch", Name: "runs_total",
			Help: "Retention runs by outcome (ok, error)."}, []string{"outcome"}),
	}
	if reg != nil {
		reg.MustRegister(r.deleted, r.runs)
	}
	return r
}

// Deletion is what one run deleted from one table of one project.
type Deletion struct {
	Tenant, Project, Table string
	Before                 time.Time // the first day kept
	Rows                   uint64
}

// Run deletes, for every rule, the rows of the days before now - days (UTC), waits for the
// deletions to finish, and reports them.
func (r *Retention) Run(ctx context.Context, now time.Time) ([]Deletion, error) {
	ds, err := r.run(ctx, now)
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	r.runs.WithLabelValues(outcome).Inc()
	return ds, err
}

func (r *Retention) run(ctx context.Context, now time.Time) ([]Deletion, error) {
	existing, err := r.existingTables(ctx)
	if err != nil {
		return nil, err
	}
	var out []Deletion
	for _, rule := range r.rules {
		keep := now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -rule.Days)
		for _, t := range tables {
			if !existing[t.name] {
				continue
			}
			var n uint64
			where := fmt.Sprintf("tenant_id = ? AND project_id = ? AND %s < toDate(?)", t.day)
			args := []any{rule.Tenant, rule.Project, keep.Format("2006-01-02")}
			if err := r.conn.QueryRow(ctx, "SELECT count() FROM "+r.db+"."+t.name+" WHERE "+where, args...).Scan(&n); err != nil {
				return out, fmt.Errorf("batch: count %s: %w", t.name, err)
			}
			if n == 0 {
				continue
			}
			target, onCluster := r.db+"."+t.name, ""
			if r.cluster != "" {
				target, onCluster = r.db+"."+t.name+"_local", " ON CLUSTER "+r.cluster
			}
			if err := r.conn.Exec(ctx, "ALTER TABLE "+target+onCluster+" DELETE WHERE "+where, args...); err != nil {
				return out, fmt.Errorf("batch: delete from %s: %w", t.name, err)
			}
			d := Deletion{Tenant: rule.Tenant, Project: rule.Project, Table: t.name, Before: keep, Rows: n}
			out = append(out, d)
			r.deleted.WithLabelValues(t.name).Add(float64(n))
			r.log.Info("retention deleted rows", "tenant", d.Tenant, "project", d.Project, "table", d.Table,
				"before", d.Before.Format("2006-01-02"), "rows", d.Rows, "days", rule.Days)
		}
	}
	if len(out) > 0 {
		return out, r.waitForMutations(ctx)
	}
	return out, nil
}

func (r *Retention) existingTables(ctx context.Context) (map[string]bool, error) {
	rows, err := r.conn.Query(ctx, "SELECT name FROM system.tables WHERE database = ?", r.db)
	if err != nil {
		return nil, fmt.Errorf("batch: list tables: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out[n] = true
	}
	return out, rows.Err()
}

// waitForMutations waits until this server has no unfinished mutation in the database (in
// cluster mode, this server's shard).
func (r *Retention) waitForMutations(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	for {
		var n uint64
		if err := r.conn.QueryRow(ctx, "SELECT count() FROM system.mutations WHERE database = ? AND is_done = 0", r.db).Scan(&n); err != nil {
			return fmt.Errorf("batch: wait for deletions: %w", err)
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("batch: %d deletions still running after %s", n, r.timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Handler answers the scheduled event: 200 once the run finished, 500 (the source retries
// on its next tick) if it failed.
func (r *Retention) Handler(now func() time.Time) runtime.ReceiveFunc {
	return func(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, cloudevents.Result) {
		if e.Type() != PingType {
			return nil, runtime.Status(400, "batch takes %s events, got %s", PingType, e.Type())
		}
		ds, err := r.Run(ctx, now())
		if err != nil {
			r.log.Error("retention failed", "error", err, "deletions", len(ds))
			return nil, runtime.Status(500, "retention failed: %v", err)
		}
		r.log.Info("retention run finished", "deletions", len(ds), "event_id", e.ID())
		return nil, nil
	}
}
