package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/trustplane/trustplane/kafka"
)

// banner is what the runner prints once everything is ready: where each part listens, the demo
// key, and commands to paste.
type banner struct {
	ingest, auth, persist, dispatcher, router string // base URLs
	query, batch                              string
	guard                                     string
	brokers, triggers, clickhouse             string
	exposed                                   bool // ingest and router listen beyond loopback
	keysFile, keyPath, portsFile              string
	demo                                      demoKey
}

func writeBanner(w io.Writer, b banner) {
	exposure := "127.0.0.1 only"
	if b.exposed {
		exposure = "reachable from other machines (-public-host)"
	}
	keyNote := fmt.Sprintf("created now, kept in %s, its hash in %s", b.keyPath, b.keysFile)
	if b.demo.reused {
		keyNote = fmt.Sprintf("the same as before, kept in %s", b.keyPath)
	}
	if len(b.demo.revoked) > 0 {
		keyNote += "; revoked the earlier demo key " + strings.Join(b.demo.revoked, ", ")
	}
	fmt.Fprintf(w, `
trustplane is running.
  ingest      %s  (public telemetry endpoint; %s)
  router      %s  (OpenAI-compatible LLM gateway, mock models unless ROUTER_CONFIG is set; %s)
  query       %s  (analytics API, OpenAPI at /v1/openapi.json; %s)
  batch       %s  (retention, on the PingSource schedule)
  auth        %s
  persist     %s
  guard       %s  (security checks on telemetry; the policy in force: %s/policy?tenant=demo)
  dispatcher  %s  (Kafka %s -> Triggers in %s)
  ClickHouse  %s  (native protocol)

Demo API key (tenant demo, project demo, id %s; %s):
  %s

Send a trace:
  curl -i %s \
    -H 'Authorization: Bearer %s' \
    -H 'Content-Type: application/cloudevents+json' \
    -d '{"specversion":"1.0","id":"'$(date +%%s%%N)'","source":"/demo","type":"io.trustplane.telemetry.trace.v1","data":{"id":"trace-1","timestamp":"'$(date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ)'","name":"hello"}}'

Point an OpenTelemetry SDK at ingest (OTLP/HTTP traces; GenAI spans become generations):
  export OTEL_EXPORTER_OTLP_ENDPOINT=%s
  export OTEL_EXPORTER_OTLP_HEADERS='Authorization=Bearer%%20%s'

Call an LLM through router (any OpenAI SDK works: base URL %s/v1, the key above):
  curl %s/v1/chat/completions \
    -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' \
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}'

A call the content policy blocks (400 content_policy_violation: it holds a secret):
  curl %s/v1/chat/completions \
    -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' \
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"deploy with AKIAJ4Q2MZ7XK3P5RTLV"}]}'

Read them back through query (traces of the last 7 days; POST /v1/metrics for aggregates):
  curl %s/v1/traces -H 'Authorization: Bearer %s'
  curl %s/v1/metrics -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' \
    -d '{"view":"llm_calls","fromTimestamp":"'$(date -u -d '-1 day' +%%Y-%%m-%%dT%%H:00:00Z)'","toTimestamp":"'$(date -u -d '+1 hour' +%%Y-%%m-%%dT%%H:00:00Z)'","dimensions":[{"field":"model"}],"timeDimension":{"granularity":"hour"},"metrics":[{"measure":"count","aggregation":"count"},{"measure":"latency","aggregation":"p95"},{"measure":"cost","aggregation":"sum"}]}'

Look at the events in Kafka and the rows in ClickHouse (every port is in %s):
  %s
  %s

Every child restarts when it exits. Ctrl-C stops everything.
`, b.ingest, exposure, b.router, exposure, b.query, exposure, b.batch, b.auth, b.persist, b.guard, b.guard, b.dispatcher, b.brokers, b.triggers, b.clickhouse,
		b.demo.id, keyNote, b.demo.key, b.ingest, b.demo.key, b.ingest, b.demo.key, b.router, b.router, b.demo.key, b.router, b.demo.key,
		b.query, b.demo.key, b.query, b.demo.key,
		b.portsFile, kcatCommand(b.brokers), clickhouseClientCommand(b.clickhouse))
}

// kcatCommand prints the events topic from its start, each record's key and headers (the
// CloudEvents attributes, tenant included) and then its data, and exits at its end.
func kcatCommand(brokers string) string {
	return fmt.Sprintf(`kcat -b %s -C -t %s -o beginning -e -q -f 'key %%k %%h\n%%s\n'`, brokers, kafka.DefaultTopic)
}

// clickhouseClientCommand lists the latest traces as queries see them (FINAL: one row per
// trace).
func clickhouseClientCommand(addr string) string {
	host, port, err := net.SplitHostPort(strings.Split(addr, ",")[0])
	if err != nil {
		host, port = addr, "9000"
	}
	return fmt.Sprintf(`clickhouse-client --host %s --port %s --query 'SELECT tenant_id, id, name, timestamp FROM trustplane.traces FINAL ORDER BY timestamp DESC LIMIT 10'`, host, port)
}

// writePorts writes every port of the run into path as shell assignments of the variables
// that choose them (`. .run/ports` in a shell), so that scripts find the running plane.
func writePorts(path string, o options, embeddedKafka, localClickHouse bool) error {
	var b strings.Builder
	b.WriteString("# The ports of the running local plane (deploy/local); removed when it stops.\n")
	line := func(flagName string, port int) { fmt.Fprintf(&b, "%s=%d\n", flagEnv[flagName], port) }
	line("ingest-port", o.ingestPort)
	line("auth-port", o.authPort)
	line("persist-port", o.persistPort)
	line("dispatcher-port", o.dispatcherPort)
	line("router-port", o.routerPort)
	line("query-port", o.queryPort)
	line("batch-port", o.batchPort)
	line("guard-port", o.guardPort)
	if embeddedKafka {
		line("kafka-port", o.kafkaPort)
	} else {
		fmt.Fprintf(&b, "# Kafka: KAFKA_BROKERS=%s, not started by this run\n", o.kafkaBrokers)
	}
	if localClickHouse {
		line("clickhouse-port", o.clickhousePort)
		line("clickhouse-http-port", o.clickhouseHTTPPort)
		line("clickhouse-interserver-port", o.clickhouseInterserverPort)
	} else {
		fmt.Fprintf(&b, "# ClickHouse: CLICKHOUSE_ADDR=%s, not started by this run\n", o.clickhouseAddr)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
