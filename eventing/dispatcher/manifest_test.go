package dispatcher

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustplane/trustplane/kafka"
)

func TestLoadProjectManifests(t *testing.T) {
	m, err := LoadManifests(context.Background(), "../config")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Brokers) != 1 || len(m.KafkaSinks) != 1 || len(m.ConfigMaps) != 1 {
		t.Fatalf("got %d brokers, %d sinks, %d configmaps; want 1 of each", len(m.Brokers), len(m.KafkaSinks), len(m.ConfigMaps))
	}
	triggers := map[string]int{}
	for i, tr := range m.Triggers {
		triggers[tr.Name] = i
	}
	for _, name := range []string{"persist", "persist-findings"} {
		if _, ok := triggers[name]; !ok {
			t.Fatalf("no Trigger %s among %v", name, triggers)
		}
	}
	tr := m.Triggers[triggers["persist"]]
	if tr.Name != "persist" || tr.Spec.Broker != "default" || tr.Spec.Subscriber.Ref.Name != "persist" ||
		tr.Spec.Subscriber.Ref.Kind != "Service" || tr.Spec.Subscriber.Ref.APIVersion != "serving.knative.dev/v1" {
		t.Fatalf("unexpected persist Trigger: %+v", tr.Spec)
	}
	// SetDefaults ran: the subscriber ref got the Trigger's namespace.
	if tr.Spec.Subscriber.Ref.Namespace != tr.Namespace {
		t.Fatalf("subscriber namespace not defaulted: %q", tr.Spec.Subscriber.Ref.Namespace)
	}
	if got := m.Brokers[0].Annotations["eventing.knative.dev/broker.class"]; got != "Kafka" {
		t.Fatalf("broker class = %q", got)
	}
	if m.KafkaSinks[0].Spec.Topic != kafka.DefaultDeadLetterTopic {
		t.Fatalf("dead-letter KafkaSink topic = %q, want %q", m.KafkaSinks[0].Spec.Topic, kafka.DefaultDeadLetterTopic)
	}
	if got := m.ConfigMaps[0].Data["default.topic.replication.factor"]; got != "3" {
		t.Fatalf("replication factor = %q", got)
	}
	dl := tr.Spec.Delivery.DeadLetterSink.Ref
	if dl.Kind != "KafkaSink" || dl.Name != m.KafkaSinks[0].Name || dl.APIVersion != kafkaSinkAPIVersion {
		t.Fatalf("deadLetterSink does not name the KafkaSink: %+v", dl)
	}

	// Every telemetry type reaches persist; other types do not.
	f, err := NewFilter(tr.Spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"io.trustplane.telemetry.trace.v1", "io.trustplane.telemetry.observation.v1", "io.trustplane.telemetry.score.v1"} {
		if !f.Match(event(typ, nil)) {
			t.Errorf("persist does not take %s", typ)
		}
	}
	if f.Match(event("io.trustplane.security.finding.v1", nil)) {
		t.Error("persist's telemetry Trigger takes io.trustplane.security.finding.v1")
	}
	// The findings guard replies with reach persist by a Trigger of their own.
	fr := m.Triggers[triggers["persist-findings"]]
	ff, err := NewFilter(fr.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if fr.Spec.Subscriber.Ref.Name != "persist" || !ff.Match(event("io.trustplane.security.finding.v1", nil)) || ff.Match(event("io.trustplane.telemetry.trace.v1", nil)) {
		t.Errorf("persist-findings Trigger: %+v", fr.Spec)
	}
}

const validTrigger = `apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: t1
spec:
  broker: default
  filters:
    - cesql: "type LIKE 'io.trustplane.%'"
  subscriber:
    ref:
      apiVersion: serving.knative.dev/v1
      kind: Service
      name: persist
`

func TestDecodeManifestsErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"misspelt spec field", strings.Replace(validTrigger, "filters:", "filtres:", 1), `unknown field "filtres"`},
		{"misspelt nested field", strings.Replace(validTrigger, "    ref:", "    reff:", 1), `unknown field "reff"`},
		{"no broker", strings.Replace(validTrigger, "  broker: default\n", "", 1), "missing field(s): spec.broker"},
		{"invalid cesql", strings.Replace(validTrigger, "type LIKE 'io.trustplane.%'", "type LIKE", 1), "invalid value: type LIKE: spec.filters[0].cesql"},
		{"two dialects", strings.Replace(validTrigger, "    - cesql:", "    - exact: {type: a}\n      cesql:", 1), "multiple dialects"},
		{"bad attribute name", strings.Replace(validTrigger, "    - cesql: \"type LIKE 'io.trustplane.%'\"", "    - exact: {Type: a}", 1), "Attribute name must start with a letter"},
		{"bad backoff policy", validTrigger + "  delivery:\n    backoffPolicy: sometimes\n", "invalid value: sometimes: spec.delivery.backoffPolicy"},
		{"bad timeout", validTrigger + "  delivery:\n    timeout: 30s\n", "invalid value: 30s: spec.delivery.timeout"},
		{"no kind", "apiVersion: v1\nmetadata: {name: x}\n", "apiVersion and kind are required"},
		{"not yaml", "apiVersion: [v1\n", "invalid YAML"},
		{"misspelt broker field", "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: b}\nspec: {delivry: {}}\n", `unknown field "delivry"`},
		{"misspelt kafkasink field", "apiVersion: eventing.kafka.knative.dev/v1alpha1\nkind: KafkaSink\nmetadata: {name: s}\nspec: {topik: x, bootstrapServers: [a]}\n", `unknown field "topik"`},
		{"kafkasink without topic", "apiVersion: eventing.kafka.knative.dev/v1alpha1\nkind: KafkaSink\nmetadata: {name: s}\nspec: {bootstrapServers: [a]}\n", "spec.topic is required"},
		{"misspelt configmap field", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndatas: {a: b}\n", `unknown field "datas"`},
		{"trigger without name", strings.Replace(validTrigger, "  name: t1\n", "", 1), "metadata.name is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeManifests(context.Background(), "test.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error; want one containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "test.yaml: document 1: ") {
				t.Fatalf("error %q does not say where", err)
			}
		})
	}
}

func TestDecodeMultiDocument(t *testing.T) {
	doc := "# leading comment\n---\n" + validTrigger + "--- # second\n" +
		strings.Replace(validTrigger, "name: t1", "name: t2", 1) +
		"---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: ignored}\nspec: {whatever: 1}\n---\n"
	m, err := DecodeManifests(context.Background(), "multi.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Triggers) != 2 || m.Triggers[0].Name != "t1" || m.Triggers[1].Name != "t2" {
		t.Fatalf("triggers = %v", m.Triggers)
	}
	if m.Triggers[0].Namespace != "default" {
		t.Fatalf("namespace = %q, want default", m.Triggers[0].Namespace)
	}
	bad := doc + strings.Replace(validTrigger, "broker:", "brokr:", 1)
	_, err = DecodeManifests(context.Background(), "multi.yaml", []byte(bad))
	if err == nil || !strings.Contains(err.Error(), "multi.yaml: document 5:") {
		t.Fatalf("error = %v, want one naming document 5", err)
	}
}

func TestLoadManifestsDuplicateTrigger(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a.yaml", "b.yml"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(validTrigger), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Not a manifest: ignored by extension.
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("# not yaml: ["), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadManifests(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), "Trigger default/t1 is defined twice") {
		t.Fatalf("error = %v", err)
	}
	if _, err := LoadManifests(context.Background(), filepath.Join(dir, "missing.yaml")); err == nil {
		t.Fatal("missing file: no error")
	}
	m, err := LoadManifests(context.Background(), filepath.Join(dir, "a.yaml"))
	if err != nil || len(m.Triggers) != 1 {
		t.Fatalf("single file: %v, %v", m, err)
	}
}

func FuzzDecodeManifests(f *testing.F) {
	files, err := filepath.Glob("../config/*.yaml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no Trigger manifests to seed from in ../config (%v)", err)
	}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(validTrigger))
	f.Add([]byte(strings.Replace(validTrigger, "    - cesql: \"type LIKE 'io.trustplane.%'\"",
		"    - any: [{not: {suffix: {source: x}}}, {all: [{exact: {type: a, id: b}}]}]", 1)))
	f.Add([]byte("---\n---\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeManifests(context.Background(), "fuzz.yaml", data)
		if err != nil {
			return
		}
		for _, tr := range m.Triggers {
			if tr.Name == "" {
				t.Fatal("decoded a Trigger without a name")
			}
			if fe := tr.Validate(context.Background()); fe != nil && !strings.Contains(fe.Error(), "timeout") {
				// Validation passed once with the feature defaults; it must stay valid.
				t.Fatalf("decoded Trigger no longer validates: %v", fe)
			}
			// Compiling the filters must not panic; a CESQL error is a clean error.
			if flt, err := NewFilter(tr.Spec); err == nil {
				flt.Match(event("x", nil))
			}
		}
	})
}
