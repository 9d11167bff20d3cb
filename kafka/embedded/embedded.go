// Package embedded runs a Kafka-protocol broker (franz-go's kfake) inside a process: the default
// Kafka of the one-machine run. It is not Apache Kafka; tests that need real broker behaviour use
// kafka/kafkatest. Only the local runner, its embedded-kafka command and tests import it, so
// that no deployed function links the fake broker.
package embedded

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Config configures the in-process broker.
type Config struct {
	// Ports to listen on, one broker each; 0 picks a free port. Empty means
	// one broker on a free port.
	Ports []int
	// DataDir, when set, keeps messages and committed group offsets on disk
	// there, so they survive a restart. Empty means memory only.
	DataDir string
	// SyncWrites fsyncs every batch before acknowledging it. Without it a
	// crash of the machine (not of the process) can lose acknowledged
	// events, as with Kafka's own default flush settings.
	SyncWrites bool
	// Partitions of topics created on first use (default 1).
	Partitions int32
}

// Broker is the broker running inside this process.
type Broker struct {
	cluster *kfake.Cluster
}

// Start starts the broker and returns once it listens.
func Start(cfg Config) (*Broker, error) {
	ports := cfg.Ports
	if len(ports) == 0 {
		ports = []int{0}
	}
	for _, p := range ports {
		if p < 0 || p > 65535 {
			return nil, fmt.Errorf("kafka: embedded broker port %d out of range", p)
		}
	}
	partitions := cfg.Partitions
	if partitions == 0 {
		partitions = 1
	}
	if partitions < 0 {
		return nil, errors.New("kafka: embedded broker partitions must be positive")
	}
	opts := []kfake.Opt{
		kfake.Ports(ports...),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(int(partitions)),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	if cfg.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: start embedded broker: %w", err)
	}
	return &Broker{cluster: c}, nil
}

// Addrs returns the bootstrap addresses (host:port) of the brokers.
func (e *Broker) Addrs() []string { return e.cluster.ListenAddrs() }

// Close stops the broker, writing its state to the data dir if it has one.
func (e *Broker) Close() { e.cluster.Close() }
