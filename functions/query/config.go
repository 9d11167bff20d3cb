package query

import (
	"errors"
	"fmt"
	"time"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/functions/router/limits"
	"github.com/trustplane/trustplane/functions/runtime"
)

// Config is query's configuration, read from the environment. Its defaults are the tags.
type Config struct {
	runtime.Common
	authclient.ClientConfig
	Limits

	ClickHouseAddr     string `envconfig:"CLICKHOUSE_ADDR" required:"true"`
	ClickHouseDatabase string `envconfig:"CLICKHOUSE_DATABASE" default:"trustplane"`
	// ClickHouseUser is the read-only user (profile readonly=2: reads, and the per-query
	// limits below, nothing else).
	ClickHouseUser     string `envconfig:"CLICKHOUSE_USER" default:"query"`
	ClickHousePassword string `envconfig:"CLICKHOUSE_PASSWORD"`
	ClickHouseCluster  string `envconfig:"CLICKHOUSE_CLUSTER"`

	// RedisURL (redis://[user:password@]host:port/db) shares the per-key rate limit between
	// replicas, in the Redis router keeps its limits in (query's buckets have keys of their own).
	// Empty: each replica keeps its own buckets in memory, right for a single replica.
	RedisURL string `envconfig:"REDIS_URL"`
	// LimitsTimeout bounds the time a request waits on Redis for its rate limit; past it (or
	// while Redis is unreachable) this replica's own bucket decides.
	LimitsTimeout time.Duration `envconfig:"QUERY_LIMITS_TIMEOUT" default:"50ms"`
}

// Limits bound what one request may ask of ClickHouse and how often a key may ask.
type Limits struct {
	// MaxExecutionTime is ClickHouse's max_execution_time for every statement.
	MaxExecutionTime time.Duration `envconfig:"QUERY_MAX_EXECUTION_TIME" default:"10s"`
	// MaxRowsToRead and MaxBytesToRead bound what one statement may read (max_rows_to_read,
	// max_bytes_to_read); a statement over them fails with 422.
	MaxRowsToRead  uint64 `envconfig:"QUERY_MAX_ROWS_TO_READ" default:"200000000"`
	MaxBytesToRead uint64 `envconfig:"QUERY_MAX_BYTES_TO_READ" default:"20000000000"`
	// MaxResultRows and MaxResultBytes bound one statement's result (max_result_rows,
	// max_result_bytes).
	MaxResultRows  uint64 `envconfig:"QUERY_MAX_RESULT_ROWS" default:"20000"`
	MaxResultBytes uint64 `envconfig:"QUERY_MAX_RESULT_BYTES" default:"33554432"`
	// DefaultPageSize and MaxPageSize are a list's limit when none is given, and its bound.
	DefaultPageSize int `envconfig:"QUERY_DEFAULT_PAGE_SIZE" default:"50"`
	MaxPageSize     int `envconfig:"QUERY_MAX_PAGE_SIZE" default:"500"`
	// DetailLimit bounds each list of a trace detail (observations, scores, llm calls,
	// findings); a longer list is cut and flagged.
	DetailLimit int `envconfig:"QUERY_DETAIL_LIMIT" default:"1000"`
	// DefaultRange is a list's time range when the request gives no from; MaxRange bounds
	// to - from of any request.
	DefaultRange time.Duration `envconfig:"QUERY_DEFAULT_RANGE" default:"168h"`
	MaxRange     time.Duration `envconfig:"QUERY_MAX_RANGE" default:"8784h"`
	// MaxMetricRows bounds the rows of a metrics answer (its row_limit's bound).
	MaxMetricRows int `envconfig:"QUERY_MAX_METRIC_ROWS" default:"10000"`
	// RatePerSecond and RateBurst are the per-key request rate limit: a bucket per key id
	// holding RateBurst requests, refilled at RatePerSecond; shared by the replicas through
	// Redis when REDIS_URL is set, else in this replica's memory.
	RatePerSecond float64 `envconfig:"QUERY_RATE_PER_SECOND" default:"50"`
	RateBurst     int     `envconfig:"QUERY_RATE_BURST" default:"100"`
	// MaxConcurrent bounds the requests served at once; the others wait for a turn. It
	// bounds memory: every answer is built in memory before it is written.
	MaxConcurrent int `envconfig:"QUERY_MAX_CONCURRENT" default:"16"`
}

// Validate checks the configuration.
func (c Config) Validate() error {
	errs := []error{c.Common.Validate(), c.ClientConfig.Validate(), c.Limits.Validate()}
	if c.ClickHouseAddr == "" {
		errs = append(errs, errors.New("CLICKHOUSE_ADDR must be host:port of ClickHouse's native protocol"))
	}
	if err := c.clickhouse().Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.RedisURL != "" {
		if _, err := limits.RedisOptions(c.RedisURL); err != nil {
			errs = append(errs, err)
		}
	}
	if c.LimitsTimeout < time.Millisecond || c.LimitsTimeout > time.Second {
		errs = append(errs, fmt.Errorf("QUERY_LIMITS_TIMEOUT must be between 1ms and 1s, got %s", c.LimitsTimeout))
	}
	return errors.Join(errs...)
}

func (c Config) clickhouse() clickhouse.Config {
	return clickhouse.Config{Addr: c.ClickHouseAddr, Database: c.ClickHouseDatabase, User: c.ClickHouseUser,
		Password: c.ClickHousePassword, Cluster: c.ClickHouseCluster}
}

// The per-key rate limit's bounds: a request per microsecond at most (the buckets' unit of
// time), and a bucket that fills from empty within 30 days.
const (
	maxRatePerSecond = 1_000_000
	maxRateWindow    = 30 * 24 * time.Hour
)

// Validate checks the limits are usable.
func (l Limits) Validate() error {
	var errs []error
	if l.MaxExecutionTime < time.Second {
		errs = append(errs, fmt.Errorf("QUERY_MAX_EXECUTION_TIME must be at least 1s, got %s", l.MaxExecutionTime))
	}
	if l.MaxRowsToRead == 0 || l.MaxBytesToRead == 0 || l.MaxResultRows == 0 || l.MaxResultBytes == 0 {
		errs = append(errs, errors.New("QUERY_MAX_ROWS_TO_READ, QUERY_MAX_BYTES_TO_READ, QUERY_MAX_RESULT_ROWS and QUERY_MAX_RESULT_BYTES must be positive"))
	}
	if l.MaxPageSize < 1 || l.DefaultPageSize < 1 || l.DefaultPageSize > l.MaxPageSize {
		errs = append(errs, fmt.Errorf("QUERY_DEFAULT_PAGE_SIZE (%d) must be between 1 and QUERY_MAX_PAGE_SIZE (%d)", l.DefaultPageSize, l.MaxPageSize))
	}
	if uint64(l.MaxPageSize)+1 > l.MaxResultRows || uint64(l.DetailLimit)+1 > l.MaxResultRows || uint64(l.MaxMetricRows)+1 > l.MaxResultRows {
		errs = append(errs, fmt.Errorf("QUERY_MAX_PAGE_SIZE, QUERY_DETAIL_LIMIT and QUERY_MAX_METRIC_ROWS must stay below QUERY_MAX_RESULT_ROWS (%d)", l.MaxResultRows))
	}
	if l.DetailLimit < 1 || l.MaxMetricRows < 1 {
		errs = append(errs, fmt.Errorf("QUERY_DETAIL_LIMIT and QUERY_MAX_METRIC_ROWS must be at least 1, got %d and %d", l.DetailLimit, l.MaxMetricRows))
	}
	if l.DefaultRange <= 0 || l.MaxRange < l.DefaultRange {
		errs = append(errs, fmt.Errorf("QUERY_DEFAULT_RANGE (%s) must be positive and at most QUERY_MAX_RANGE (%s)", l.DefaultRange, l.MaxRange))
	}
	switch {
	case !(l.RatePerSecond > 0) || l.RateBurst < 1:
		errs = append(errs, fmt.Errorf("QUERY_RATE_PER_SECOND must be positive and QUERY_RATE_BURST at least 1, got %g and %d", l.RatePerSecond, l.RateBurst))
	case l.RatePerSecond > maxRatePerSecond:
		errs = append(errs, fmt.Errorf("QUERY_RATE_PER_SECOND must be at most %d (buckets count in microseconds), got %g", maxRatePerSecond, l.RatePerSecond))
	case float64(l.RateBurst)/l.RatePerSecond > maxRateWindow.Seconds():
		errs = append(errs, fmt.Errorf("QUERY_RATE_BURST / QUERY_RATE_PER_SECOND, the time an empty bucket takes to fill, must be at most %s, got %d / %g",
			maxRateWindow, l.RateBurst, l.RatePerSecond))
	}
	if l.MaxConcurrent < 1 {
		errs = append(errs, fmt.Errorf("QUERY_MAX_CONCURRENT must be at least 1, got %d", l.MaxConcurrent))
	}
	return errors.Join(errs...)
}
