package clickhouse_test

import (
	"encoding/xml"
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestSystemLogsHaveTTLs checks that the installation gives each of ClickHouse's own log
// tables a TTL, in a config.d file that is well-formed XML.
func TestSystemLogsHaveTTLs(t *testing.T) {
	raw, err := os.ReadFile("operator/200-clickhouse.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var chi struct {
		Spec struct {
			Configuration struct {
				Files map[string]string `json:"files"`
			} `json:"configuration"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &chi); err != nil {
		t.Fatal(err)
	}
	file, ok := chi.Spec.Configuration.Files["config.d/system-log-ttl.xml"]
	if !ok {
		t.Fatal("no config.d/system-log-ttl.xml")
	}
	var doc struct {
		XMLName xml.Name
		Logs    []struct {
			XMLName xml.Name
			TTL     string `xml:"ttl"`
		} `xml:",any"`
	}
	if err := xml.Unmarshal([]byte(file), &doc); err != nil || doc.XMLName.Local != "clickhouse" {
		t.Fatalf("not a <clickhouse> config file: %v", err)
	}
	have := map[string]string{}
	for _, l := range doc.Logs {
		have[l.XMLName.Local] = l.TTL
	}
	for _, log := range []string{"query_log", "query_thread_log", "query_views_log", "part_log", "trace_log", "text_log",
		"metric_log", "asynchronous_metric_log", "session_log", "processors_profile_log", "error_log", "opentelemetry_span_log"} {
		if ttl := have[log]; !strings.Contains(ttl, "INTERVAL") || !strings.HasSuffix(ttl, "DELETE") {
			t.Errorf("%s: TTL %q", log, ttl)
		}
	}
}
