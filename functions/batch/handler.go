// Package batch is trustplane's scheduled work: a PingSource (or, in the local run, the same
// schedule) sends it a CloudEvent, and it applies each project's retention to the telemetry
// tables, their rollups, the rollups' days and the trace index: on current ClickHouse as one
// TTL rule per project in each table's TTL, on older servers by deleting the expired days
// with mutations. A run is idempotent: a TTL already right is not changed again, rows
// already deleted are not found again.
package batch

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/clickhouse"
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
	{"llm_calls_hourly", "toDate(hour)"}, {"llm_calls_models_hourly", "toDate(hour)"}, {"observations_hourly", "toDate(hour)"},
	{"findings_hourly", "toDate(hour)"},
	{"llm_calls_days", "day"}, {"llm_calls_models_days", "day"}, {"observations_days", "day"}, {"findings_days", "day"},
	{"trace_index", "day"},
}

// Retention applies rules to a ClickHouse database.
type Retention struct {
	sql     sqlRunner
	db      string
	cluster string
	rules   []Rule
	timeout time.Duration
	log     *slog.Logger
	deleted *prometheus.CounterVec
	runs    *prometheus.CounterVec
	changes *prometheus.CounterVec
	ttlRule *prometheus.GaugeVec
	expired *prometheus.GaugeVec
}

// NewRetention builds the retention job. reg may be nil.
func NewRetention(conn driver.Conn, db, cluster string, rules []Rule, timeout time.Duration, log *slog.Logger, reg prometheus.Registerer) *Retention {
	return newRetention(connRunner{conn}, db, cluster, rules, timeout, log, reg)
}

func newRetention(sql sqlRunner, db, cluster string, rules []Rule, timeout time.Duration, log *slog.Logger, reg prometheus.Registerer) *Retention {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "trustplane", Subsystem: "batch", Name: name, Help: help}
	}
	r := &Retention{sql: sql, db: db, cluster: cluster, rules: rules, timeout: timeout, log: log,
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts(opts("deleted_rows_total",
			"Rows deleted by retention mutations (servers without TTL rules), by table (stored rows: a row and its not yet merged copies count apart).")), []string{"table"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts(opts("runs_total", "Retention runs by outcome (ok, error).")), []string{"outcome"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts(opts("ttl_changes_total",
			"TTL changes retention made (MODIFY TTL or REMOVE TTL), by table.")), []string{"table"}),
		ttlRule: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("ttl_rules",
			"Per-project retention rules in the table's TTL after the last run (servers with TTL rules).")), []string{"table"}),
		expired: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("expired_rows",
			"Rows still stored past their project's retention, counted by the last run (stored rows: not yet merged copies count apart); on servers with TTL rules merges delete them.")), []string{"table"}),
	}
	if reg != nil {
		reg.MustRegister(r.deleted, r.runs, r.changes, r.ttlRule, r.expired)
	}
	return r
}

// Deletion is what one run deleted from one table of one project.
type Deletion struct {
	Tenant, Project, Table string
	Before                 time.Time // the first day kept
	Rows                   uint64
}

// Report is what one run did.
type Report struct {
	// Mode is "ttl" (the server keeps per-project TTL rules) or "mutations" (ClickHouse before
	// 21.8: deletions).
	Mode       string
	Deletions  []Deletion  // mutations
	TTLChanges []TTLChange // ttl: the tables whose TTL changed
	// Expired is, per table, the rows still stored past their project's retention at the end
	// of the run.
	Expired map[string]uint64
}

// Run applies the rules at now and reports what it did. On servers with TTL rules it keeps
// each table's TTL equal to the rules (ClickHouse's merges delete the expired days); on older
// servers it deletes the rows of the days before now - days (UTC) and waits for the
// deletions. Either way it then counts the rows still stored past retention.
func (r *Retention) Run(ctx context.Context, now time.Time) (Report, error) {
	rep, err := r.run(ctx, now)
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	r.runs.WithLabelValues(outcome).Inc()
	return rep, err
}

func (r *Retention) run(ctx context.Context, now time.Time) (Report, error) {
	rep := Report{Mode: "mutations", Expired: map[string]uint64{}}
	version, err := r.one(ctx, "SELECT version()")
	if err != nil {
		return rep, fmt.Errorf("batch: server version: %w", err)
	}
	f, err := clickhouse.FeaturesFor(version)
	if err != nil {
		return rep, err
	}
	existing, err := r.existingTables(ctx)
	if err != nil {
		return rep, err
	}
	if f.TTLRules {
		rep.Mode = "ttl"
		rep.TTLChanges, err = r.syncTTL(ctx, existing)
	} else {
		rep.Deletions, err = r.deleteExpired(ctx, existing, now)
	}
	if err != nil {
		return rep, err
	}
	return rep, r.countExpired(ctx, existing, now, rep.Expired)
}

// syncTTL makes every existing table's TTL hold exactly one rule per project of r.rules.
// The ALTER returns once the metadata changed; the server then applies the new TTL to the
// parts it has (materialize_ttl_after_modify, a mutation) and to new parts in its merges.
func (r *Retention) syncTTL(ctx context.Context, existing map[string]bool) ([]TTLChange, error) {
	engines, err := r.sql.Strings(ctx, "SELECT name, engine_full FROM system.tables WHERE database = "+quote(r.db))
	if err != nil {
		return nil, fmt.Errorf("batch: read table engines: %w", err)
	}
	engine := map[string]string{}
	for _, row := range engines {
		engine[row[0]] = row[1]
	}
	var out []TTLChange
	for _, t := range tables {
		if !existing[t.name] {
			continue
		}
		stored := t.name
		if r.cluster != "" {
			stored += "_local"
		}
		p, err := planTTL(r.db, r.cluster, t, engine[stored], r.rules)
		if err != nil {
			return out, err
		}
		r.ttlRule.WithLabelValues(t.name).Set(float64(len(p.After)))
		if p.Statement == "" {
			continue
		}
		if err := r.sql.Exec(ctx, p.Statement); err != nil {
			return out, fmt.Errorf("batch: set the TTL of %s: %w", t.name, err)
		}
		out = append(out, p)
		r.changes.WithLabelValues(t.name).Inc()
		r.log.Info("retention ttl changed", "table", t.name, "rules", ruleNames(p.After), "before", ruleNames(p.Before),
			"kept_elements", len(p.Kept), "remove", len(p.Kept)+len(p.After) == 0)
	}
	return out, nil
}

// deleteExpired deletes, for every rule and table, the rows of the days before the first
// day kept, with mutations, and waits for them.
func (r *Retention) deleteExpired(ctx context.Context, existing map[string]bool, now time.Time) ([]Deletion, error) {
	var out []Deletion
	for _, rule := range r.rules {
		keep := firstKept(now, rule)
		for _, t := range tables {
			if !existing[t.name] {
				continue
			}
			where := fmt.Sprintf("tenant_id = ? AND project_id = ? AND %s < toDate(?)", t.day)
			args := []any{rule.Tenant, rule.Project, keep.Format("2006-01-02")}
			n, err := r.count(ctx, "SELECT toString(count()) FROM "+r.db+"."+t.name+" WHERE "+where, args...)
			if err != nil {
				return out, fmt.Errorf("batch: count %s: %w", t.name, err)
			}
			if n == 0 {
				continue
			}
			target, onCluster := r.db+"."+t.name, ""
			if r.cluster != "" {
				target, onCluster = r.db+"."+t.name+"_local", " ON CLUSTER "+r.cluster
			}
			if err := r.sql.Exec(ctx, "ALTER TABLE "+target+onCluster+" DELETE WHERE "+where, args...); err != nil {
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

// countExpired sets the expired_rows gauge of every existing table and logs the tables that
// still hold such rows.
func (r *Retention) countExpired(ctx context.Context, existing map[string]bool, now time.Time, into map[string]uint64) error {
	for _, t := range tables {
		if !existing[t.name] {
			continue
		}
		var n uint64
		if len(r.rules) > 0 {
			var err error
			if n, err = r.count(ctx, expiredQuery(r.db, t, r.rules, now)); err != nil {
				return fmt.Errorf("batch: count expired rows of %s: %w", t.name, err)
			}
		}
		into[t.name] = n
		r.expired.WithLabelValues(t.name).Set(float64(n))
		if n > 0 {
			r.log.Info("retention rows past retention still stored", "table", t.name, "rows", n)
		}
	}
	return nil
}

func (r *Retention) existingTables(ctx context.Context) (map[string]bool, error) {
	rows, err := r.sql.Strings(ctx, "SELECT name FROM system.tables WHERE database = "+quote(r.db))
	if err != nil {
		return nil, fmt.Errorf("batch: list tables: %w", err)
	}
	out := map[string]bool{}
	for _, row := range rows {
		out[row[0]] = true
	}
	return out, nil
}

// one is the single String value a query answers.
func (r *Retention) one(ctx context.Context, query string, args ...any) (string, error) {
	rows, err := r.sql.Strings(ctx, query, args...)
	if err != nil {
		return "", err
	}
	if len(rows) != 1 || len(rows[0]) != 1 {
		return "", fmt.Errorf("%d rows where one value was expected", len(rows))
	}
	return rows[0][0], nil
}

// count is the number a query answers as its single String value.
func (r *Retention) count(ctx context.Context, query string, args ...any) (uint64, error) {
	s, err := r.one(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(s, 10, 64)
}

// waitForMutations waits until this server has no unfinished mutation in the database (in
// cluster mode, this server's shard).
func (r *Retention) waitForMutations(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	for {
		n, err := r.count(ctx, "SELECT toString(count()) FROM system.mutations WHERE database = ? AND is_done = 0", r.db)
		if err != nil {
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
		rep, err := r.Run(ctx, now())
		if err != nil {
			r.log.Error("retention failed", "error", err, "mode", rep.Mode, "deletions", len(rep.Deletions), "ttl_changes", len(rep.TTLChanges))
			return nil, runtime.Status(500, "retention failed: %v", err)
		}
		var expired uint64
		for _, n := range rep.Expired {
			expired += n
		}
		r.log.Info("retention run finished", "mode", rep.Mode, "deletions", len(rep.Deletions), "ttl_changes", len(rep.TTLChanges),
			"expired_rows", expired, "event_id", e.ID())
		return nil, nil
	}
}
