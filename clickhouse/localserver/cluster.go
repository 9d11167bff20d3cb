package localserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
)

// ClusterConfig describes a sharded, replicated cluster on this machine: one ZooKeeper and
// Shards x Replicas servers. Name and Macros are the same values the Kubernetes manifests
// give the cluster, so the same migrations run against both.
type ClusterConfig struct {
	Dir      string // one subdirectory per server and one for ZooKeeper
	Name     string // remote_servers cluster name, default "trustplane"
	Shards   int    // default 2
	Replicas int    // default 2
	// Macros gives the macros of the server at (shard, replica), both 0-based; default
	// DefaultMacros.
	Macros func(shard, replica int) map[string]string
}

// DefaultMacros names shards "1", "2", ... and replicas "replica-1", "replica-2", ...
func DefaultMacros(shard, replica int) map[string]string {
	return map[string]string{
		"shard":   strconv.Itoa(shard + 1),
		"replica": "replica-" + strconv.Itoa(replica+1),
	}
}

// LocalCluster is a running cluster.
type LocalCluster struct {
	cfg       ClusterConfig
	ZooKeeper *ZooKeeper
	nodes     [][]*Server // [shard][replica]
}

// StartCluster starts ZooKeeper and every server, each with the whole cluster in its
// remote_servers, and waits until all answer.
func StartCluster(ctx context.Context, cfg ClusterConfig) (*LocalCluster, error) {
	if cfg.Dir == "" {
		return nil, errors.New("localserver: cluster Dir is required")
	}
	if cfg.Name == "" {
		cfg.Name = "trustplane"
	}
	if cfg.Shards == 0 {
		cfg.Shards = 2
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 2
	}
	if cfg.Shards < 0 || cfg.Replicas < 0 {
		return nil, fmt.Errorf("localserver: shards and replicas must be positive, got %d x %d", cfg.Shards, cfg.Replicas)
	}
	if cfg.Macros == nil {
		cfg.Macros = DefaultMacros
	}
	// Every server's ports are chosen before any starts (each lists the others), so a port that
	// another process took meanwhile fails a server's start; the whole cluster then starts
	// again on new ports, in a directory of its own.
	dir := cfg.Dir
	for attempt := 1; ; attempt++ {
		c, err := startCluster(ctx, cfg)
		if err == nil || attempt == 3 || ctx.Err() != nil || !strings.Contains(err.Error(), "Address already in use") {
			return c, err
		}
		cfg.Dir = filepath.Join(dir, fmt.Sprintf("attempt%d", attempt+1))
	}
}

func startCluster(ctx context.Context, cfg ClusterConfig) (_ *LocalCluster, err error) {
	zk, err := StartZooKeeper(ctx, ZooKeeperConfig{Dir: filepath.Join(cfg.Dir, "zookeeper")})
	if err != nil {
		return nil, err
	}
	c := &LocalCluster{cfg: cfg, ZooKeeper: zk}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()

	// Every server lists every other in remote_servers, so all ports are chosen first.
	configs := make([][]Config, cfg.Shards)
	remote := RemoteCluster{Name: cfg.Name, Shards: make([][]string, cfg.Shards)}
	for s := range configs {
		configs[s] = make([]Config, cfg.Replicas)
		for r := range configs[s] {
			sc := Config{
				Dir:       filepath.Join(cfg.Dir, fmt.Sprintf("shard%d-replica%d", s+1, r+1)),
				ZooKeeper: []string{zk.Addr()},
				Macros:    cfg.Macros(s, r),
			}
			if err := sc.pickPorts(); err != nil {
				return nil, err
			}
			configs[s][r] = sc
			remote.Shards[s] = append(remote.Shards[s], net.JoinHostPort("127.0.0.1", strconv.Itoa(sc.TCPPort)))
		}
	}
	c.nodes = make([][]*Server, cfg.Shards)
	for s := range configs {
		c.nodes[s] = make([]*Server, cfg.Replicas)
		for r := range configs[s] {
			configs[s][r].Remote = []RemoteCluster{remote}
			node, err := Start(ctx, configs[s][r])
			if err != nil {
				return nil, fmt.Errorf("shard %d replica %d: %w", s+1, r+1, err)
			}
			c.nodes[s][r] = node
		}
	}
	return c, nil
}

// Name is the cluster's name in remote_servers.
func (c *LocalCluster) Name() string { return c.cfg.Name }

// Node is the server at (shard, replica), both 0-based.
func (c *LocalCluster) Node(shard, replica int) *Server { return c.nodes[shard][replica] }

// Addrs lists every server's native address, shard by shard.
func (c *LocalCluster) Addrs() []string {
	var out []string
	for _, shard := range c.nodes {
		for _, n := range shard {
			out = append(out, n.Addr())
		}
	}
	return out
}

// Restart starts the server at (shard, replica) again on its ports and data, after Stop or
// Kill.
func (c *LocalCluster) Restart(ctx context.Context, shard, replica int) error {
	n, err := Start(ctx, c.nodes[shard][replica].Config())
	if err != nil {
		return err
	}
	c.nodes[shard][replica] = n
	return nil
}

// Stop stops every server, then ZooKeeper.
func (c *LocalCluster) Stop() {
	for _, shard := range c.nodes {
		for _, n := range shard {
			if n != nil {
				_ = n.Stop()
			}
		}
	}
	c.ZooKeeper.Stop()
}
