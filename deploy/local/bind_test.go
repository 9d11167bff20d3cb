package main

import (
	"testing"
)

// checkListeners fails unless every listening socket of the plane (every child of the run and
// all they started: the functions, Kafka, ClickHouse) is on loopback, except the ports in
// exposed, which must be on every interface; and unless every child's port is among them.
func checkListeners(t *testing.T, r *localRun, exposed map[int]bool) {
	t.Helper()
	if n := len(r.children()); n != 10 {
		t.Fatalf("%d children reported, want 10 (Kafka, ClickHouse and eight functions)", n)
	}
	ls := listeners(t, r.children())
	seen := map[int]bool{}
	for _, l := range ls {
		seen[l.port] = true
		switch {
		case exposed[l.port] && !l.ip.IsUnspecified():
			t.Errorf("port %d (pid %d) listens on %s, want every interface", l.port, l.pid, l.ip)
		case !exposed[l.port] && !l.ip.IsLoopback():
			t.Errorf("port %d (pid %d) listens on %s, beyond loopback", l.port, l.pid, l.ip)
		}
	}
	for name, port := range map[string]int{"ingest": r.o.ingestPort, "auth": r.o.authPort, "persist": r.o.persistPort,
		"dispatcher": r.o.dispatcherPort, "router": r.o.routerPort, "query": r.o.queryPort, "batch": r.o.batchPort,
		"guard": r.o.guardPort, "kafka": r.o.kafkaPort, "clickhouse": r.o.clickhousePort} {
		if !seen[port] {
			t.Errorf("%s's port %d is not among the plane's listeners %v", name, port, ls)
		}
	}
}

// By default nothing of the local run is reachable from another machine.
func TestLocalRunListensOnLoopbackOnly(t *testing.T) {
	r := startLocalRun(t, nil)
	checkListeners(t, r, nil)
}

// -public-host exposes ingest, router and query, and nothing else.
func TestPublicHostExposesIngestRouterAndQueryOnly(t *testing.T) {
	r := startLocalRun(t, nil, "-public-host", "0.0.0.0")
	checkListeners(t, r, map[int]bool{r.o.ingestPort: true, r.o.routerPort: true, r.o.queryPort: true})
}
