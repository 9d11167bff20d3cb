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
	BatchWait          time.Duration `envconfig:"PERSIST_BATCH_WAIT" default:"200ms"`
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
	if c.BatchWait <= 0 || c.BatchWait > time.Minute {
		errs = append(errs, fmt.Errorf("PERSIST_BATCH_WAIT must be between 0 and 1m, got %s", c.BatchWait))
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
	return GroupCommitConfig{MaxRows: c.BatchRows, MaxWait: c.BatchWait, MaxInflight: c.MaxInflightInserts, InsertTimeout: c.InsertTimeout}
}
