# ClickHouse targets, included by the top-level Makefile.
#
#   make clickhouse-server     install Debian's clickhouse-server and clickhouse-client (18.16)
#   make zookeeper             install Debian's zookeeper (3.8), for the cluster rehearsal
#   make rehearse-clickhouse   2 shards x 2 replicas + ZooKeeper on this machine: cluster-mode
#                              migrations, Distributed inserts, a replica stopped and caught up
#
# The packages are installed by deploy/apt-install.sh, which never starts their services: the
# tests start the servers as plain child processes on free ports.

GO ?= go

.PHONY: clickhouse-server zookeeper rehearse-clickhouse

clickhouse-server:
	@./deploy/apt-install.sh 'command -v clickhouse-server' clickhouse-server clickhouse-client

zookeeper:
	@./deploy/apt-install.sh 'test -f /usr/share/java/zookeeper.jar' zookeeper

rehearse-clickhouse: clickhouse-server zookeeper
	$(GO) test -tags rehearsal -count=1 -v -run '^TestClusterRehearsal$$' ./clickhouse/
