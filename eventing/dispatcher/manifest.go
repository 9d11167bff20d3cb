package dispatcher

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/eventing/pkg/apis/feature"
	"knative.dev/pkg/apis"
	"sigs.k8s.io/yaml"
)

// Manifests are the eventing objects read from the config directory. Only Triggers drive the
// local dispatcher; the others are decoded and checked so that a manifest that a cluster would
// reject is rejected here too.
type Manifests struct {
	Triggers   []*eventingv1.Trigger
	Brokers    []*eventingv1.Broker
	KafkaSinks []*KafkaSink
	ConfigMaps []*corev1.ConfigMap
}

// KafkaSink is the part of eventing-kafka-broker's KafkaSink (eventing.kafka.knative.dev/v1alpha1)
// that its manifests use. The module defining the real type is not a dependency, so this type
// lists its spec fields and decoding stays strict.
type KafkaSink struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              KafkaSinkSpec `json:"spec"`
}

// KafkaSinkSpec is the spec of a KafkaSink.
type KafkaSinkSpec struct {
	Topic             string         `json:"topic"`
	NumPartitions     *int32         `json:"numPartitions,omitempty"`
	ReplicationFactor *int16         `json:"replicationFactor,omitempty"`
	BootstrapServers  []string       `json:"bootstrapServers"`
	ContentMode       *string        `json:"contentMode,omitempty"`
	Auth              *KafkaSinkAuth `json:"auth,omitempty"`
}

// KafkaSinkAuth names the Secret holding the Kafka credentials.
type KafkaSinkAuth struct {
	Secret *struct {
		Ref *struct {
			Name string `json:"name"`
		} `json:"ref,omitempty"`
	} `json:"secret,omitempty"`
}

func (s *KafkaSink) validate() error {
	var errs []error
	if s.Name == "" {
		errs = append(errs, errors.New("metadata.name is required"))
	}
	if s.Spec.Topic == "" {
		errs = append(errs, errors.New("spec.topic is required"))
	}
	if len(s.Spec.BootstrapServers) == 0 {
		errs = append(errs, errors.New("spec.bootstrapServers is required"))
	}
	if m := s.Spec.ContentMode; m != nil && *m != "binary" && *m != "structured" {
		errs = append(errs, fmt.Errorf("spec.contentMode must be binary or structured, got %q", *m))
	}
	return errors.Join(errs...)
}

const (
	eventingAPIVersion  = "eventing.knative.dev/v1"
	kafkaSinkAPIVersion = "eventing.kafka.knative.dev/v1alpha1"
)

// LoadManifests reads every .yaml/.yml file named by paths; a directory contributes its own
// files (not its subdirectories), in name order, as `kubectl apply -f dir` does.
func LoadManifests(ctx context.Context, paths ...string) (*Manifests, error) {
	if len(paths) == 0 {
		return nil, errors.New("no manifest paths given")
	}
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("manifests: %w", err)
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("manifests: %w", err)
		}
		for _, e := range entries {
			ext := filepath.Ext(e.Name())
			if !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
				files = append(files, filepath.Join(p, e.Name()))
			}
		}
	}
	all := &Manifests{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("manifests: %w", err)
		}
		m, err := DecodeManifests(ctx, f, data)
		if err != nil {
			return nil, err
		}
		all.Triggers = append(all.Triggers, m.Triggers...)
		all.Brokers = append(all.Brokers, m.Brokers...)
		all.KafkaSinks = append(all.KafkaSinks, m.KafkaSinks...)
		all.ConfigMaps = append(all.ConfigMaps, m.ConfigMaps...)
	}
	seen := map[string]bool{}
	for _, t := range all.Triggers {
		key := t.Namespace + "/" + t.Name
		if seen[key] {
			return nil, fmt.Errorf("manifests: Trigger %s is defined twice", key)
		}
		seen[key] = true
	}
	return all, nil
}

// DecodeManifests decodes one (possibly multi-document) YAML file. Known kinds are decoded
// strictly (an unknown or misspelt field is an error), defaulted and validated as the Knative
// webhook would; documents of other kinds are skipped. name only labels errors.
func DecodeManifests(ctx context.Context, name string, data []byte) (*Manifests, error) {
	// The webhook validates with the cluster's feature flags; the defaults are what a cluster
	// without a customised config-features has.
	if feature.FromContext(ctx) == nil {
		ctx = feature.ToContext(ctx, feature.FromContextOrDefaults(ctx))
	}
	ctx = apis.WithinCreate(ctx)
	m := &Manifests{}
	for i, doc := range splitDocuments(data) {
		if err := m.decode(ctx, doc); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, i+1, err)
		}
	}
	return m, nil
}

func (m *Manifests) decode(ctx context.Context, doc []byte) error {
	var probe map[string]any
	if err := yaml.Unmarshal(doc, &probe); err != nil {
		return fmt.Errorf("invalid YAML: %w", err)
	}
	if probe == nil {
		return nil // empty or comments only
	}
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return fmt.Errorf("invalid apiVersion or kind: %w", err)
	}
	if tm.Kind == "" || tm.APIVersion == "" {
		return errors.New("apiVersion and kind are required")
	}
	switch {
	case tm.APIVersion == eventingAPIVersion && tm.Kind == "Trigger":
		t := &eventingv1.Trigger{}
		if err := strict(doc, t, "Trigger"); err != nil {
			return err
		}
		if t.Namespace == "" {
			t.Namespace = "default"
		}
		t.SetDefaults(ctx)
		if fe := t.Validate(ctx); fe != nil {
			return fmt.Errorf("invalid Trigger %q: %w", t.Name, fe)
		}
		m.Triggers = append(m.Triggers, t)
	case tm.APIVersion == eventingAPIVersion && tm.Kind == "Broker":
		b := &eventingv1.Broker{}
		if err := strict(doc, b, "Broker"); err != nil {
			return err
		}
		if b.Namespace == "" {
			b.Namespace = "default"
		}
		b.SetDefaults(ctx)
		if fe := b.Validate(ctx); fe != nil {
			return fmt.Errorf("invalid Broker %q: %w", b.Name, fe)
		}
		m.Brokers = append(m.Brokers, b)
	case tm.APIVersion == kafkaSinkAPIVersion && tm.Kind == "KafkaSink":
		s := &KafkaSink{}
		if err := strict(doc, s, "KafkaSink"); err != nil {
			return err
		}
		if err := s.validate(); err != nil {
			return fmt.Errorf("invalid KafkaSink %q: %w", s.Name, err)
		}
		m.KafkaSinks = append(m.KafkaSinks, s)
	case tm.APIVersion == "v1" && tm.Kind == "ConfigMap":
		c := &corev1.ConfigMap{}
		if err := strict(doc, c, "ConfigMap"); err != nil {
			return err
		}
		m.ConfigMaps = append(m.ConfigMaps, c)
	}
	return nil
}

func strict(doc []byte, into any, kind string) error {
	if err := yaml.UnmarshalStrict(doc, into); err != nil {
		return fmt.Errorf("decode %s: %w", kind, err)
	}
	if o, ok := into.(metav1.Object); ok && o.GetName() == "" {
		return fmt.Errorf("%s: metadata.name is required", kind)
	}
	return nil
}

// splitDocuments splits a YAML stream on its "---" document separators.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), len(data)+1)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "---") && strings.TrimSpace(strings.SplitN(line[3:], "#", 2)[0]) == "" {
			docs = append(docs, bytes.Clone(cur.Bytes()))
			cur.Reset()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	docs = append(docs, cur.Bytes())
	return docs
}

// sortedKeys returns a map's keys in order, for deterministic iteration and messages.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
