package persist

import (
	"errors"
	"fmt"
	"time"

	"github.com/trustplane/trustplane/functions/runtime"
)

// Config is persist's configuration, read from the environment.
type Config struct {
	runtime.Common

	ClickHouseAddr     string        `envconfig:"CLICKHOUSE_ADDR" required:"true"`
	ClickHouseDatabase string        `envconfig:"CLICKHOUSE_DATABASE" default:"trustplane"`
	ClickHouseUser     string        `envconfig:"CLICKHOUSE_USER" default:"default"`
	ClickHousePassword string        `envconfig:"CLICKHOUSE_PASSWORD"`
	ClickHouseCluster  string        `envconfig:"CLICKHOUSE_CLUSTER"`
	MigrateOnStart     bool          `envconfig:"MIGRATE_ON_START" default:"true"`
	BatchRows          int           `envconfig:"PERSIST_BATCH_ROWS" default:"10000"`
	LargeBatchRows     int           `envconfig:"PERSIST_LARGE_BATCH_ROWS" default:"1000"`
	MinInsertInterval  time.Duration `envconfig:"PERSIST_MIN_INSERT_INTERVAL" default:"50ms"`
	BatchIdle          time.Duration `envconfig:"PERSIST_BATCH_IDLE" default:"2ms"`
	BatchMaxWait       time.Duration `envconfig:"PERSIST_BATCH_MAX_WAIT" default:"500ms"`
	MaxInflightInserts int           `envconfig:"PERSIST_MAX_INFLIGHT_INSERTS" default:"2"`
	InsertTimeout      time.Duration `envconfig:"PERSIST_INSERT_TIMEOUT" default:"30s"`
}

// Validate checks the configuration.
func (c Config) Validate() error {
	errs := []error{c.Common.Validate()}
	if c.ClickHouseAddr == "" {
		errs = append(errs, errors.New("CLICKHOUSE_ADDR must be host:port of ClickHouse's native protocol"))
	}
	if c.BatchRows < 1 || c.BatchRows > 1_000_000 {
		errs = append(errs, fmt.Errorf("PERSIST_BATCH_ROWS must be between 1 and 1000000, got %d", c.BatchRows))
	}
	if c.LargeBatchRows < 1 || c.LargeBatchRows > c.BatchRows {
		errs = append(errs, fmt.Errorf("PERSIST_LARGE_BATCH_ROWS must be between 1 and PERSIST_BATCH_ROWS (%d), got %d", c.BatchRows, c.LargeBatchRows))
	}
	if c.MinInsertInterval < 0 || c.BatchIdle < 0 {
		errs = append(errs, fmt.Errorf("PERSIST_MIN_INSERT_INTERVAL and PERSIST_BATCH_IDLE must not be negative, got %s and %s", c.MinInsertInterval, c.BatchIdle))
	}
	if c.BatchMaxWait <= 0 || c.BatchMaxWait > time.Minute {
		errs = append(errs, fmt.Errorf("PERSIST_BATCH_MAX_WAIT must be between 0 and 1m, got %s", c.BatchMaxWait))
	}
	if c.MaxInflightInserts < 1 || c.MaxInflightInserts > 64 {
		errs = append(errs, fmt.Errorf("PERSIST_MAX_INFLIGHT_INSERTS must be between 1 and 64, got %d", c.MaxInflightInserts))
	}
	if c.InsertTimeout <= 0 {
		errs = append(errs, fmt.Errorf("PERSIST_INSERT_TIMEOUT must be positive, got %s", c.InsertTimeout))
	}
	return errors.Join(errs...)
}

// GroupCommit is the group commit part of the configuration.
func (c Config) GroupCommit() GroupCommitConfig {
	return GroupCommitConfig{
		MaxRows: c.BatchRows, LargeRows: c.LargeBatchRows, MinInterval: c.MinInsertInterval, Idle: c.BatchIdle, MaxWait: c.BatchMaxWait,
		MaxInflight: c.MaxInflightInserts, InsertTimeout: c.InsertTimeout,
	}
}
