package main

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trustplane/trustplane/eventing/catalog"
)

// bannerCommand returns the banner's line that starts with prefix, as pasted into a shell.
func bannerCommand(t *testing.T, banner, prefix string) string {
	t.Helper()
	for _, line := range strings.Split(banner, "\n") {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("the banner has no %q command:\n%s", prefix, banner)
	return ""
}

func shell(t *testing.T, command string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", command).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", command, err, out)
	}
	return string(out)
}

// The banner's kcat and clickhouse-client commands, pasted as printed, show an event posted to
// the running plane; the ports file names every port of the run, and goes with the run.
func TestBannerCommandsWorkAgainstTheRunningPlane(t *testing.T) {
	r := startLocalRun(t, nil)
	banner := r.stdout.String()
	p := plane{ingest: "http://127.0.0.1:" + strconv.Itoa(r.o.ingestPort), client: http.DefaultClient}
	now := time.Now().UTC().Format(time.RFC3339)
	if code := p.post(t, r.key, map[string]string{"Content-Type": "application/cloudevents+json"},
		ce("banner-1", catalog.TypeTrace, `{"id":"trace-banner","timestamp":"`+now+`","name":"from the banner test"}`)); code != http.StatusAccepted {
		t.Fatalf("post: %d", code)
	}

	kcat := bannerCommand(t, banner, "kcat ")
	if out := shell(t, kcat); !strings.Contains(out, "trace-banner") || !strings.Contains(out, "ce_tenantid=demo") {
		t.Errorf("%s does not show the event with its tenant:\n%s", kcat, out)
	}
	query := bannerCommand(t, banner, "clickhouse-client ")
	// The row is written once the dispatcher delivered the event; the bound only ends a hang.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		out := shell(t, query)
		if strings.Contains(out, "demo\ttrace-banner\tfrom the banner test") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not show the trace:\n%s", query, out)
		}
	}

	// The same trace through query, with the banner's curl.
	traces := bannerCommand(t, banner, "curl http://127.0.0.1:"+strconv.Itoa(r.o.queryPort)+"/v1/traces ")
	if out := shell(t, traces+" -sS"); !strings.Contains(out, `"id":"trace-banner"`) || !strings.Contains(out, `"name":"from the banner test"`) {
		t.Errorf("%s does not show the trace:\n%s", traces, out)
	}

	// The banner's call the content policy blocks, pasted as printed, is refused.
	_, after, ok := strings.Cut(banner, "A call the content policy blocks")
	if !ok {
		t.Fatalf("the banner shows no blocked call:\n%s", banner)
	}
	lines := strings.Split(after, "\n")[1:4]
	if out := shell(t, strings.Join(lines, "\n")); !strings.Contains(out, `"code":"content_policy_violation"`) || !strings.Contains(out, "secret") {
		t.Errorf("the blocked call answered:\n%s", out)
	}

	portsFile := filepath.Join(r.o.dir, "ports")
	if !strings.Contains(banner, portsFile) {
		t.Errorf("the banner does not name the ports file %s", portsFile)
	}
	ports, err := os.ReadFile(portsFile)
	if err != nil {
		t.Fatal(err)
	}
	for env, port := range map[string]int{"INGEST_PORT": r.o.ingestPort, "AUTH_PORT": r.o.authPort, "PERSIST_PORT": r.o.persistPort,
		"DISPATCHER_PORT": r.o.dispatcherPort, "ROUTER_PORT": r.o.routerPort, "QUERY_PORT": r.o.queryPort, "BATCH_PORT": r.o.batchPort, "GUARD_PORT": r.o.guardPort, "KAFKA_PORT": r.o.kafkaPort,
		"CLICKHOUSE_PORT": r.o.clickhousePort, "CLICKHOUSE_HTTP_PORT": r.o.clickhouseHTTPPort,
		"CLICKHOUSE_INTERSERVER_PORT": r.o.clickhouseInterserverPort} {
		if !strings.Contains(string(ports), "\n"+env+"="+strconv.Itoa(port)+"\n") {
			t.Errorf("%s does not say %s=%d:\n%s", portsFile, env, port, ports)
		}
	}
	// What the file says holds in a shell.
	if out := shell(t, ". "+portsFile+" && echo $KAFKA_PORT"); strings.TrimSpace(out) != strconv.Itoa(r.o.kafkaPort) {
		t.Errorf("sourcing %s gives KAFKA_PORT=%q", portsFile, out)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(portsFile); !os.IsNotExist(err) {
		t.Errorf("%s outlives the run: %v", portsFile, err)
	}
}

// Kafka's and ClickHouse's ports are the same on every run unless chosen.
func TestKafkaAndClickHousePortsAreStable(t *testing.T) {
	o, err := parseOptions(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.kafkaPort != 19092 || o.clickhousePort != 19000 || o.clickhouseHTTPPort != 18123 || o.clickhouseInterserverPort != 19009 {
		t.Fatalf("default ports: kafka %d, clickhouse %d, http %d, interserver %d", o.kafkaPort, o.clickhousePort, o.clickhouseHTTPPort, o.clickhouseInterserverPort)
	}
}
