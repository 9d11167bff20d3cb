package clickhouse

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Writer stores batches of telemetry rows.
type Writer interface {
	Write(ctx context.Context, b Batch) error
}

// Config says how to reach ClickHouse.
type Config struct {
	// Addr is one or more native-protocol addresses, host:port, separated by commas.
	Addr     string
	Database string // default DefaultDatabase
	User     string // default "default"
	Password string
	// Cluster is the remote_servers cluster name when the tables are Distributed; empty for a
	// single node.
	Cluster      string
	DialTimeout  time.Duration // default 5s
	MaxOpenConns int           // default 10
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.Addr) == "" {
		errs = append(errs, errors.New("clickhouse address is required"))
	}
	if _, err := (Options{Database: c.Database, Cluster: c.Cluster}).withDefaults(); err != nil {
		errs = append(errs, err)
	}
	if c.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("dial timeout must not be negative, got %s", c.DialTimeout))
	}
	if c.MaxOpenConns < 0 {
		errs = append(errs, fmt.Errorf("max open connections must not be negative, got %d", c.MaxOpenConns))
	}
	return errors.Join(errs...)
}

// Store writes telemetry rows over one native connection pool.
type Store struct {
	conn     driver.Conn
	db       string
	cluster  string
	version  string
	features Features
}

var _ Writer = (*Store)(nil)

// Open connects, pings and reads the server version. The database need not exist yet (Migrate
// creates it): the connection uses the server's default database and every query names its
// tables in full.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	if cfg.Database == "" {
		cfg.Database = DefaultDatabase
	}
	if cfg.User == "" {
		cfg.User = "default"
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.MaxOpenConns == 0 {
		cfg.MaxOpenConns = 10
	}
	var addrs []string
	for _, a := range strings.Split(cfg.Addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	conn, err := ch.Open(&ch.Options{
		Addr:         addrs,
		Auth:         ch.Auth{Username: cfg.User, Password: cfg.Password},
		DialTimeout:  cfg.DialTimeout,
		MaxOpenConns: cfg.MaxOpenConns,
		MaxIdleConns: cfg.MaxOpenConns,
		Compression:  &ch.Compression{Method: ch.CompressionLZ4},
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse: open %s: %w", cfg.Addr, err)
	}
	s, err := NewStore(ctx, conn, cfg.Database, cfg.Cluster)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

// NewStore wraps an open connection. database and cluster are as in Config.
func NewStore(ctx context.Context, conn driver.Conn, database, cluster string) (*Store, error) {
	opts, err := Options{Database: database, Cluster: cluster}.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	if err := conn.Ping(ctx); err != nil {
		return nil, fmt.Errorf("clickhouse: ping: %w", err)
	}
	f, v, err := Detect(ctx, conn)
	if err != nil {
		return nil, err
	}
	return &Store{conn: conn, db: opts.Database, cluster: opts.Cluster, version: v, features: f}, nil
}

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error { return s.conn.Ping(ctx) }

// Close closes the connection pool.
func (s *Store) Close() error { return s.conn.Close() }

// Conn is the underlying connection, for Migrate and for queries this package does not offer.
func (s *Store) Conn() driver.Conn { return s.conn }

// ServerVersion is the server's version() as read at Open.
func (s *Store) ServerVersion() string { return s.version }

// Features are the server features detected at Open.
func (s *Store) Features() Features { return s.features }

// MigrateOptions are the Options matching this store's database and cluster.
func (s *Store) MigrateOptions() Options { return Options{Database: s.db, Cluster: s.cluster} }

// Write validates the whole batch, then sends one INSERT per non-empty table (traces,
// observations, scores, llm_calls, findings, in that order) and stops at the first failure.
//
// Each INSERT goes to the server as one block, which ClickHouse stores atomically per
// partition (month): a table's rows are either all stored or, if they span months and the
// insert fails half way, stored for some months only. Tables are not atomic with each other.
// On any error the caller retries the whole batch: rows already stored come back as
// duplicates with the same key, which ReplacingMergeTree collapses (keeping the highest
// version), and readers use FINAL, so a retried batch never counts twice.
func (s *Store) Write(ctx context.Context, b Batch) error {
	if err := b.Validate(); err != nil {
		return fmt.Errorf("clickhouse: invalid batch: %w", err)
	}
	if s.cluster != "" {
		// Wait for the shards to store the rows instead of queueing them on this node, so
		// success means stored.
		ctx = ch.Context(ctx, ch.WithSettings(ch.Settings{"insert_distributed_sync": 1}))
	}
	now := uint64(time.Now().UnixMilli())
	if err := insert(ctx, s, TableTraces, traceColumns, b.Traces, func(t *Trace) time.Time { return t.Timestamp },
		func(t *Trace) []any { return t.values(now) }); err != nil {
		return err
	}
	if err := insert(ctx, s, TableObservations, observationColumns, b.Observations, func(o *Observation) time.Time { return o.StartTime },
		func(o *Observation) []any { return o.values(now) }); err != nil {
		return err
	}
	if err := insert(ctx, s, TableScores, scoreColumns, b.Scores, func(sc *Score) time.Time { return sc.Timestamp },
		func(sc *Score) []any { return sc.values(now) }); err != nil {
		return err
	}
	if err := s.writeLLMCalls(ctx, b.LLMCalls, now); err != nil {
		return err
	}
	return s.writeFindings(ctx, b.Findings, now)
}

// maxPartitionsPerInsert is current ClickHouse's default max_partitions_per_insert_block: an
// insert whose rows fall in more monthly partitions is refused whole. The rows of many tenants
// share an insert (group commit), so one tenant's events spread over many months would fail
// everyone's rows with them, on every retry; such rows are sent in several inserts instead.
const maxPartitionsPerInsert = 100

// insert writes rows, whose partition (toYYYYMM of a time column) partitionTime gives, in as
// few inserts as keep each within maxPartitionsPerInsert months.
func insert[T any](ctx context.Context, s *Store, table Table, columns []string, rows []T, partitionTime func(*T) time.Time, values func(*T) []any) error {
	for _, part := range byPartitions(rows, partitionTime, maxPartitionsPerInsert) {
		if err := insertRows(ctx, s, table, columns, part, values); err != nil {
			return err
		}
	}
	return nil
}

// byPartitions returns rows as they are when they span at most limit months (the usual case,
// decided without allocating), else sorted by month and cut into runs of at most limit months.
func byPartitions[T any](rows []T, partitionTime func(*T) time.Time, limit int) [][]T {
	month := func(r *T) int {
		t := partitionTime(r).UTC()
		return t.Year()*12 + int(t.Month()) - 1
	}
	if len(rows) == 0 {
		return nil
	}
	lo, hi := month(&rows[0]), month(&rows[0])
	for i := range rows {
		m := month(&rows[i])
		lo, hi = min(lo, m), max(hi, m)
	}
	if hi-lo < limit {
		return [][]T{rows}
	}
	sorted := slices.Clone(rows)
	slices.SortStableFunc(sorted, func(a, b T) int { return cmp.Compare(month(&a), month(&b)) })
	var out [][]T
	start, months := 0, 0
	for i := range sorted {
		if i == 0 || month(&sorted[i]) != month(&sorted[i-1]) {
			if months == limit {
				out = append(out, sorted[start:i])
				start, months = i, 0
			}
			months++
		}
	}
	return append(out, sorted[start:])
}

// insertRows names the columns: without the list some servers (18.x) accept a batch with no
// columns at all.
func insertRows[T any](ctx context.Context, s *Store, table Table, columns []string, rows []T, values func(*T) []any) error {
	if len(rows) == 0 {
		return nil
	}
	query := fmt.Sprintf("INSERT INTO %s.%s (%s)", s.db, table, strings.Join(columns, ", "))
	batch, err := s.conn.PrepareBatch(ctx, query)
	if err != nil {
		return fmt.Errorf("clickhouse: insert %s: %w", table, err)
	}
	for i := range rows {
		if err := batch.Append(values(&rows[i])...); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("clickhouse: insert %s row %d: %w", table, i, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("clickhouse: insert %d rows into %s: %w", len(rows), table, err)
	}
	return nil
}

// Table names a telemetry table. Only these constants are accepted where a table is chosen
// at run time, so no caller input ever becomes SQL.
type Table string

// The telemetry tables.
const (
	TableTraces       Table = "traces"
	TableObservations Table = "observations"
	TableScores       Table = "scores"
)

// Columns are the columns a Store writes to t, in the order it writes them; nil for a table
// that is not one of the constants.
func (t Table) Columns() []string {
	switch t {
	case TableTraces:
		return slices.Clone(traceColumns)
	case TableObservations:
		return slices.Clone(observationColumns)
	case TableScores:
		return slices.Clone(scoreColumns)
	case TableLLMCalls:
		return slices.Clone(llmCallColumns)
	case TableFindings:
		return slices.Clone(findingColumns)
	}
	return nil
}
