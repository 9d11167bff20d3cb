// Package kafka holds trustplane's Kafka setup: the topic definitions, the
// sarama configuration every producer and consumer starts from, the
// CloudEvents producer that ingest and router use, the decoding of records
// back into events, and an embedded Kafka-protocol broker for running on one
// machine.
//
// Events are written in the CloudEvents Kafka binary content mode: attributes
// travel as ce_* record headers, data as the record value, and the record key
// is the event's partitionkey extension (the trace id), so every event of a
// trace lands in the same partition, in order.
package kafka
