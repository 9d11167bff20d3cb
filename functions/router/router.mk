# Router targets, included by the top-level Makefile (include functions/router/router.mk).
#
#   make redis-server   install Debian's redis-server; the tests start their own on free ports
#   make bench-router   gateway overhead: router against the mock upstream called directly
#
# Including this file also adds router to `make build` and redis-server to `make deps`. As for
# ClickHouse, deploy/apt-install.sh installs the package without starting its service.

GO ?= go

.PHONY: redis-server bench-router

MAINS += ./functions/router/cmd/router
deps: redis-server
bench: bench-router

redis-server:
	@./deploy/apt-install.sh 'command -v redis-server' redis-server

# BENCH_DURATION is how long each rate is held.
BENCH_DURATION ?= 5s
bench-router:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./functions/router/cmd/router ./functions/router/cmd/routerbench
	./$(BIN)/routerbench -router ./$(BIN)/router -duration $(BENCH_DURATION)
