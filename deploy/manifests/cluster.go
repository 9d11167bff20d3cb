package manifests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Cluster is the ClickHouse cluster a ClickHouseInstallation defines, with the names the
// Altinity operator derives from it.
type Cluster struct {
	Installation string
	Name         string // the remote_servers cluster: ON CLUSTER and Distributed tables use it
	Shards       int
	Replicas     int
}

// ClusterOf reads the one cluster of an installation.
func ClusterOf(chi *ClickHouseInstallation) (Cluster, error) {
	cl := chi.Spec.Configuration.Clusters
	if len(cl) != 1 {
		return Cluster{}, fmt.Errorf("ClickHouseInstallation %s: want one cluster, found %d", chi.Name, len(cl))
	}
	c := Cluster{Installation: chi.Name, Name: cl[0].Name, Shards: cl[0].Layout.ShardsCount, Replicas: cl[0].Layout.ReplicasCount}
	if c.Name == "" || c.Shards < 1 || c.Replicas < 1 {
		return Cluster{}, fmt.Errorf("ClickHouseInstallation %s: cluster needs a name, shardsCount and replicasCount", chi.Name)
	}
	return c, nil
}

// Host is the operator's name for the server at (shard, replica), both 0-based:
// chi-<installation>-<cluster>-<shard>-<replica>.
func (c Cluster) Host(shard, replica int) string {
	return fmt.Sprintf("chi-%s-%s-%d-%d", c.Installation, c.Name, shard, replica)
}

// Macros are the macros the operator writes for the server at (shard, replica): {shard} is the
// shard's name (its index when the layout does not name shards) and {replica} the host's name.
// The cluster-mode migrations use exactly these two in their replicated table paths.
func (c Cluster) Macros(shard, replica int) map[string]string {
	return map[string]string{
		"installation": c.Installation,
		"cluster":      c.Name,
		"shard":        strconv.Itoa(shard),
		"replica":      c.Host(shard, replica),
	}
}

// unmarshalStrictJSON decodes JSON, rejecting unknown fields.
func unmarshalStrictJSON(data []byte, into any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(into)
}
