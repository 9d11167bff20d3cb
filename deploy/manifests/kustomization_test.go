package manifests_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// A manifest file that no kustomization lists is silently left out of the install: every
// *.yaml beside a kustomization must be one of its resources.
func TestEveryManifestFileIsListed(t *testing.T) {
	dirs := []string{
		"deploy/base", "deploy/base/functions", "deploy/base/network",
		"deploy/overlays/dev", "deploy/overlays/production",
		"eventing/config", "kafka/strimzi", "clickhouse/operator",
	}
	for _, dir := range dirs {
		dir = filepath.Join(root, dir)
		var k struct {
			Resources []string `json:"resources"`
		}
		data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
		if os.IsNotExist(err) {
			data, err = os.ReadFile(filepath.Join(dir, "Kustomization"))
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(data, &k); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		listed := map[string]bool{}
		for _, r := range k.Resources {
			listed[r] = true
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || name == "kustomization.yaml" || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
				continue
			}
			if !listed[name] {
				t.Errorf("%s/%s is not listed in its kustomization's resources: it would not be installed", dir, name)
			}
		}
	}
}
