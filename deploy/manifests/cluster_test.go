package manifests_test

import (
	"regexp"
	"testing"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/deploy/manifests"
)

// The cluster-mode migrations use only macros the operator sets on every server of the
// installation, and the cluster name persist passes is the installation's.
func TestMigrationsUseTheOperatorsMacros(t *testing.T) {
	set := render(t, "production")
	cluster, err := manifests.ClusterOf(set.ClickHouses[0])
	if err != nil {
		t.Fatal(err)
	}
	features, err := clickhouse.FeaturesFor("24.8")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := clickhouse.Render(features, clickhouse.Options{Database: clickhouse.DefaultDatabase, Cluster: cluster.Name})
	if err != nil {
		t.Fatal(err)
	}
	stmts := append([]string{}, plan.Bootstrap...)
	for _, m := range plan.Migrations {
		stmts = append(stmts, m.Statements...)
	}
	macro := regexp.MustCompile(`\{([a-z_]+)\}`)
	used := map[string]bool{}
	for _, s := range stmts {
		for _, m := range macro.FindAllStringSubmatch(s, -1) {
			used[m[1]] = true
		}
	}
	if !used["shard"] || !used["replica"] {
		t.Fatalf("the cluster-mode migrations use macros %v; want at least shard and replica", used)
	}
	// Distinct servers get distinct (shard, replica) pairs, so their replica paths never clash.
	seen := map[string]bool{}
	for s := 0; s < cluster.Shards; s++ {
		for r := 0; r < cluster.Replicas; r++ {
			macros := cluster.Macros(s, r)
			for name := range used {
				if _, ok := macros[name]; !ok {
					t.Errorf("the migrations use {%s}, which the operator does not set", name)
				}
			}
			key := macros["shard"] + "/" + macros["replica"]
			if seen[key] {
				t.Errorf("two servers share shard/replica %s", key)
			}
			seen[key] = true
		}
	}
}
