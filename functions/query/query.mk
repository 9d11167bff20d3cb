# query: chDB (ClickHouse 26.9 in process, PyPI chdb-core) for the tests that run the modern
# schema and every query statement on a current ClickHouse, and query's benchmark.

CHDB_VERSION := 26.9.0
CHDB_VENV := .cache/chdb

.PHONY: chdb bench-query

MAINS += ./functions/query/cmd/query ./functions/batch/cmd/batch

# A Python venv with chdb-core in .cache/chdb (clickhouse/chdbtest finds it there).
chdb: $(CHDB_VENV)/.installed-$(CHDB_VERSION)

$(CHDB_VENV)/.installed-$(CHDB_VERSION):
	@command -v python3 >/dev/null || { echo "python3 is needed for chDB"; exit 1; }
	@python3 -c 'import venv, ensurepip' 2>/dev/null || { apt-get update -qq && apt-get install -y -qq python3-venv; }
	python3 -m venv $(CHDB_VENV)
	$(CHDB_VENV)/bin/pip install -q chdb-core==$(CHDB_VERSION)
	touch $@

# 10M llm calls, 1M observations and 100k traces generated inside the test ClickHouse; the
# numbers in the README's performance table.
bench-query: export CHTEST_DIR = $(BENCH_CHTEST_DIR)
bench-query: deps
	$(GO) test -p 1 -run '^$$' -bench BenchmarkQuery -benchtime 1x -timeout 30m ./functions/query/
