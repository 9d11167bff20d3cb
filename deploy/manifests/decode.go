package manifests

import (
	"context"
	"errors"
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	netv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"
	"knative.dev/pkg/apis"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	servingv1beta1 "knative.dev/serving/pkg/apis/serving/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/trustplane/trustplane/eventing/dispatcher"
)

// Set is every object of one rendered overlay, by kind. Knative objects are defaulted.
type Set struct {
	Namespaces          []*corev1.Namespace
	ConfigMaps          []*corev1.ConfigMap
	Secrets             []*corev1.Secret
	Jobs                []*batchv1.Job
	NetworkPolicies     []*networkingv1.NetworkPolicy
	Services            []*servingv1.Service
	DomainMappings      []*servingv1beta1.DomainMapping
	ClusterDomainClaims []*netv1alpha1.ClusterDomainClaim
	Brokers             []*eventingv1.Broker
	Triggers            []*eventingv1.Trigger
	KafkaSinks          []*dispatcher.KafkaSink
	Kafkas              []*Kafka
	KafkaNodePools      []*KafkaNodePool
	KafkaTopics         []*KafkaTopic
	ClickHouses         []*ClickHouseInstallation
	Keepers             []*ClickHouseKeeperInstallation
	Certificates        []*Certificate
	ClusterIssuers      []*ClusterIssuer
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
	var err error
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 Namespace":
		s.Namespaces, err = add(s.Namespaces, doc)
	case "v1 ConfigMap":
		s.ConfigMaps, err = add(s.ConfigMaps, doc)
	case "v1 Secret":
		s.Secrets, err = add(s.Secrets, doc)
	case "batch/v1 Job":
		s.Jobs, err = add(s.Jobs, doc)
	case "networking.k8s.io/v1 NetworkPolicy":
		s.NetworkPolicies, err = add(s.NetworkPolicies, doc)
	case "serving.knative.dev/v1 Service":
		s.Services, err = addValidated(ctx, s.Services, doc)
	case "serving.knative.dev/v1beta1 DomainMapping":
		s.DomainMappings, err = addValidated(ctx, s.DomainMappings, doc)
	case "networking.internal.knative.dev/v1alpha1 ClusterDomainClaim":
		s.ClusterDomainClaims, err = add(s.ClusterDomainClaims, doc)
	case "eventing.knative.dev/v1 Broker", "eventing.knative.dev/v1 Trigger", "eventing.kafka.knative.dev/v1alpha1 KafkaSink":
		var m *dispatcher.Manifests
		m, err = dispatcher.DecodeManifests(ctx, tm.Kind, doc)
		if err == nil {
			s.Brokers = append(s.Brokers, m.Brokers...)
			s.Triggers = append(s.Triggers, m.Triggers...)
			s.KafkaSinks = append(s.KafkaSinks, m.KafkaSinks...)
		}
	case "kafka.strimzi.io/v1beta2 Kafka":
		s.Kafkas, err = add(s.Kafkas, doc)
	case "kafka.strimzi.io/v1beta2 KafkaNodePool":
		s.KafkaNodePools, err = add(s.KafkaNodePools, doc)
	case "kafka.strimzi.io/v1beta2 KafkaTopic":
		s.KafkaTopics, err = add(s.KafkaTopics, doc)
	case "clickhouse.altinity.com/v1 ClickHouseInstallation":
		s.ClickHouses, err = add(s.ClickHouses, doc)
	case "clickhouse-keeper.altinity.com/v1 ClickHouseKeeperInstallation":
		s.Keepers, err = add(s.Keepers, doc)
	case "cert-manager.io/v1 Certificate":
		s.Certificates, err = add(s.Certificates, doc)
	case "cert-manager.io/v1 ClusterIssuer":
		s.ClusterIssuers, err = add(s.ClusterIssuers, doc)
	default:
		return fmt.Errorf("unknown kind %q of apiVersion %q: add it to deploy/manifests to have it checked", tm.Kind, tm.APIVersion)
	}
	return err
}

// object is what every decoded kind is: a pointer to a struct with metadata.
type object[T any] interface {
	*T
	metav1.Object
}

// add decodes doc strictly into a new T and appends it.
func add[T any, P object[T]](list []P, doc []byte) ([]P, error) {
	o := P(new(T))
	if err := yaml.UnmarshalStrict(doc, o); err != nil {
		return list, fmt.Errorf("decode %T: %w", o, err)
	}
	if o.GetName() == "" {
		return list, fmt.Errorf("%T: metadata.name is required", o)
	}
	return append(list, o), nil
}

// knativeObject is a Knative resource with the webhook's defaulting and validation.
type knativeObject[T any] interface {
	object[T]
	apis.Defaultable
	apis.Validatable
}

// addValidated decodes like add, then defaults and validates as the webhook does on create.
func addValidated[T any, P knativeObject[T]](ctx context.Context, list []P, doc []byte) ([]P, error) {
	list, err := add(list, doc)
	if err != nil {
		return list, err
	}
	o := list[len(list)-1]
	ctx = apis.WithinCreate(ctx)
	o.SetDefaults(ctx)
	if fe := o.Validate(ctx); fe != nil {
		// Warnings fail too: a webhook warning today is a rejection in a later release.
		return list[:len(list)-1], fmt.Errorf("invalid %T %q: %w", o, o.GetName(), fe)
	}
	return list, nil
}
