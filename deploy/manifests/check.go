package manifests

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/trustplane/trustplane/functions/auth"
	"github.com/trustplane/trustplane/functions/batch"
	"github.com/trustplane/trustplane/functions/guard"
	"github.com/trustplane/trustplane/functions/ingest"
	"github.com/trustplane/trustplane/functions/persist"
	"github.com/trustplane/trustplane/functions/query"
	"github.com/trustplane/trustplane/functions/router"
	"github.com/trustplane/trustplane/functions/runtime"
	"github.com/trustplane/trustplane/kafka"
)

// Function is a function's Knative Service name and the configuration type its main loads
// with envconfig.
type Function struct {
	Name   string
	Config any // the zero value of the function's Config struct
}

// Functions are the functions the base deploys. Adding one is a Service manifest in
// deploy/base/functions and an entry here, so its environment is checked against its code.
var Functions = []Function{
	{Name: "auth", Config: auth.Config{}},
	{Name: "guard", Config: guard.Config{}},
	{Name: "ingest", Config: ingest.Config{}},
	{Name: "persist", Config: persist.Config{}},
	{Name: "router", Config: router.Config{}},
	{Name: "query", Config: query.Config{}},
	{Name: "batch", Config: batch.Config{}},
}

// Public are the only Services that may be reachable from outside the cluster; every other
// Service must be cluster-local.
var Public = map[string]bool{"ingest": true, "router": true, "query": true}

// platformEnv are variables Knative sets in every function container.
var platformEnv = map[string]bool{"PORT": true}

const (
	visibilityLabel     = "networking.knative.dev/visibility"
	externalTopicAnno   = "kafka.eventing.knative.dev/external.topic"
	minScaleAnno        = "autoscaling.knative.dev/min-scale"
	maxScaleAnno        = "autoscaling.knative.dev/max-scale"
	strimziClusterLabel = "strimzi.io/cluster"
)

// Check cross-checks a rendered overlay against itself, the code and the sizing, and reports
// every problem found.
func Check(s *Set, size Sizing) error {
	c := &checker{s: s}
	c.functions(size)
	c.references()
	c.eventing()
	c.kafka(size)
	c.clickhouse(size)
	c.exposure()
	return errors.Join(c.errs...)
}

type checker struct {
	s    *Set
	errs []error
}

func (c *checker) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

// Service returns the Knative Service ns/name, or nil.
func (s *Set) Service(ns, name string) *servingv1.Service {
	for _, o := range s.Services {
		if o.Namespace == ns && o.Name == name {
			return o
		}
	}
	return nil
}

// ServiceNamed returns the Knative Service of that name in any namespace, or nil.
func (s *Set) ServiceNamed(name string) *servingv1.Service {
	for _, o := range s.Services {
		if o.Name == name {
			return o
		}
	}
	return nil
}

func (s *Set) configMap(ns, name string) *corev1.ConfigMap {
	for _, o := range s.ConfigMaps {
		if o.Namespace == ns && o.Name == name {
			return o
		}
	}
	return nil
}

// secretKeys lists the keys of Secret ns/name, including the Secrets cert-manager will create
// from a Certificate; ok is false when nothing provides the Secret.
func (s *Set) secretKeys(ns, name string) (keys map[string]bool, ok bool) {
	for _, o := range s.Secrets {
		if o.Namespace == ns && o.Name == name {
			keys = map[string]bool{}
			for k := range o.Data {
				keys[k] = true
			}
			for k := range o.StringData {
				keys[k] = true
			}
			return keys, true
		}
	}
	for _, o := range s.Certificates {
		if o.Namespace == ns && o.Spec.SecretName == name {
			return map[string]bool{"tls.crt": true, "tls.key": true, "ca.crt": true}, true
		}
	}
	return nil, false
}

// Env resolves the environment of a Service's first container: its env entries and envFrom
// sources, with ConfigMap and Secret values looked up in the set. Values that cannot be
// resolved are errors, except an optional reference's: Kubernetes leaves its variable unset.
func (s *Set) Env(svc *servingv1.Service) (map[string]string, error) {
	if len(svc.Spec.Template.Spec.Containers) == 0 {
		return nil, fmt.Errorf("service %s has no container", svc.Name)
	}
	return s.containerEnv(svc.Namespace, svc.Spec.Template.Spec.Containers[0])
}

func (s *Set) containerEnv(ns string, ctr corev1.Container) (map[string]string, error) {
	env := map[string]string{}
	var errs []error
	for _, from := range ctr.EnvFrom {
		var kind, name string
		switch {
		case from.ConfigMapRef != nil:
			kind, name = "ConfigMap", from.ConfigMapRef.Name
		case from.SecretRef != nil:
			kind, name = "Secret", from.SecretRef.Name
		default:
			continue
		}
		data, ok := s.envData(kind, ns, name)
		if !ok {
			errs = append(errs, fmt.Errorf("envFrom: %s %s/%s does not exist", kind, ns, name))
			continue
		}
		for k, v := range data {
			env[from.Prefix+k] = v
		}
	}
	for _, e := range ctr.Env {
		var kind, name, key string
		var optional *bool
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
			continue
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			kind, name, key, optional = "ConfigMap", ref.Name, ref.Key, ref.Optional
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			kind, name, key, optional = "Secret", ref.Name, ref.Key, ref.Optional
		default:
			env[e.Name] = "" // fieldRef and resourceFieldRef: set by Kubernetes
			continue
		}
		data, _ := s.envData(kind, ns, name)
		v, ok := data[key]
		if !ok {
			if optional != nil && *optional {
				continue // an optional reference to what is not there leaves the variable unset
			}
			errs = append(errs, fmt.Errorf("env %s: %s %s/%s has no key %q", e.Name, kind, ns, name, key))
		}
		env[e.Name] = v
	}
	return env, errors.Join(errs...)
}

// envData is the data of the ConfigMap or Secret (kind) ns/name as a container's environment
// sees it; ok is false when there is no such object.
func (s *Set) envData(kind, ns, name string) (data map[string]string, ok bool) {
	if kind == "ConfigMap" {
		if cm := s.configMap(ns, name); cm != nil {
			return cm.Data, true
		}
		return nil, false
	}
	for _, sec := range s.Secrets {
		if sec.Namespace == ns && sec.Name == name {
			data = make(map[string]string, len(sec.Data))
			for k, v := range sec.Data {
				data[k] = string(v)
			}
			return data, true
		}
	}
	return nil, false
}

// EnvVars lists the variables an envconfig struct reads and the ones it requires, following
// envconfig's rules for the tags this project uses: `envconfig:"NAME"`, `required:"true"`,
// `ignored:"true"`, and embedded structs whose fields are read without a prefix.
func EnvVars(cfg any) (known map[string]bool, required []string) {
	known = map[string]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() || f.Tag.Get("ignored") == "true" {
				continue
			}
			name := f.Tag.Get("envconfig")
			if f.Anonymous && f.Type.Kind() == reflect.Struct && name == "" {
				walk(f.Type)
				continue
			}
			if name == "" {
				name = strings.ToUpper(f.Name)
			}
			known[name] = true
			if f.Tag.Get("required") == "true" {
				required = append(required, name)
			}
		}
	}
	walk(reflect.TypeOf(cfg))
	sort.Strings(required)
	return known, required
}

// functions checks each function's Service: its environment against its Config type, its
// probes, limits and scaling against the sizing.
func (c *checker) functions(size Sizing) {
	for _, fn := range Functions {
		svc := c.s.ServiceNamed(fn.Name)
		if svc == nil {
			c.errorf("function %s: no Knative Service", fn.Name)
			continue
		}
		env, err := c.s.Env(svc)
		if err != nil {
			c.errorf("function %s: %w", fn.Name, err)
		}
		known, required := EnvVars(fn.Config)
		for _, name := range required {
			if _, ok := env[name]; !ok && !platformEnv[name] {
				c.errorf("function %s: its Config requires %s, which its manifest does not set", fn.Name, name)
			}
		}
		for name := range env {
			if !known[name] {
				c.errorf("function %s: the manifest sets %s, which its Config does not read", fn.Name, name)
			}
		}
	}
	for _, svc := range c.s.Services {
		c.service(svc, size)
	}
}

// readinessTiming checks a readiness probe against how the functions answer it: /readyz
// answers from the state background checks keep, refreshed every runtime.DefaultReadyInterval,
// so a probe needs a short timeout and gains nothing from coming more often than the state
// changes. periodSeconds 0 (Knative's probing every few milliseconds) would be such a probe.
func (c *checker) readinessTiming(name string, p *corev1.Probe) {
	period := time.Duration(p.PeriodSeconds) * time.Second
	if period < runtime.DefaultReadyInterval {
		c.errorf("service %s: readiness probe periodSeconds is %d, want at least the ready checks' interval (%s)", name, p.PeriodSeconds, runtime.DefaultReadyInterval)
	}
	if p.TimeoutSeconds < 1 || p.TimeoutSeconds >= p.PeriodSeconds {
		c.errorf("service %s: readiness probe timeoutSeconds is %d, want at least 1 and shorter than periodSeconds", name, p.TimeoutSeconds)
	}
	if p.FailureThreshold < 1 {
		c.errorf("service %s: readiness probe must set failureThreshold", name)
	}
}

func (c *checker) service(svc *servingv1.Service, size Sizing) {
	name := svc.Name
	tmpl := svc.Spec.Template
	if cc := tmpl.Spec.ContainerConcurrency; cc == nil || *cc == 0 {
		c.errorf("service %s: containerConcurrency must be set", name)
	}
	for _, ctr := range tmpl.Spec.Containers {
		if ctr.Resources.Requests.Cpu().IsZero() || ctr.Resources.Requests.Memory().IsZero() || ctr.Resources.Limits.Memory().IsZero() {
			c.errorf("service %s: container %s needs cpu and memory requests and a memory limit", name, ctr.Name)
		}
		if p := ctr.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" {
			c.errorf("service %s: readiness probe must be GET /readyz", name)
		} else {
			c.readinessTiming(name, p)
		}
		if p := ctr.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
			c.errorf("service %s: liveness probe must be GET /healthz", name)
		} else if p.TimeoutSeconds < 1 || p.PeriodSeconds <= p.TimeoutSeconds {
			c.errorf("service %s: liveness probe must set timeoutSeconds, shorter than its periodSeconds (got %d and %d)", name, p.TimeoutSeconds, p.PeriodSeconds)
		}
	}
	ann := tmpl.Annotations
	if ann["autoscaling.knative.dev/metric"] == "" {
		c.errorf("service %s: autoscaling.knative.dev/metric must be chosen", name)
	}
	for anno, want := range map[string]map[string]int{minScaleAnno: size.MinScale, maxScaleAnno: size.MaxScale} {
		w, sized := want[name]
		if !sized {
			c.errorf("service %s: the sizing has no %s for it", name, anno)
			continue
		}
		if got := ann[anno]; got != strconv.Itoa(w) {
			c.errorf("service %s: %s is %q, the sizing says %d", name, anno, got, w)
		}
	}
}

// references checks that every ConfigMap and Secret a workload or resource names exists.
func (c *checker) references() {
	for _, svc := range c.s.Services {
		c.podRefs("service "+svc.Name, svc.Namespace, svc.Spec.Template.Spec.PodSpec)
	}
	for _, job := range c.s.Jobs {
		c.podRefs("job "+job.Name, job.Namespace, job.Spec.Template.Spec)
	}
	for _, chi := range c.s.ClickHouses {
		for key, raw := range chi.Spec.Configuration.Users {
			var ref CHSecretRef
			if !strings.HasSuffix(key, "/password") || unmarshalStrictJSON(raw, &ref) != nil {
				continue
			}
			c.secretKey("ClickHouseInstallation "+chi.Name+" "+key, chi.Namespace, ref.ValueFrom.SecretKeyRef.Name, ref.ValueFrom.SecretKeyRef.Key)
		}
	}
	for _, dm := range c.s.DomainMappings {
		if dm.Spec.TLS != nil {
			if _, ok := c.s.secretKeys(dm.Namespace, dm.Spec.TLS.SecretName); !ok {
				c.errorf("DomainMapping %s: TLS Secret %s/%s is neither in the overlay nor a Certificate's", dm.Name, dm.Namespace, dm.Spec.TLS.SecretName)
			}
		}
	}
	for _, cert := range c.s.Certificates {
		if cert.Spec.IssuerRef.Kind != "ClusterIssuer" || cert.Spec.IssuerRef.Name == "" {
			c.errorf("Certificate %s: issuerRef must name a ClusterIssuer", cert.Name)
		}
	}
	for _, b := range c.s.Brokers {
		if cfg := b.Spec.Config; cfg != nil && cfg.Kind == "ConfigMap" && c.s.configMap(cfg.Namespace, cfg.Name) == nil {
			c.errorf("Broker %s: config ConfigMap %s/%s does not exist", b.Name, cfg.Namespace, cfg.Name)
		}
	}
	// ConfigMaps are readable by whoever may read the namespace's configuration and are
	// printed by kubectl describe: secrets belong in Secrets.
	for _, cm := range c.s.ConfigMaps {
		for k, v := range cm.Data {
			if secretName(k) || hasPassword(v) {
				c.errorf("ConfigMap %s/%s: %s is a secret: put it in a Secret", cm.Namespace, cm.Name, k)
			}
		}
	}
	// Passwords are compared byte for byte by ClickHouse: a trailing newline from a file
	// written with echo is a password nobody can type.
	for _, sec := range c.s.Secrets {
		for k, v := range sec.Data {
			if strings.Contains(k, "password") && strings.TrimSpace(string(v)) != string(v) {
				c.errorf("Secret %s/%s: %s has leading or trailing whitespace (write it with printf %%s)", sec.Namespace, sec.Name, k)
			}
		}
	}
}

func (c *checker) podRefs(what, ns string, spec corev1.PodSpec) {
	for _, ctr := range spec.Containers {
		if _, err := c.s.containerEnv(ns, ctr); err != nil {
			c.errorf("%s: %w", what, err)
		}
		for _, e := range ctr.Env {
			if e.ValueFrom == nil && e.Value != "" && (secretName(e.Name) || hasPassword(e.Value)) {
				c.errorf("%s: env %s is a secret: take it from a Secret (valueFrom.secretKeyRef), not a literal value", what, e.Name)
			}
		}
	}
	for _, v := range spec.Volumes {
		switch {
		case v.Secret != nil:
			if _, ok := c.s.secretKeys(ns, v.Secret.SecretName); !ok {
				c.errorf("%s: volume %s: Secret %s/%s does not exist", what, v.Name, ns, v.Secret.SecretName)
			}
		case v.ConfigMap != nil:
			if c.s.configMap(ns, v.ConfigMap.Name) == nil {
				c.errorf("%s: volume %s: ConfigMap %s/%s does not exist", what, v.Name, ns, v.ConfigMap.Name)
			}
		}
	}
}

// secretName reports whether an environment variable or key names a secret value, such as
// CLICKHOUSE_PASSWORD or AUTH_PEPPER; a *_FILE variable names the path of a mounted Secret.
func secretName(name string) bool {
	n := strings.ToUpper(name)
	if strings.HasSuffix(n, "_FILE") {
		return false
	}
	for _, w := range []string{"PASSWORD", "PEPPER", "SECRET", "TOKEN", "API_KEY", "APIKEY"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// hasPassword reports whether v is a URL carrying a password (redis://:pw@host, as REDIS_URL
// may), whatever the name of the variable holding it.
func hasPassword(v string) bool {
	u, err := url.Parse(strings.TrimSpace(v))
	if err != nil || u.User == nil {
		return false
	}
	_, set := u.User.Password()
	return set
}

func (c *checker) secretKey(what, ns, name, key string) {
	keys, ok := c.s.secretKeys(ns, name)
	switch {
	case !ok:
		c.errorf("%s: Secret %s/%s does not exist", what, ns, name)
	case !keys[key]:
		c.errorf("%s: Secret %s/%s has no key %q", what, ns, name, key)
	}
}

// eventing checks that every Trigger's Broker, subscriber and dead-letter sink exist.
func (c *checker) eventing() {
	brokers := map[string]bool{}
	for _, b := range c.s.Brokers {
		brokers[b.Namespace+"/"+b.Name] = true
		if b.Spec.Delivery != nil {
			c.deadLetter("Broker "+b.Name, b.Namespace, b.Spec.Delivery.DeadLetterSink)
		}
	}
	for _, t := range c.s.Triggers {
		what := "Trigger " + t.Name
		if !brokers[t.Namespace+"/"+t.Spec.Broker] {
			c.errorf("%s: Broker %s/%s does not exist", what, t.Namespace, t.Spec.Broker)
		}
		ref := t.Spec.Subscriber.Ref
		switch {
		case ref == nil:
			c.errorf("%s: subscriber must be a reference to a Knative Service", what)
		case ref.APIVersion != "serving.knative.dev/v1" || ref.Kind != "Service":
			c.errorf("%s: subscriber %s %s is not a Knative Service", what, ref.APIVersion, ref.Kind)
		case c.s.Service(nsOr(ref.Namespace, t.Namespace), ref.Name) == nil:
			c.errorf("%s: subscriber Service %s/%s does not exist", what, nsOr(ref.Namespace, t.Namespace), ref.Name)
		}
		if t.Spec.Delivery != nil {
			c.deadLetter(what, t.Namespace, t.Spec.Delivery.DeadLetterSink)
		}
	}
}

// deadLetter checks that a delivery has a dead-letter sink and that it is an existing KafkaSink.
func (c *checker) deadLetter(what, ns string, dest *duckv1.Destination) {
	if dest == nil || dest.Ref == nil {
		c.errorf("%s: delivery needs a dead-letter sink", what)
		return
	}
	ref := dest.Ref
	for _, sink := range c.s.KafkaSinks {
		if ref.Kind == "KafkaSink" && sink.Name == ref.Name && sink.Namespace == nsOr(ref.Namespace, ns) {
			return
		}
	}
	c.errorf("%s: dead-letter sink %s %s/%s does not exist", what, ref.Kind, nsOr(ref.Namespace, ns), ref.Name)
}

func nsOr(ns, def string) string {
	if ns != "" {
		return ns
	}
	return def
}

// kafka checks the Strimzi cluster against the sizing, the replication settings against the
// broker count, the topics against kafka/topics.go, and every client's bootstrap address.
func (c *checker) kafka(size Sizing) {
	if len(c.s.Kafkas) != 1 {
		c.errorf("kafka: want one Strimzi Kafka, found %d", len(c.s.Kafkas))
		return
	}
	k := c.s.Kafkas[0]
	brokers, controllers := 0, 0
	for _, p := range c.s.KafkaNodePools {
		if p.Labels[strimziClusterLabel] != k.Name {
			c.errorf("KafkaNodePool %s: label %s must be %s", p.Name, strimziClusterLabel, k.Name)
			continue
		}
		for _, role := range p.Spec.Roles {
			switch role {
			case "broker":
				brokers += int(p.Spec.Replicas)
			case "controller":
				controllers += int(p.Spec.Replicas)
			}
		}
		for _, v := range p.Spec.Storage.Volumes {
			if !sameQuantity(v.Size, size.KafkaVolume) {
				c.errorf("KafkaNodePool %s: volume %d is %s, the sizing says %s", p.Name, v.ID, v.Size, size.KafkaVolume)
			}
			if v.DeleteClaim {
				c.errorf("KafkaNodePool %s: volume %d must keep its claim (deleteClaim: false)", p.Name, v.ID)
			}
		}
	}
	if brokers != size.KafkaBrokers {
		c.errorf("kafka: %d brokers, the sizing says %d", brokers, size.KafkaBrokers)
	}
	if controllers < 3 || controllers%2 == 0 {
		c.errorf("kafka: %d KRaft controllers; want an odd number, at least 3", controllers)
	}
	cfg := k.Spec.Kafka.Config
	rf := c.replicationFactor("Kafka "+k.Name+" default.replication.factor", cfg, "default.replication.factor", brokers)
	c.replicationFactor("Kafka "+k.Name+" offsets.topic.replication.factor", cfg, "offsets.topic.replication.factor", brokers)
	c.replicationFactor("Kafka "+k.Name+" transaction.state.log.replication.factor", cfg, "transaction.state.log.replication.factor", brokers)
	c.minISR("Kafka "+k.Name, cfg, rf)

	for _, t := range c.s.KafkaTopics {
		what := "KafkaTopic " + t.Name
		if t.Labels[strimziClusterLabel] != k.Name || t.Namespace != k.Namespace {
			c.errorf("%s: must be in namespace %s with label %s=%s", what, k.Namespace, strimziClusterLabel, k.Name)
		}
		if int(t.Spec.Replicas) > brokers {
			c.errorf("%s: replicas %d > %d brokers", what, t.Spec.Replicas, brokers)
		}
		c.minISR(what, t.Spec.Config, int(t.Spec.Replicas))
	}
	for _, want := range []kafka.Topic{kafka.EventsTopic(), kafka.DeadLetterTopic()} {
		c.topic(want)
	}

	bootstrap := ""
	for _, l := range k.Spec.Kafka.Listeners {
		if l.Type == "internal" && !l.TLS {
			bootstrap = net.JoinHostPort(fmt.Sprintf("%s-kafka-bootstrap.%s.svc", k.Name, k.Namespace), strconv.Itoa(int(l.Port)))
		}
	}
	if bootstrap == "" {
		c.errorf("Kafka %s: no internal plain listener for the Broker and the functions", k.Name)
		return
	}
	for _, cm := range c.s.ConfigMaps {
		if v, ok := cm.Data["bootstrap.servers"]; ok && v != bootstrap {
			c.errorf("ConfigMap %s: bootstrap.servers %q, the Kafka cluster is %q", cm.Name, v, bootstrap)
		}
		if v, ok := cm.Data["default.topic.replication.factor"]; ok {
			if n, err := strconv.Atoi(v); err != nil || n > brokers {
				c.errorf("ConfigMap %s: default.topic.replication.factor %q must be a number <= %d brokers", cm.Name, v, brokers)
			}
		}
		if v, ok := cm.Data["KAFKA_BROKERS"]; ok && v != bootstrap {
			c.errorf("ConfigMap %s: KAFKA_BROKERS %q, the Kafka cluster is %q", cm.Name, v, bootstrap)
		}
		if v, ok := cm.Data["KAFKA_TOPIC"]; ok && v != kafka.DefaultTopic {
			c.errorf("ConfigMap %s: KAFKA_TOPIC %q, the Broker's topic is %q", cm.Name, v, kafka.DefaultTopic)
		}
	}
	for _, sink := range c.s.KafkaSinks {
		if len(sink.Spec.BootstrapServers) != 1 || sink.Spec.BootstrapServers[0] != bootstrap {
			c.errorf("KafkaSink %s: bootstrapServers %v, the Kafka cluster is %q", sink.Name, sink.Spec.BootstrapServers, bootstrap)
		}
		if rf := sink.Spec.ReplicationFactor; rf != nil && int(*rf) > brokers {
			c.errorf("KafkaSink %s: replicationFactor %d > %d brokers", sink.Name, *rf, brokers)
		}
		if sink.Spec.Topic != kafka.DefaultDeadLetterTopic {
			c.errorf("KafkaSink %s: topic %q, the dead-letter topic is %q", sink.Name, sink.Spec.Topic, kafka.DefaultDeadLetterTopic)
		}
	}
	// The functions produce to the events topic directly; the Broker must read that topic.
	for _, b := range c.s.Brokers {
		if got := b.Annotations[externalTopicAnno]; got != kafka.DefaultTopic {
			c.errorf("Broker %s: annotation %s is %q, want the events topic %q", b.Name, externalTopicAnno, got, kafka.DefaultTopic)
		}
	}
}

func (c *checker) replicationFactor(what string, cfg Values, key string, brokers int) int {
	v, ok := cfg.String(key)
	if !ok {
		c.errorf("%s: not set", what)
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > brokers {
		c.errorf("%s: %q must be between 1 and the %d brokers", what, v, brokers)
	}
	return n
}

// minISR checks that min.insync.replicas is set, at least 2 (an acknowledged write is on two
// brokers) and below the replication factor (one broker can be lost without refusing writes).
func (c *checker) minISR(what string, cfg Values, rf int) {
	v, ok := cfg.String("min.insync.replicas")
	n, err := strconv.Atoi(v)
	if !ok || err != nil || n < 2 || n >= rf {
		c.errorf("%s: min.insync.replicas %q must be at least 2 and below the replication factor %d", what, v, rf)
	}
}

func (c *checker) topic(want kafka.Topic) {
	for _, t := range c.s.KafkaTopics {
		if t.Spec.TopicName != want.Name {
			continue
		}
		what := "KafkaTopic " + t.Name
		if t.Name != want.Name {
			c.errorf("%s: metadata.name must equal topicName %q", what, want.Name)
		}
		if t.Spec.Partitions != want.Partitions || t.Spec.Replicas != want.ReplicationFactor {
			c.errorf("%s: %d partitions x %d replicas, kafka/topics.go says %d x %d", what, t.Spec.Partitions, t.Spec.Replicas, want.Partitions, want.ReplicationFactor)
		}
		for k, v := range want.Config {
			if got, _ := t.Spec.Config.String(k); got != v {
				c.errorf("%s: %s is %q, kafka/topics.go says %q", what, k, got, v)
			}
		}
		for k := range t.Spec.Config {
			if _, ok := want.Config[k]; !ok {
				c.errorf("%s: %s is not in kafka/topics.go", what, k)
			}
		}
		return
	}
	c.errorf("kafka: no KafkaTopic for topic %s", want.Name)
}

// clickhouse checks the installation against the sizing, persist's settings against the
// installation, and the users' privileges.
func (c *checker) clickhouse(size Sizing) {
	if len(c.s.ClickHouses) != 1 || len(c.s.Keepers) != 1 {
		c.errorf("clickhouse: want one ClickHouseInstallation and one ClickHouseKeeperInstallation, found %d and %d", len(c.s.ClickHouses), len(c.s.Keepers))
		return
	}
	chi, chk := c.s.ClickHouses[0], c.s.Keepers[0]
	cluster, err := ClusterOf(chi)
	if err != nil {
		c.errorf("%w", err)
		return
	}
	if cluster.Shards != size.ClickHouseShards || cluster.Replicas != size.ClickHouseReplicas {
		c.errorf("ClickHouseInstallation %s: %d shards x %d replicas, the sizing says %d x %d", chi.Name, cluster.Shards, cluster.Replicas, size.ClickHouseShards, size.ClickHouseReplicas)
	}
	if got := chi.Spec.Templates.DataVolume(chi.Spec.Defaults.Templates.DataVolumeClaimTemplate); !sameQuantity(got, size.ClickHouseVolume) {
		c.errorf("ClickHouseInstallation %s: data volume %q, the sizing says %s", chi.Name, got, size.ClickHouseVolume)
	}
	if len(chk.Spec.Configuration.Clusters) != 1 || chk.Spec.Configuration.Clusters[0].Layout.ReplicasCount != size.KeeperNodes {
		c.errorf("ClickHouseKeeperInstallation %s: want one cluster of %d nodes", chk.Name, size.KeeperNodes)
	}
	if got := chk.Spec.Templates.DataVolume(chk.Spec.Defaults.Templates.DataVolumeClaimTemplate); !sameQuantity(got, size.KeeperVolume) {
		c.errorf("ClickHouseKeeperInstallation %s: data volume %q, the sizing says %s", chk.Name, got, size.KeeperVolume)
	}
	keeper := fmt.Sprintf("keeper-%s.%s.svc", chk.Name, chk.Namespace)
	for _, n := range chi.Spec.Configuration.ZooKeeper.Nodes {
		if n.Host != keeper || n.Port != 2181 {
			c.errorf("ClickHouseInstallation %s: zookeeper node %s:%d, the Keeper service is %s:2181", chi.Name, n.Host, n.Port, keeper)
		}
	}
	if len(chi.Spec.Configuration.ZooKeeper.Nodes) == 0 {
		c.errorf("ClickHouseInstallation %s: no zookeeper nodes (replicated tables need Keeper)", chi.Name)
	}

	// persist and the migrate Job connect to this installation, as its cluster.
	addr := net.JoinHostPort(fmt.Sprintf("clickhouse-%s.%s.svc", chi.Name, chi.Namespace), "9000")
	for _, cm := range c.s.ConfigMaps {
		if v, ok := cm.Data["CLICKHOUSE_ADDR"]; ok && v != addr {
			c.errorf("ConfigMap %s: CLICKHOUSE_ADDR %q, the installation's service is %q", cm.Name, v, addr)
		}
		if v, ok := cm.Data["CLICKHOUSE_CLUSTER"]; ok && v != cluster.Name {
			c.errorf("ConfigMap %s: CLICKHOUSE_CLUSTER %q, the installation's cluster is %q", cm.Name, v, cluster.Name)
		}
	}
	users := chi.Spec.Configuration.Users
	db := "trustplane"
	if svc := c.s.ServiceNamed("persist"); svc != nil {
		if env, _ := c.s.Env(svc); env["CLICKHOUSE_DATABASE"] != "" {
			db = env["CLICKHOUSE_DATABASE"]
		}
	}
	c.grants(chi.Name, users, "ingest", "INSERT", db)
	c.grants(chi.Name, users, "query", "SELECT", db)
	// readonly 2 reads and lets the query function set its per-statement limits
	// (max_execution_time, max_rows_to_read, ...); 1 would refuse those settings too.
	if ro := chi.Spec.Configuration.Profiles["query/readonly"]; ro != "1" && ro != "2" {
		c.errorf("ClickHouseInstallation %s: the query user's profile must be readonly", chi.Name)
	}
	if svc := c.s.ServiceNamed("persist"); svc != nil {
		if env, _ := c.s.Env(svc); env["CLICKHOUSE_USER"] != "ingest" || env["MIGRATE_ON_START"] != "false" {
			c.errorf("service persist: must connect as the insert-only user ingest with MIGRATE_ON_START=false")
		}
	}
}

// grants checks that a user's only grants are privilege on db's tables: not on other databases
// (*.*, system), not with a second privilege, not WITH GRANT OPTION.
func (c *checker) grants(chi string, users map[string]json.RawMessage, user, privilege, db string) {
	var grants []string
	if err := unmarshalStrictJSON(users[user+"/grants/query"], &grants); err != nil || len(grants) == 0 {
		c.errorf("ClickHouseInstallation %s: user %s needs grants/query", chi, user)
		return
	}
	only := regexp.MustCompile(`^GRANT ` + privilege + ` ON ` + regexp.QuoteMeta(db) + `\.(\*|[a-z_][a-z0-9_]*)$`)
	for _, g := range grants {
		if !only.MatchString(g) {
			c.errorf("ClickHouseInstallation %s: user %s may only have \"GRANT %s ON %s.*\" grants, has %q", chi, user, privilege, db, g)
		}
	}
}

// exposure checks that only the public functions are reachable from outside, and that every
// Service has an egress NetworkPolicy of its own.
func (c *checker) exposure() {
	for _, svc := range c.s.Services {
		local := svc.Labels[visibilityLabel] == "cluster-local"
		if !local && !Public[svc.Name] {
			c.errorf("service %s: must be cluster-local (label %s: cluster-local)", svc.Name, visibilityLabel)
		}
		covered := false
		for _, np := range c.s.NetworkPolicies {
			if np.Namespace == svc.Namespace && np.Spec.PodSelector.MatchLabels["serving.knative.dev/service"] == svc.Name {
				covered = true
			}
		}
		if !covered {
			c.errorf("service %s: no NetworkPolicy selects it by serving.knative.dev/service", svc.Name)
		}
	}
	for _, dm := range c.s.DomainMappings {
		if !Public[dm.Spec.Ref.Name] || c.s.Service(dm.Spec.Ref.Namespace, dm.Spec.Ref.Name) == nil {
			c.errorf("DomainMapping %s: must map to an existing public Service, not %q", dm.Name, dm.Spec.Ref.Name)
		}
		if dm.Spec.TLS == nil {
			c.errorf("DomainMapping %s: needs TLS", dm.Name)
		}
	}
}

func sameQuantity(a, b string) bool {
	qa, err1 := resource.ParseQuantity(a)
	qb, err2 := resource.ParseQuantity(b)
	return err1 == nil && err2 == nil && qa.Cmp(qb) == 0
}
