package kafka

import (
	"time"

	"github.com/IBM/sarama"
)

// ProtocolVersion is the Kafka protocol version the clients speak. Record
// headers (which the CloudEvents binary mode needs) and idempotent producing
// need at least 0.11; 3.6 is understood by Apache Kafka 3.x and 4.x brokers
// and by the embedded kfake broker.
var ProtocolVersion = sarama.V3_6_0_0

// NewConfig returns the sarama configuration every trustplane client starts
// from.
//
// Producing: acks=all and idempotent, so an acknowledged event is on every
// in-sync replica and a retry never writes it twice. Batching: sarama sends a
// batch as soon as the previous request to that broker was answered, and all
// messages that arrived meanwhile go in the next one, so batches grow with the
// load while a lone message is sent at once.
//
// Consuming: start from the oldest offset when a group has none, and never
// auto-commit: a consumer commits only what it has finished, in order.
func NewConfig(clientID string) *sarama.Config {
	cfg := sarama.NewConfig()
	if clientID != "" {
		cfg.ClientID = clientID
	}
	cfg.Version = ProtocolVersion

	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Net.ReadTimeout = 15 * time.Second
	cfg.Net.WriteTimeout = 15 * time.Second
	// Required by the idempotent producer: one request in flight per broker
	// keeps the sequence numbers in order.
	cfg.Net.MaxOpenRequests = 1

	cfg.Metadata.Retry.Max = 3
	cfg.Metadata.Retry.Backoff = 250 * time.Millisecond

	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Producer.Timeout = 10 * time.Second
	cfg.Producer.Retry.Max = 10
	cfg.Producer.Retry.Backoff = 100 * time.Millisecond
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Compression = sarama.CompressionLZ4
	// Flush as soon as the broker connection is free (see above); cap a
	// request at 1 MiB, the broker's default message.max.bytes.
	cfg.Producer.Flush.Frequency = 0
	cfg.Producer.Flush.Bytes = 0
	cfg.Producer.Flush.Messages = 0
	cfg.Producer.Flush.MaxMessages = 0
	cfg.Producer.MaxMessageBytes = 1000000

	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Return.Errors = true
	return cfg
}
