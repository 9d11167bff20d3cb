# trustplane: the two commands are `make run` (the whole data plane on this machine) and
# `make test` (the whole test suite, installing and starting what it needs).

SHELL := /bin/bash
GO ?= go
BIN := bin
FUNCTIONS := auth ingest persist
# Every main package, built into bin/ by `make build`.
MAINS := ./functions/auth/cmd/auth ./functions/auth/cmd/keys ./functions/ingest/cmd/ingest \
	./functions/persist/cmd/persist ./functions/guard/cmd/guard ./eventing/cmd/dispatcher ./clickhouse/cmd/migrate ./deploy/local \
	./kafka/cmd/embedded-kafka
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

include kafka/kafka.mk
include clickhouse/clickhouse.mk
include deploy/deploy.mk
include functions/router/router.mk
include functions/guard/guard.mk
include functions/ingest/ingest.mk
include functions/query/query.mk

.PHONY: all build run deps test lint fuzz bench bench-ingest bench-persist bench-dispatcher bench-e2e clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ $(MAINS)

# Everything the tests need that is not Go: the ClickHouse server, the Apache Kafka jars and chDB
# (the included files add redis-server and kcat).
deps: clickhouse-server kafka-jars chdb

# The whole data plane on embedded defaults. ARGS goes to the runner (`make run ARGS="-tls-cert
# c.pem -tls-key k.pem"`), and so does each flag's variable (`make run INGEST_PORT=9080`); see
# the README. Set KAFKA_BROKERS or CLICKHOUSE_ADDR to use servers of your own instead of the
# embedded broker and the local ClickHouse server.
ARGS ?=
run: build clickhouse-server
	./$(BIN)/local -bin $(BIN) $(ARGS)

# The whole test suite, against a real ClickHouse server and a real Apache Kafka broker that
# the tests start themselves. -count=1: a cached result says nothing about the servers installed
# now, so every test runs every time.
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -p 2 -timeout 20m ./...

lint:
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# A short run of every fuzz target (go test -fuzz runs one target at a time).
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

# Every benchmark beside its reference, in one run each (see the README's performance section).
# Not part of `make test`: timings belong here, never in tests.
bench: bench-ingest bench-persist bench-dispatcher bench-e2e bench-query

# The benchmarks keep ClickHouse's data on a tmpfs when there is one: on an ext4 without a
# journal, as on this project's build machines, creating a file costs time in proportion to the
# files deleted in the last minutes, so ClickHouse's CPU per insert measures what ran before.
# BENCH_CHTEST_DIR= (empty) keeps it on disk. See the README's performance section.
BENCH_CHTEST_DIR ?= $(if $(wildcard /dev/shm/.),/dev/shm,)
bench bench-ingest bench-persist bench-dispatcher bench-e2e: export CHTEST_DIR = $(BENCH_CHTEST_DIR)

bench-ingest: deps
	$(GO) test -p 1 -run '^$$' -bench BenchmarkIngest -benchtime 100000x ./functions/ingest/

bench-persist: deps
	$(GO) test -p 1 -run '^$$' -bench BenchmarkWritePath -benchtime 3x ./functions/persist/
	$(GO) test -p 1 -run '^$$' -bench 'BenchmarkDecode|BenchmarkUnmarshal' ./functions/persist/ ./eventing/catalog/

bench-dispatcher: deps
	$(GO) test -p 1 -run '^$$' -bench BenchmarkDispatch -benchtime 20000x ./eventing/dispatcher/

# E2E_RATE (10000 events/s) and E2E_SECONDS (20) set the full load of the end-to-end run.
bench-e2e: deps
	$(GO) test -p 1 -run '^$$' -bench 'BenchmarkDeliveryPath|BenchmarkEndToEnd' -benchtime 1x -timeout 30m ./deploy/local/

clean:
	rm -rf $(BIN) .run
