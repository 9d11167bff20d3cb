package manifests

import (
	"fmt"
	"sort"
	"strings"
)

// Sizing is what an overlay must provision. Check compares the rendered objects with it, and
// deploy/README.md shows it as a table (a test keeps the two equal).
type Sizing struct {
	KafkaBrokers       int
	KafkaVolume        string
	ClickHouseShards   int
	ClickHouseReplicas int
	ClickHouseVolume   string
	KeeperNodes        int
	KeeperVolume       string
	// MinScale is the autoscaling.knative.dev/min-scale of each function's Service.
	MinScale map[string]int
	// MaxScale is each function's autoscaling.knative.dev/max-scale. For persist it bounds the
	// concurrent inserts ClickHouse sees.
	MaxScale map[string]int
}

// Sizes is the sizing of each overlay. Production is the seed's: ClickHouse 2 shards x 2
// replicas with 100Gi per node, Kafka 3 brokers with 50Gi each. Development keeps the same
// topology, so replication behaves the same, on smaller volumes.
var Sizes = map[string]Sizing{
	"dev": {
		KafkaBrokers: 3, KafkaVolume: "10Gi",
		ClickHouseShards: 2, ClickHouseReplicas: 2, ClickHouseVolume: "20Gi",
		KeeperNodes: 3, KeeperVolume: "2Gi",
		MinScale: map[string]int{"auth": 1, "guard": 1, "ingest": 1, "persist": 1, "router": 1, "query": 1, "batch": 0},
		MaxScale: map[string]int{"auth": 10, "guard": 10, "ingest": 20, "persist": 3, "router": 20, "query": 10, "batch": 1},
	},
	"production": {
		KafkaBrokers: 3, KafkaVolume: "50Gi",
		ClickHouseShards: 2, ClickHouseReplicas: 2, ClickHouseVolume: "100Gi",
		KeeperNodes: 3, KeeperVolume: "10Gi",
		MinScale: map[string]int{"auth": 2, "guard": 1, "ingest": 2, "persist": 1, "router": 2, "query": 2, "batch": 0},
		MaxScale: map[string]int{"auth": 10, "guard": 10, "ingest": 40, "persist": 3, "router": 40, "query": 10, "batch": 1},
	},
}

// SizingTable is Sizes as the Markdown table in deploy/README.md.
func SizingTable() string {
	envs := make([]string, 0, len(Sizes))
	for env := range Sizes {
		envs = append(envs, env)
	}
	sort.Strings(envs)
	var b strings.Builder
	b.WriteString("| | " + strings.Join(envs, " | ") + " |\n|---|" + strings.Repeat("---|", len(envs)) + "\n")
	row := func(name string, cell func(Sizing) string) {
		b.WriteString("| " + name + " |")
		for _, env := range envs {
			b.WriteString(" " + cell(Sizes[env]) + " |")
		}
		b.WriteString("\n")
	}
	row("Kafka brokers (KRaft, each controller + broker)", func(s Sizing) string {
		return fmt.Sprintf("%d x %s", s.KafkaBrokers, s.KafkaVolume)
	})
	row("ClickHouse servers (shards x replicas)", func(s Sizing) string {
		return fmt.Sprintf("%d x %d x %s", s.ClickHouseShards, s.ClickHouseReplicas, s.ClickHouseVolume)
	})
	row("ClickHouse Keeper nodes", func(s Sizing) string {
		return fmt.Sprintf("%d x %s", s.KeeperNodes, s.KeeperVolume)
	})
	fns := make([]string, 0)
	for fn := range Sizes["production"].MinScale {
		fns = append(fns, fn)
	}
	sort.Strings(fns)
	for _, fn := range fns {
		row(fn+" pods (min-max)", func(s Sizing) string {
			return fmt.Sprintf("%d-%d", s.MinScale[fn], s.MaxScale[fn])
		})
	}
	return b.String()
}
