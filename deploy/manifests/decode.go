package manifests

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	netv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"
	"knative.dev/pkg/apis"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	servingv1beta1 "knative.dev/serving/pkg/apis/serving/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/trustplane/trustplane/eventing/dispatcher"
)

// Set is every object of one rendered overlay, by kind. A field's kind tag is the
// "apiVersion Kind" of the documents Decode puts in it. Knative objects are defaulted.
type Set struct {
	Namespaces          []*corev1.Namespace               `kind:"v1 Namespace"`
	ConfigMaps          []*corev1.ConfigMap               `kind:"v1 ConfigMap"`
	Secrets             []*corev1.Secret                  `kind:"v1 Secret"`
	Jobs                []*batchv1.Job                    `kind:"batch/v1 Job"`
	NetworkPolicies     []*networkingv1.NetworkPolicy     `kind:"networking.k8s.io/v1 NetworkPolicy"`
	Services            []*servingv1.Service              `kind:"serving.knative.dev/v1 Service"`
	DomainMappings      []*servingv1beta1.DomainMapping   `kind:"serving.knative.dev/v1beta1 DomainMapping"`
	ClusterDomainClaims []*netv1alpha1.ClusterDomainClaim `kind:"networking.internal.knative.dev/v1alpha1 ClusterDomainClaim"`
	Kafkas              []*Kafka                          `kind:"kafka.strimzi.io/v1beta2 Kafka"`
	KafkaNodePools      []*KafkaNodePool                  `kind:"kafka.strimzi.io/v1beta2 KafkaNodePool"`
	KafkaTopics         []*KafkaTopic                     `kind:"kafka.strimzi.io/v1beta2 KafkaTopic"`
	ClickHouses         []*ClickHouseInstallation         `kind:"clickhouse.altinity.com/v1 ClickHouseInstallation"`
	Keepers             []*ClickHouseKeeperInstallation   `kind:"clickhouse-keeper.altinity.com/v1 ClickHouseKeeperInstallation"`
	Certificates        []*Certificate                    `kind:"cert-manager.io/v1 Certificate"`
	ClusterIssuers      []*ClusterIssuer                  `kind:"cert-manager.io/v1 ClusterIssuer"`
	PingSources         []*sourcesv1.PingSource           `kind:"sources.knative.dev/v1 PingSource"`
	// Brokers, Triggers and KafkaSinks are decoded by the dispatcher's loader.
	Brokers    []*eventingv1.Broker
	Triggers   []*eventingv1.Trigger
	KafkaSinks []*dispatcher.KafkaSink
}

// Decode decodes a YAML stream strictly. Every kind must be one this package knows: an
// object nobody checks is an error, not a silent pass. Knative Services and DomainMappings are
// defaulted and validated as on create; Brokers, Triggers and KafkaSinks are decoded by the
// eventing dispatcher's loader, which does the same for them.
func Decode(ctx context.Context, data []byte) (*Set, error) {
	s := &Set{}
	var errs []error
	for i, doc := range strings.Split("\n"+string(data), "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		if err := s.decode(ctx, []byte(doc)); err != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", i+1, err))
		}
	}
	return s, errors.Join(errs...)
}

func (s *Set) decode(ctx context.Context, doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return fmt.Errorf("invalid YAML: %w", err)
	}
	kind := tm.APIVersion + " " + tm.Kind
	switch kind {
	case "eventing.knative.dev/v1 Broker", "eventing.knative.dev/v1 Trigger", "eventing.kafka.knative.dev/v1alpha1 KafkaSink":
		m, err := dispatcher.DecodeManifests(ctx, tm.Kind, doc)
		if err != nil {
			return err
		}
		s.Brokers = append(s.Brokers, m.Brokers...)
		s.Triggers = append(s.Triggers, m.Triggers...)
		s.KafkaSinks = append(s.KafkaSinks, m.KafkaSinks...)
		return nil
	}
	list, ok := s.list(kind)
	if !ok {
		return fmt.Errorf("unknown kind %q of apiVersion %q: add it to deploy/manifests to have it checked", tm.Kind, tm.APIVersion)
	}
	o, err := decodeObject(ctx, reflect.New(list.Type().Elem().Elem()).Interface(), doc)
	if err != nil {
		return err
	}
	list.Set(reflect.Append(list, reflect.ValueOf(o)))
	return nil
}

// list is the field of s whose kind tag is kind.
func (s *Set) list(kind string) (reflect.Value, bool) {
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		if v.Type().Field(i).Tag.Get("kind") == kind {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// knativeObject is a Knative resource with the webhook's defaulting and validation.
type knativeObject interface {
	metav1.Object
	apis.Defaultable
	apis.Validatable
}

// decodeObject decodes doc strictly into o, a pointer to a new object, and requires a name. A
// Knative object is then defaulted and validated as the webhook does on create.
func decodeObject(ctx context.Context, o any, doc []byte) (metav1.Object, error) {
	if err := yaml.UnmarshalStrict(doc, o); err != nil {
		return nil, fmt.Errorf("decode %T: %w", o, err)
	}
	obj := o.(metav1.Object)
	if obj.GetName() == "" {
		return nil, fmt.Errorf("%T: metadata.name is required", o)
	}
	if k, ok := o.(knativeObject); ok {
		ctx = apis.WithinCreate(ctx)
		k.SetDefaults(ctx)
		if fe := k.Validate(ctx); fe != nil {
			// Warnings fail too: a webhook warning today is a rejection in a later release.
			return nil, fmt.Errorf("invalid %T %q: %w", o, obj.GetName(), fe)
		}
	}
	return obj, nil
}
