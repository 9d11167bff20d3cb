# Router targets, included by the top-level Makefile (include functions/router/router.mk).
#
#   make redis-server   install Debian's redis-server; the tests start their own on free ports
#   make bench-router   gateway overhead: router against the mock upstream called directly
#
# Including this file also adds router to `make build` and redis-server to `make deps`. As for
# ClickHouse, a policy-rc.d that exits 101 keeps the package's own service from starting.

GO ?= go

.PHONY: redis-server bench-router

MAINS += ./functions/router/cmd/router
deps: redis-server
bench: bench-router

redis-server:
	@if command -v redis-server >/dev/null 2>&1; then \
		echo "redis-server: installed"; \
	else \
		created=; \
		if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && created=1; \
		fi; \
		DEBIAN_FRONTEND=noninteractive apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server; \
		status=$$?; \
		if [ -n "$$created" ]; then rm -f /usr/sbin/policy-rc.d; fi; \
		exit $$status; \
	fi

# BENCH_DURATION is how long each rate is held.
BENCH_DURATION ?= 5s
bench-router:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./functions/router/cmd/router ./functions/router/cmd/routerbench
	./$(BIN)/routerbench -router ./$(BIN)/router -duration $(BENCH_DURATION)
