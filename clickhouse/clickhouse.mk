# ClickHouse targets, included by the top-level Makefile.
#
# Debian's clickhouse-server (18.16) is the server the tests start as a plain
# user process on free ports; the package's own service is never used. A
# policy-rc.d that exits 101 tells invoke-rc.d not to start services during the
# install, so a CI container without an init system installs it cleanly; it is
# removed again afterwards if this target created it.

.PHONY: clickhouse-server rehearse-clickhouse

clickhouse-server:
	@if command -v clickhouse-server >/dev/null 2>&1; then \
		echo "clickhouse-server: $$(command -v clickhouse-server)"; \
	else \
		created=; \
		if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && created=1; \
		fi; \
		DEBIAN_FRONTEND=noninteractive apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends clickhouse-server clickhouse-client; \
		status=$$?; \
		if [ -n "$$created" ]; then rm -f /usr/sbin/policy-rc.d; fi; \
		exit $$status; \
	fi
