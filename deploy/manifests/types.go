package manifests

import (
	"encoding/json"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Values holds a free-form settings map (Kafka config, topic config) whose values may be YAML
// numbers or strings; String reads one as Kafka would.
type Values map[string]json.RawMessage

// String is the setting's value as text, and whether it is set.
func (v Values) String(key string) (string, bool) {
	raw, ok := v[key]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	return strings.TrimSpace(string(raw)), true
}

// Kafka is Strimzi's Kafka (kafka.strimzi.io/v1beta2), in KRaft mode with node pools.
type Kafka struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Kafka struct {
			Version         string          `json:"version"`
			MetadataVersion string          `json:"metadataVersion,omitempty"`
			Listeners       []KafkaListener `json:"listeners"`
			Config          Values          `json:"config,omitempty"`
		} `json:"kafka"`
		EntityOperator *struct {
			TopicOperator *struct{} `json:"topicOperator,omitempty"`
			UserOperator  *struct{} `json:"userOperator,omitempty"`
		} `json:"entityOperator,omitempty"`
	} `json:"spec"`
}

// KafkaListener is one listener of a Strimzi Kafka.
type KafkaListener struct {
	Name               string                           `json:"name"`
	Port               int32                            `json:"port"`
	Type               string                           `json:"type"`
	TLS                bool                             `json:"tls"`
	NetworkPolicyPeers []networkingv1.NetworkPolicyPeer `json:"networkPolicyPeers,omitempty"`
}

// KafkaNodePool is Strimzi's KafkaNodePool (kafka.strimzi.io/v1beta2).
type KafkaNodePool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Replicas int32    `json:"replicas"`
		Roles    []string `json:"roles"`
		Storage  struct {
			Type    string `json:"type"`
			Volumes []struct {
				ID            int    `json:"id"`
				Type          string `json:"type"`
				Size          string `json:"size"`
				DeleteClaim   bool   `json:"deleteClaim"`
				KRaftMetadata string `json:"kraftMetadata,omitempty"`
			} `json:"volumes"`
		} `json:"storage"`
		Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
	} `json:"spec"`
}

// KafkaTopic is Strimzi's KafkaTopic (kafka.strimzi.io/v1beta2).
type KafkaTopic struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		TopicName  string `json:"topicName"`
		Partitions int32  `json:"partitions"`
		Replicas   int16  `json:"replicas"`
		Config     Values `json:"config,omitempty"`
	} `json:"spec"`
}

// CHDefaults names the templates every host of an installation uses.
type CHDefaults struct {
	Templates struct {
		PodTemplate             string `json:"podTemplate,omitempty"`
		DataVolumeClaimTemplate string `json:"dataVolumeClaimTemplate,omitempty"`
	} `json:"templates"`
}

// CHTemplates are the pod and volume claim templates of an Altinity installation.
type CHTemplates struct {
	PodTemplates []struct {
		Name string         `json:"name"`
		Spec corev1.PodSpec `json:"spec"`
	} `json:"podTemplates,omitempty"`
	VolumeClaimTemplates []struct {
		Name string                           `json:"name"`
		Spec corev1.PersistentVolumeClaimSpec `json:"spec"`
	} `json:"volumeClaimTemplates,omitempty"`
}

// DataVolume is the storage requested by the named volume claim template, "" if there is none.
func (t CHTemplates) DataVolume(name string) string {
	for _, v := range t.VolumeClaimTemplates {
		if v.Name == name {
			q := v.Spec.Resources.Requests[corev1.ResourceStorage]
			return q.String()
		}
	}
	return ""
}

// CHLayout is the shape of an Altinity cluster.
type CHLayout struct {
	ShardsCount   int `json:"shardsCount,omitempty"`
	ReplicasCount int `json:"replicasCount"`
}

// CHCluster is one cluster of an Altinity installation.
type CHCluster struct {
	Name   string   `json:"name"`
	Layout CHLayout `json:"layout"`
}

// ClickHouseInstallation is Altinity's ClickHouseInstallation (clickhouse.altinity.com/v1).
type ClickHouseInstallation struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Defaults      CHDefaults `json:"defaults"`
		Configuration struct {
			ZooKeeper struct {
				Nodes []struct {
					Host string `json:"host"`
					Port int    `json:"port"`
				} `json:"nodes"`
			} `json:"zookeeper"`
			Clusters []CHCluster `json:"clusters"`
			// Users and Profiles use the operator's "name/setting" keys. A user's value is a
			// string, a list (networks, grants) or a valueFrom reference to a Secret.
			Users    map[string]json.RawMessage `json:"users,omitempty"`
			Profiles map[string]string          `json:"profiles,omitempty"`
			// Files are server configuration files by path (config.d/...).
			Files map[string]string `json:"files,omitempty"`
		} `json:"configuration"`
		Templates CHTemplates `json:"templates"`
	} `json:"spec"`
}

// CHSecretRef is the valueFrom form of a user setting in a ClickHouseInstallation.
type CHSecretRef struct {
	ValueFrom struct {
		SecretKeyRef corev1.SecretKeySelector `json:"secretKeyRef"`
	} `json:"valueFrom"`
}

// ClickHouseKeeperInstallation is Altinity's ClickHouseKeeperInstallation
// (clickhouse-keeper.altinity.com/v1).
type ClickHouseKeeperInstallation struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Defaults      CHDefaults `json:"defaults"`
		Configuration struct {
			Clusters []CHCluster `json:"clusters"`
		} `json:"configuration"`
		Templates CHTemplates `json:"templates"`
	} `json:"spec"`
}

// Certificate is cert-manager's Certificate (cert-manager.io/v1).
type Certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretName string   `json:"secretName"`
		DNSNames   []string `json:"dnsNames"`
		IssuerRef  struct {
			Kind  string `json:"kind"`
			Name  string `json:"name"`
			Group string `json:"group,omitempty"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

// ClusterIssuer is cert-manager's ClusterIssuer (cert-manager.io/v1). The ACME and CA issuers
// are kept as they are; the overlays here ship only a self-signed one.
type ClusterIssuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SelfSigned *struct{}       `json:"selfSigned,omitempty"`
		ACME       json.RawMessage `json:"acme,omitempty"`
		CA         *struct {
			SecretName string `json:"secretName"`
		} `json:"ca,omitempty"`
	} `json:"spec"`
}
