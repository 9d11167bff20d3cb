# Ingest targets, included by the top-level Makefile (include functions/ingest/ingest.mk).
#
#   make otel-python   the official OpenTelemetry Python SDK and its OTLP/HTTP exporter (PyPI),
#                      in a virtual environment under .cache, for the Python end-to-end test
#
# Including this file adds otel-python to `make deps` (and so to `make test`).

OTEL_PYTHON_VERSION ?= 1.45.2
OTEL_PYTHON := .cache/otel-python
OTEL_PYTHON_STAMP := $(OTEL_PYTHON)/.installed-$(OTEL_PYTHON_VERSION)

.PHONY: otel-python

deps: otel-python

otel-python: $(OTEL_PYTHON_STAMP)

# Debian's python3-venv when python3 cannot make a virtual environment (or is missing).
$(OTEL_PYTHON_STAMP):
	@./deploy/apt-install.sh 'python3 -c "import venv, ensurepip"' python3-venv
	python3 -m venv $(OTEL_PYTHON)
	$(OTEL_PYTHON)/bin/pip install --quiet opentelemetry-sdk==$(OTEL_PYTHON_VERSION) \
		opentelemetry-exporter-otlp-proto-http==$(OTEL_PYTHON_VERSION)
	touch $@

.PHONY: bench-otlp
bench: bench-otlp

# ingest against the OpenTelemetry Collector (functions/ingest/otelbench, its own module):
# OTLP_BENCH_SPANS (100000) per run, OTLP_BENCH_ROUNDS (2) alternations of the three sides.
bench-otlp: deps
	$(GO) test -p 1 -run '^$$' -bench BenchmarkOTLPvsCollector -benchtime 1x -timeout 30m ./functions/ingest/
	$(GO) test -p 1 -run '^$$' -bench BenchmarkOTLPDecodeAndMap -benchtime 2000x ./functions/ingest/
