package main

import (
	"fmt"
	"io"
	"strings"
)

// banner is what the runner prints once everything is ready: where each part listens, the demo
// key, and commands to paste.
type banner struct {
	ingest, auth, persist, dispatcher, router string // base URLs
	brokers, triggers, clickhouse             string
	exposed                                   bool // ingest and router listen beyond loopback
	keysFile, keyPath                         string
	demo                                      demoKey
}

func writeBanner(w io.Writer, b banner) {
	exposure := "127.0.0.1 only"
	if b.exposed {
		exposure = "reachable from other machines (-public-host)"
	}
	keyNote := fmt.Sprintf("new; kept in %s, its hash in %s", b.keyPath, b.keysFile)
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
  auth        %s
  persist     %s
  dispatcher  %s  (Kafka %s -> Triggers in %s)
  ClickHouse  %s  (native protocol)

Demo API key (tenant demo, project demo, id %s; %s):
  %s

Send a trace:
  curl -i %s \
    -H 'Authorization: Bearer %s' \
    -H 'Content-Type: application/cloudevents+json' \
    -d '{"specversion":"1.0","id":"'$(date +%%s%%N)'","source":"/demo","type":"io.trustplane.telemetry.trace.v1","data":{"id":"trace-1","timestamp":"'$(date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ)'","name":"hello"}}'

Call an LLM through router (any OpenAI SDK works: base URL %s/v1, the key above):
  curl %s/v1/chat/completions \
    -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' \
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}'

Every child restarts when it exits. Ctrl-C stops everything.
`, b.ingest, exposure, b.router, exposure, b.auth, b.persist, b.dispatcher, b.brokers, b.triggers, b.clickhouse,
		b.demo.id, keyNote, b.demo.key, b.ingest, b.demo.key, b.router, b.router, b.demo.key)
}
