# ClickHouse targets, included by the top-level Makefile.
#
#   make clickhouse-server     install Debian's clickhouse-server and clickhouse-client (18.16)
#   make zookeeper             install Debian's zookeeper (3.8), for the cluster rehearsal
#   make rehearse-clickhouse   2 shards x 2 replicas + ZooKeeper on this machine: cluster-mode
#                              migrations, Distributed inserts, a replica stopped and caught up
#
# The packages' own services are never used: the tests start the servers as plain child
# processes on free ports. A policy-rc.d that exits 101 tells invoke-rc.d not to start services
# during the install, so a CI container without an init system installs cleanly; it is removed
# afterwards if the install created it.

GO ?= go

.PHONY: clickhouse-server zookeeper rehearse-clickhouse

# $(call ch_apt_install,<command that proves it is installed>,<packages>)
define ch_apt_install
	@if $(1) >/dev/null 2>&1; then \
		echo "$(2): installed"; \
	else \
		created=; \
		if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && created=1; \
		fi; \
		DEBIAN_FRONTEND=noninteractive apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(2); \
		status=$$?; \
		if [ -n "$$created" ]; then rm -f /usr/sbin/policy-rc.d; fi; \
		exit $$status; \
	fi
endef

clickhouse-server:
	$(call ch_apt_install,command -v clickhouse-server,clickhouse-server clickhouse-client)

zookeeper:
	$(call ch_apt_install,test -f /usr/share/java/zookeeper.jar,zookeeper)

rehearse-clickhouse: clickhouse-server zookeeper
	$(GO) test -tags rehearsal -count=1 -v -run '^TestClusterRehearsal$$' ./clickhouse/
