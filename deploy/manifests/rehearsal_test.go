//go:build rehearsal

// The installation's ClickHouse cluster on this machine: the cluster name, layout and macros
// are read from clickhouse/operator's ClickHouseInstallation (as rendered by the production
// overlay) and given to 2 x 2 local servers and ZooKeeper; the cluster-mode migrations run with
// that cluster name; rows written through the Distributed table land on both shards and on both
// replicas of each; a replica stopped while writes go on catches up once restarted. Run with
// `make rehearse-cluster`.
package manifests_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/clickhouse/localserver"
	"github.com/trustplane/trustplane/deploy/manifests"
)

func TestRehearseManifestCluster(t *testing.T) {
	ctx := context.Background()
	set := render(t, "production")
	cluster, err := manifests.ClusterOf(set.ClickHouses[0])
	if err != nil {
		t.Fatal(err)
	}
	lc, err := localserver.StartCluster(ctx, localserver.ClusterConfig{
		Dir: t.TempDir(), Name: cluster.Name, Shards: cluster.Shards, Replicas: cluster.Replicas, Macros: cluster.Macros,
	})
	if err != nil {
		t.Fatalf("%v (make clickhouse-server zookeeper installs the servers)", err)
	}
	t.Cleanup(lc.Stop)

	for s := 0; s < cluster.Shards; s++ {
		for r := 0; r < cluster.Replicas; r++ {
			got := map[string]string{}
			rows, err := conn(t, lc.Node(s, r).Addr()).Query(ctx, "SELECT macro, substitution FROM system.macros")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var k, v string
				if err := rows.Scan(&k, &v); err != nil {
					t.Fatal(err)
				}
				got[k] = v
			}
			rows.Close()
			for k, v := range cluster.Macros(s, r) {
				if got[k] != v {
					t.Errorf("%s: macro %s = %q, want %q", cluster.Host(s, r), k, got[k], v)
				}
			}
		}
	}

	st, err := clickhouse.Open(ctx, clickhouse.Config{Addr: lc.Node(0, 0).Addr(), Cluster: cluster.Name})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := clickhouse.Migrate(ctx, st.Conn(), st.MigrateOptions()); err != nil {
		t.Fatal(err)
	}
	write := func(from, n int) {
		t.Helper()
		var b clickhouse.Batch
		at := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
		for i := from; i < from+n; i++ {
			b.Traces = append(b.Traces, clickhouse.Trace{
				Envelope:  clickhouse.Envelope{TenantID: "tenant-rehearsal", ProjectID: "p", ID: fmt.Sprintf("trace-%d", i), EventSource: "/rehearsal", EventID: fmt.Sprintf("e-%d", i)},
				Timestamp: at.Add(time.Duration(i) * time.Millisecond), Name: "t",
			})
		}
		if err := st.Write(ctx, b); err != nil {
			t.Fatalf("write rows %d-%d: %v", from, from+n-1, err)
		}
	}
	write(0, 2000)
	if total := converged(t, lc, cluster); total != 2000 {
		t.Fatalf("shards hold %d rows in all, want 2000", total)
	}

	// The last replica of the last shard stops; writes go on through its shard's other
	// replica, and once restarted it catches up.
	last, lastReplica := cluster.Shards-1, cluster.Replicas-1
	if err := lc.Node(last, lastReplica).Stop(); err != nil {
		t.Fatal(err)
	}
	write(2000, 2000)
	if err := lc.Restart(ctx, last, lastReplica); err != nil {
		t.Fatal(err)
	}
	if total := converged(t, lc, cluster); total != 4000 {
		t.Fatalf("after the restart the shards hold %d rows in all, want 4000", total)
	}
}

// converged waits until the replicas of each shard hold the same, non-zero number of rows, and
// returns the rows of all shards. A write is acknowledged once one replica of a shard, not
// necessarily the first, stored it; the others catch up through replication, in seconds: the
// 2-minute bound is only used up by a machine stalled for minutes, not by chance.
func converged(t *testing.T, lc *localserver.LocalCluster, cluster manifests.Cluster) uint64 {
	t.Helper()
	var total uint64
	for s := 0; s < cluster.Shards; s++ {
		var counts []uint64
		deadline := time.Now().Add(2 * time.Minute)
		for {
			counts = counts[:0]
			for r := 0; r < cluster.Replicas; r++ {
				counts = append(counts, localTraces(t, lc.Node(s, r).Addr()))
			}
			if (counts[0] > 0 && slices.Min(counts) == slices.Max(counts)) || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if counts[0] == 0 || slices.Min(counts) != slices.Max(counts) {
			t.Errorf("shard %d replicas hold %v rows, want the same, and some", s, counts)
		}
		total += counts[0]
	}
	return total
}

func conn(t *testing.T, addr string) ch.Conn {
	t.Helper()
	c, err := ch.Open(&ch.Options{Addr: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func localTraces(t *testing.T, addr string) uint64 {
	t.Helper()
	var n uint64
	if err := conn(t, addr).QueryRow(context.Background(), "SELECT count() FROM trustplane.traces_local WHERE tenant_id = 'tenant-rehearsal'").Scan(&n); err != nil {
		t.Fatalf("count on %s: %v", addr, err)
	}
	return n
}
