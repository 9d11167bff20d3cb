# Cluster install targets, included by the top-level Makefile.
#
#   make manifests          render every overlay (deploy/overlays/*) to deploy/out/, after the
#                           same strict decoding, Knative validation and cross-checks as the
#                           tests; an overlay whose secret files are missing is rendered from
#                           its *.example files to <overlay>.check-only.yaml
#   make ko-check           build every image with `ko resolve` against a local registry (no
#                           outside registry needed) and check each holds its binary
#   make rehearse-cluster   the cluster rehearsal on this machine: ClickHouse 2 x 2 + ZooKeeper
#                           from the ClickHouseInstallation's own definition, then the
#                           ClickHouse and Kafka rehearsals (replica loss, broker loss)

GO ?= go
MANIFESTS_OUT ?= deploy/out

.PHONY: manifests ko-check rehearse-cluster rehearse-manifests

manifests:
	$(GO) run ./deploy/cmd/manifests -out $(MANIFESTS_OUT) -example-secrets

ko-check:
	./deploy/ko-check.sh

# The 2 x 2 cluster as the manifests define it: cluster name, layout and the operator's macros
# read from clickhouse/operator, the cluster-mode migrations, rows on both shards.
rehearse-manifests: clickhouse-server zookeeper
	$(GO) test -tags rehearsal -count=1 -v -run '^TestRehearseManifestCluster$$' -timeout 10m ./deploy/manifests/

rehearse-cluster: rehearse-manifests rehearse-clickhouse rehearse-kafka
