// Package kafka holds trustplane's Kafka setup: the topic definitions, the
// sarama configuration every producer and consumer starts from, the
// CloudEvents producer that ingest and router use (ProducerConfig and
// NewProducer wire it from the environment), and the decoding of records back
// into events. The embedded broker of the one-machine run is kafka/embedded.
//
// Events are written in the CloudEvents Kafka binary content mode: attributes
// travel as ce_* record headers, data as the record value, and the record key
// is the event's partitionkey extension (the trace id), so every event of a
// trace lands in the same partition, in order.
package kafka
