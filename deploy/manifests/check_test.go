package manifests_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trustplane/trustplane/deploy/manifests"
)

// Each check fails on the breakage it is there for: a mutation of the dev overlay's objects
// must produce an error naming the problem.
func TestCheckCatchesBreakage(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(s *manifests.Set)
		want   string
	}{
		{"trigger subscriber missing", func(s *manifests.Set) {
			s.Triggers[0].Spec.Subscriber.Ref.Name = "nobody"
		}, "subscriber Service trustplane/nobody does not exist"},
		{"dead-letter sink missing", func(s *manifests.Set) {
			s.KafkaSinks = nil
		}, "dead-letter sink KafkaSink"},
		{"required env var missing", func(s *manifests.Set) {
			delete(configMap(t, s, "ingest-config").Data, "KAFKA_BROKERS")
		}, "function ingest: its Config requires KAFKA_BROKERS"},
		{"env var the code does not read", func(s *manifests.Set) {
			configMap(t, s, "persist-config").Data["PERSIST_BATCH_WAIT"] = "1s"
		}, "sets PERSIST_BATCH_WAIT, which its Config does not read"},
		{"secret missing", func(s *manifests.Set) {
			s.Secrets = dropSecret(s, "clickhouse-ingest")
		}, "Secret trustplane/clickhouse-ingest has no key"},
		{"secret volume missing", func(s *manifests.Set) {
			s.Secrets = dropSecret(s, "auth-keys")
		}, "Secret trustplane/auth-keys does not exist"},
		{"clickhouse password secret missing", func(s *manifests.Set) {
			s.Secrets = dropSecret(s, "clickhouse-users")
		}, "Secret clickhouse/clickhouse-users does not exist"},
		{"password with a newline", func(s *manifests.Set) {
			secret(t, s, "clickhouse-ingest").Data["password"] = []byte("pw\n")
		}, "has leading or trailing whitespace"},
		{"password in a ConfigMap", func(s *manifests.Set) {
			configMap(t, s, "persist-config").Data["CLICKHOUSE_PASSWORD"] = "pw"
		}, "ConfigMap trustplane/persist-config: CLICKHOUSE_PASSWORD is a secret"},
		{"pepper as a literal env value", func(s *manifests.Set) {
			ctr := &s.ServiceNamed("auth").Spec.Template.Spec.Containers[0]
			ctr.Env = append(ctr.Env, corev1.EnvVar{Name: "AUTH_PEPPER", Value: strings.Repeat("p", 32)})
		}, "service auth: env AUTH_PEPPER is a secret"},
		{"migrate password as a literal env value", func(s *manifests.Set) {
			ctr := &s.Jobs[0].Spec.Template.Spec.Containers[0]
			for i := range ctr.Env {
				if ctr.Env[i].Name == "CLICKHOUSE_PASSWORD" {
					ctr.Env[i] = corev1.EnvVar{Name: "CLICKHOUSE_PASSWORD", Value: "pw"}
				}
			}
		}, "job trustplane-migrate: env CLICKHOUSE_PASSWORD is a secret"},
		{"URL with a password in a ConfigMap", func(s *manifests.Set) {
			configMap(t, s, "router-config").Data["REDIS_URL"] = "redis://:pw@redis.trustplane:6379/0"
		}, "ConfigMap trustplane/router-config: REDIS_URL is a secret"},
		{"URL with a password as a literal env value", func(s *manifests.Set) {
			ctr := &s.ServiceNamed("router").Spec.Template.Spec.Containers[0]
			ctr.Env = append(ctr.Env, corev1.EnvVar{Name: "REDIS_URL", Value: "redis://default:pw@redis.trustplane:6379"})
		}, "service router: env REDIS_URL is a secret"},
		{"replication factor above brokers", func(s *manifests.Set) {
			s.KafkaTopics[0].Spec.Replicas = 4
		}, "replicas 4 > 3 brokers"},
		{"broker count off the sizing", func(s *manifests.Set) {
			s.KafkaNodePools[0].Spec.Replicas = 1
		}, "1 brokers, the sizing says 3"},
		{"kafka volume off the sizing", func(s *manifests.Set) {
			s.KafkaNodePools[0].Spec.Storage.Volumes[0].Size = "5Gi"
		}, "volume 0 is 5Gi, the sizing says 10Gi"},
		{"topic differs from kafka/topics.go", func(s *manifests.Set) {
			s.KafkaTopics[0].Spec.Partitions = 6
		}, "kafka/topics.go says"},
		{"clickhouse layout off the sizing", func(s *manifests.Set) {
			s.ClickHouses[0].Spec.Configuration.Clusters[0].Layout.ShardsCount = 1
		}, "1 shards x 2 replicas, the sizing says 2 x 2"},
		{"persist on another cluster name", func(s *manifests.Set) {
			configMap(t, s, "persist-config").Data["CLICKHOUSE_CLUSTER"] = "other"
		}, `CLICKHOUSE_CLUSTER "other"`},
		{"ingest user may select", func(s *manifests.Set) {
			s.ClickHouses[0].Spec.Configuration.Users["ingest/grants/query"] = []byte(`["GRANT INSERT, SELECT ON trustplane.*"]`)
		}, "user ingest may only have"},
		{"grant on every database", func(s *manifests.Set) {
			s.ClickHouses[0].Spec.Configuration.Users["ingest/grants/query"] = []byte(`["GRANT INSERT ON *.*"]`)
		}, `user ingest may only have "GRANT INSERT ON trustplane.*" grants, has "GRANT INSERT ON *.*"`},
		{"grant with grant option", func(s *manifests.Set) {
			s.ClickHouses[0].Spec.Configuration.Users["query/grants/query"] = []byte(`["GRANT SELECT ON trustplane.* WITH GRANT OPTION"]`)
		}, "user query may only have"},
		{"grant on another database", func(s *manifests.Set) {
			s.ClickHouses[0].Spec.Configuration.Users["query/grants/query"] = []byte(`["GRANT SELECT ON system.*"]`)
		}, "user query may only have"},
		{"wrong bootstrap address", func(s *manifests.Set) {
			configMap(t, s, "ingest-config").Data["KAFKA_BROKERS"] = "kafka:9092"
		}, `KAFKA_BROKERS "kafka:9092"`},
		{"broker on its own topic", func(s *manifests.Set) {
			delete(s.Brokers[0].Annotations, "kafka.eventing.knative.dev/external.topic")
		}, "want the events topic"},
		{"internal function made public", func(s *manifests.Set) {
			delete(s.ServiceNamed("persist").Labels, "networking.knative.dev/visibility")
		}, "service persist: must be cluster-local"},
		{"min-scale off the sizing", func(s *manifests.Set) {
			s.ServiceNamed("ingest").Spec.Template.Annotations["autoscaling.knative.dev/min-scale"] = "0"
		}, `min-scale is "0", the sizing says 1`},
		{"no readiness probe", func(s *manifests.Set) {
			s.ServiceNamed("auth").Spec.Template.Spec.Containers[0].ReadinessProbe = nil
		}, "service auth: readiness probe must be GET /readyz"},
		{"readiness probed faster than the state changes", func(s *manifests.Set) {
			s.ServiceNamed("persist").Spec.Template.Spec.Containers[0].ReadinessProbe.PeriodSeconds = 1
		}, "service persist: readiness probe periodSeconds is 1, want at least"},
		{"readiness probe timeout as long as its period", func(s *manifests.Set) {
			s.ServiceNamed("ingest").Spec.Template.Spec.Containers[0].ReadinessProbe.TimeoutSeconds = 5
		}, "service ingest: readiness probe timeoutSeconds is 5"},
		{"liveness probe without a timeout", func(s *manifests.Set) {
			s.ServiceNamed("router").Spec.Template.Spec.Containers[0].LivenessProbe.TimeoutSeconds = 0
		}, "service router: liveness probe must set timeoutSeconds"},
		{"service without network policy", func(s *manifests.Set) {
			s.NetworkPolicies = nil
		}, "no NetworkPolicy selects it"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set := render(t, "dev")
			tc.mutate(set)
			err := manifests.Check(set, manifests.Sizes["dev"])
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant an error containing %q", err, tc.want)
			}
		})
	}
}

// Decoding is strict and validates Knative objects like their webhooks.
func TestDecodeRejects(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"unknown field in a Knative Service", `
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: x, namespace: trustplane}
spec:
  template:
    spec:
      containerz: []
`, "unknown field"},
		{"bad autoscaling annotation", `
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: x, namespace: trustplane}
spec:
  template:
    metadata:
      annotations: {autoscaling.knative.dev/min-scale: "-1"}
    spec:
      containers: [{image: ko://github.com/trustplane/trustplane/functions/auth/cmd/auth}]
`, "min-scale"},
		{"unknown field in a KafkaTopic", `
apiVersion: kafka.strimzi.io/v1beta2
kind: KafkaTopic
metadata: {name: t}
spec: {topicName: t, partitions: 1, replica: 3}
`, "unknown field"},
		{"unknown field in a ClickHouseInstallation", `
apiVersion: clickhouse.altinity.com/v1
kind: ClickHouseInstallation
metadata: {name: c}
spec: {configuration: {clusterz: []}}
`, "unknown field"},
		{"trigger without broker", `
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: t, namespace: trustplane}
spec:
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: persist}}
`, "broker"},
		{"unknown kind", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
`, "unknown kind"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := manifests.Decode(context.Background(), []byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func configMap(t *testing.T, s *manifests.Set, name string) *corev1.ConfigMap {
	t.Helper()
	for _, cm := range s.ConfigMaps {
		if cm.Name == name {
			return cm
		}
	}
	t.Fatalf("no ConfigMap %s", name)
	return nil
}

func secret(t *testing.T, s *manifests.Set, name string) *corev1.Secret {
	t.Helper()
	for _, sec := range s.Secrets {
		if sec.Name == name {
			return sec
		}
	}
	t.Fatalf("no Secret %s", name)
	return nil
}

func dropSecret(s *manifests.Set, name string) []*corev1.Secret {
	var out []*corev1.Secret
	for _, sec := range s.Secrets {
		if sec.Name != name {
			out = append(out, sec)
		}
	}
	return out
}

// query's REDIS_URL is an optional reference to the Secret limits-redis, which the install does
// not hold: the variable is unset (limits per replica), not an error; once the Secret exists
// query reads the URL from it; a required reference to a missing Secret stays an error.
func TestOptionalSecretReferenceMayBeMissing(t *testing.T) {
	s := render(t, "dev")
	query := s.ServiceNamed("query")
	env, err := s.Env(query)
	if err != nil {
		t.Fatal(err)
	}
	if v, set := env["REDIS_URL"]; set {
		t.Fatalf("REDIS_URL set to %q without the Secret limits-redis", v)
	}
	s.Secrets = append(s.Secrets, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "limits-redis", Namespace: "trustplane"},
		Data: map[string][]byte{"url": []byte("redis://:pw@redis.trustplane:6379/0")}})
	if env, err := s.Env(query); err != nil || env["REDIS_URL"] != "redis://:pw@redis.trustplane:6379/0" {
		t.Fatalf("with the Secret: REDIS_URL %q, %v", env["REDIS_URL"], err)
	}
	s.Secrets = dropSecret(s, "limits-redis")
	for i, e := range query.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "REDIS_URL" {
			query.Spec.Template.Spec.Containers[0].Env[i].ValueFrom.SecretKeyRef.Optional = nil
		}
	}
	if _, err := s.Env(query); err == nil || !strings.Contains(err.Error(), `env REDIS_URL: Secret trustplane/limits-redis has no key "url"`) {
		t.Fatalf("a required reference to a missing Secret: %v", err)
	}
}
