# Included by the top-level Makefile.

KAFKA_VERSION ?= 4.1.1

.PHONY: kafka-jars kcat test-kafka rehearse-kafka bench-kafka

# kcat, the Kafka client the banner of `make run` prints a command for (a test runs it).
deps run: kcat
kcat:
	@./deploy/apt-install.sh 'command -v kcat' kcat

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
