package batch

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/functions/runtime"
)

// Config is batch's configuration, read from the environment. Its defaults are the tags.
type Config struct {
	runtime.Common

	ClickHouseAddr     string `envconfig:"CLICKHOUSE_ADDR" required:"true"`
	ClickHouseDatabase string `envconfig:"CLICKHOUSE_DATABASE" default:"trustplane"`
	// ClickHouseUser needs ALTER DELETE on the tables (in Kubernetes, the migrate user).
	ClickHouseUser     string `envconfig:"CLICKHOUSE_USER" default:"default"`
	ClickHousePassword string `envconfig:"CLICKHOUSE_PASSWORD"`
	ClickHouseCluster  string `envconfig:"CLICKHOUSE_CLUSTER"`
	// Retention is each project's retention in days, as tenant/project=days separated by
	// commas ("acme/web=30,acme/batch=7"). A project not named keeps everything.
	Retention string `envconfig:"BATCH_RETENTION"`
	// MutationTimeout bounds the wait for the deletions of one run to finish.
	MutationTimeout time.Duration `envconfig:"BATCH_MUTATION_TIMEOUT" default:"10m"`
}

// Rule is one project's retention.
type Rule struct {
	Tenant, Project string
	Days            int
}

// maxRetentionDays is 100 years; a longer retention is a typo.
const maxRetentionDays = 36500

// nameRE is what a tenant or project id may be: the rule auth applies to the ids of its keys
// (functions/auth), so every project that can hold rows can be named. Retention puts the ids
// into TTL expressions as literals (a TTL takes no bound parameters), quoted all the same.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ParseRetention reads BATCH_RETENTION. Each problem is named with the entry that has it.
func ParseRetention(s string) ([]Rule, error) {
	var rules []Rule
	var errs []error
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, days, ok := strings.Cut(part, "=")
		tenant, project, ok2 := strings.Cut(key, "/")
		n, err := strconv.Atoi(days)
		switch {
		case !ok || !ok2 || tenant == "" || project == "" || strings.Contains(project, "/"):
			errs = append(errs, fmt.Errorf("BATCH_RETENTION: %q is not tenant/project=days", part))
		case !nameRE.MatchString(tenant):
			errs = append(errs, fmt.Errorf("BATCH_RETENTION: %q: tenant must match %s", part, nameRE))
		case !nameRE.MatchString(project):
			errs = append(errs, fmt.Errorf("BATCH_RETENTION: %q: project must match %s", part, nameRE))
		case err != nil || n < 1 || n > maxRetentionDays:
			errs = append(errs, fmt.Errorf("BATCH_RETENTION: %q: days must be an integer between 1 and %d", part, maxRetentionDays))
		case seen[key]:
			errs = append(errs, fmt.Errorf("BATCH_RETENTION: %s is given twice", key))
		default:
			seen[key] = true
			rules = append(rules, Rule{Tenant: tenant, Project: project, Days: n})
		}
	}
	return rules, errors.Join(errs...)
}

// Validate checks the configuration.
func (c Config) Validate() error {
	errs := []error{c.Common.Validate(), c.clickhouse().Validate()}
	if _, err := ParseRetention(c.Retention); err != nil {
		errs = append(errs, err)
	}
	if c.MutationTimeout < time.Second {
		errs = append(errs, fmt.Errorf("BATCH_MUTATION_TIMEOUT must be at least 1s, got %s", c.MutationTimeout))
	}
	return errors.Join(errs...)
}

func (c Config) clickhouse() clickhouse.Config {
	return clickhouse.Config{Addr: c.ClickHouseAddr, Database: c.ClickHouseDatabase, User: c.ClickHouseUser,
		Password: c.ClickHousePassword, Cluster: c.ClickHouseCluster}
}
