# Included by the top-level Makefile.

KAFKA_VERSION ?= 4.1.1

.PHONY: kafka-jars test-kafka rehearse-kafka bench-kafka

# Apache Kafka broker jars for kafka/kafkatest (real-broker tests).
kafka-jars:
	KAFKA_VERSION=$(KAFKA_VERSION) ./kafka/fetch-kafka.sh

test-kafka: kafka-jars
	go test -p 1 ./kafka/...

# Three brokers, acks=all, min.insync.replicas=2, one broker killed mid-stream.
rehearse-kafka: kafka-jars
	go test -p 1 -tags rehearsal -run TestRehearsal -v -timeout 15m ./kafka/

bench-kafka: kafka-jars
	go test -p 1 -run '^$$' -bench BenchmarkAsyncProducer -benchtime 200000x ./kafka/
