package manifests_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/kelseyhightower/envconfig"
	corev1 "k8s.io/api/core/v1"

	"github.com/trustplane/trustplane/deploy/manifests"
	"github.com/trustplane/trustplane/functions/auth"
	"github.com/trustplane/trustplane/functions/router"
	"github.com/trustplane/trustplane/functions/router/routing"
)

const root = "../.."

// render renders and decodes an overlay; production's Secrets come from the *.example files.
func render(t *testing.T, overlay string) *manifests.Set {
	t.Helper()
	out, err := manifests.Render(manifests.OverlayDir(root, overlay), manifests.RenderOptions{ExampleSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	set, err := manifests.Decode(context.Background(), out)
	if err != nil {
		t.Fatalf("%s: %v", overlay, err)
	}
	return set
}

func TestOverlaysPassEveryCheck(t *testing.T) {
	for _, overlay := range manifests.Overlays {
		t.Run(overlay, func(t *testing.T) {
			set := render(t, overlay)
			if err := manifests.Check(set, manifests.Sizes[overlay]); err != nil {
				t.Fatal(err)
			}
			// The parts the install depends on are all there.
			counts := map[string]int{
				"Services": len(set.Services), "Triggers": len(set.Triggers), "Brokers": len(set.Brokers),
				"KafkaSinks": len(set.KafkaSinks), "KafkaTopics": len(set.KafkaTopics), "KafkaNodePools": len(set.KafkaNodePools),
				"ClickHouses": len(set.ClickHouses), "Keepers": len(set.Keepers), "NetworkPolicies": len(set.NetworkPolicies),
				"DomainMappings": len(set.DomainMappings), "Certificates": len(set.Certificates), "Jobs": len(set.Jobs),
			}
			for kind, n := range counts {
				if n == 0 {
					t.Errorf("no %s rendered", kind)
				}
			}
		})
	}
}

// A secret file is read from its .example only when asked; without the option a missing file
// fails the build and is named.
func TestExampleSecrets(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("kustomization.yaml", "secretGenerator:\n  - name: s\n    files: [password=secrets-password]\n")
	write("secrets-password.example", "example")
	if _, err := manifests.Render(dir, manifests.RenderOptions{}); err == nil || !strings.Contains(err.Error(), "secrets-password") {
		t.Fatalf("render without the secret file: got %v, want an error naming it", err)
	}
	out, err := manifests.Render(dir, manifests.RenderOptions{ExampleSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "ZXhhbXBsZQ==") { // base64("example")
		t.Fatalf("the example was not used:\n%s", out)
	}
	// With the real file present, examples still win when asked, so checks are reproducible.
	write("secrets-password", "real")
	if out, err := manifests.Render(dir, manifests.RenderOptions{ExampleSecrets: true}); err != nil || !strings.Contains(string(out), "ZXhhbXBsZQ==") {
		t.Fatalf("got %v\n%s", err, out)
	}
}

// The production overlay's secret files are kept out of git.
func TestProductionSecretFilesAreIgnored(t *testing.T) {
	for _, name := range []string{"auth-keys.json", "auth-pepper", "clickhouse-ingest-password", "openai-api-key"} {
		path := filepath.Join(manifests.OverlayDir(root, "production"), "secrets", name)
		if out, err := exec.Command("git", "check-ignore", "-q", path).CombinedOutput(); err != nil {
			t.Errorf("%s is not ignored by git: %v %s", path, err, out)
		}
	}
}

func TestProductionPublicFunctionsKeepTwoPods(t *testing.T) {
	prod := manifests.Sizes["production"]
	for _, fn := range []string{"ingest", "router"} {
		if n, ok := prod.MinScale[fn]; ok && n < 2 {
			t.Errorf("%s: production min-scale %d, want at least 2", fn, n)
		}
	}
	if _, ok := prod.MinScale["ingest"]; !ok {
		t.Error("production sizing has no min-scale for ingest")
	}
	if prod.MaxScale["persist"] < 1 || prod.MaxScale["persist"] > 4 {
		t.Errorf("persist max-scale %d: persist must stay bounded so ClickHouse is not flooded", prod.MaxScale["persist"])
	}
}

// Each function's manifest environment, with its Secrets mounted in a temporary directory,
// loads into the function's Config and passes its Validate: the values parse, not just the
// names exist.
func TestFunctionEnvironmentLoads(t *testing.T) {
	for _, overlay := range manifests.Overlays {
		set := render(t, overlay)
		for _, fn := range manifests.Functions {
			t.Run(overlay+"/"+fn.Name, func(t *testing.T) {
				svc := set.ServiceNamed(fn.Name)
				env, err := set.Env(svc)
				if err != nil {
					t.Fatal(err)
				}
				mounts := mountVolumes(t, set, svc.Namespace, svc.Spec.Template.Spec.PodSpec)
				local := func(path string) string {
					for mount, dir := range mounts {
						if strings.HasPrefix(path, mount+"/") {
							return dir + strings.TrimPrefix(path, mount)
						}
					}
					return path
				}
				// Only the manifest's values: unset whatever else the Config reads.
				known, _ := manifests.EnvVars(fn.Config)
				for k := range known {
					if _, ok := os.LookupEnv(k); ok {
						t.Setenv(k, "")
						os.Unsetenv(k)
					}
				}
				for k, v := range env {
					t.Setenv(k, local(v))
				}
				cfg := reflect.New(reflect.TypeOf(fn.Config))
				if err := envconfig.Process("", cfg.Interface()); err != nil {
					t.Fatal(err)
				}
				if err := cfg.Interface().(interface{ Validate() error }).Validate(); err != nil {
					t.Fatal(err)
				}
				// The files the function reads at start are valid too.
				switch c := cfg.Elem().Interface().(type) {
				case auth.Config:
					if _, err := auth.ReadKeyFile(c.KeysFile); err != nil {
						t.Fatalf("the auth-keys Secret is not a valid key file: %v", err)
					}
				case router.Config:
					data, err := os.ReadFile(c.RoutingFile)
					if err != nil {
						t.Fatal(err)
					}
					readFile := func(path string) ([]byte, error) { return os.ReadFile(local(path)) }
					if _, err := routing.Parse(data, http.DefaultClient, os.Getenv, readFile); err != nil {
						t.Fatalf("the router-routes ConfigMap: %v", err)
					}
				}
			})
		}
	}
}

// mountVolumes writes each Secret and ConfigMap volume of the pod into a temporary directory,
// as the kubelet would mount it, and returns mount path -> directory.
func mountVolumes(t *testing.T, set *manifests.Set, ns string, pod corev1.PodSpec) map[string]string {
	t.Helper()
	files := func(v corev1.Volume) map[string][]byte {
		out := map[string][]byte{}
		for _, sec := range set.Secrets {
			if v.Secret != nil && sec.Namespace == ns && sec.Name == v.Secret.SecretName {
				out = sec.Data
			}
		}
		for _, cm := range set.ConfigMaps {
			if v.ConfigMap != nil && cm.Namespace == ns && cm.Name == v.ConfigMap.Name {
				for k, data := range cm.Data {
					out[k] = []byte(data)
				}
			}
		}
		return out
	}
	out := map[string]string{}
	for _, ctr := range pod.Containers {
		for _, m := range ctr.VolumeMounts {
			for _, v := range pod.Volumes {
				if v.Name != m.Name {
					continue
				}
				dir := t.TempDir()
				for k, data := range files(v) {
					if err := os.WriteFile(filepath.Join(dir, k), data, 0o600); err != nil {
						t.Fatal(err)
					}
				}
				out[m.MountPath] = dir
			}
		}
	}
	return out
}

func TestSizingTableIsInTheREADME(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(root, "deploy", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if table := manifests.SizingTable(); !strings.Contains(string(readme), table) {
		t.Fatalf("deploy/README.md must contain the sizing table exactly as manifests.SizingTable renders it:\n%s", table)
	}
}

// Every image is a ko:// reference to a main package of this module that builds.
func TestKoImagesAreMainPackagesThatBuild(t *testing.T) {
	paths := map[string]bool{}
	for _, overlay := range manifests.Overlays {
		set := render(t, overlay)
		var ctrs []corev1.Container
		for _, s := range set.Services {
			ctrs = append(ctrs, s.Spec.Template.Spec.Containers...)
		}
		for _, j := range set.Jobs {
			ctrs = append(ctrs, j.Spec.Template.Spec.Containers...)
		}
		for _, c := range ctrs {
			p, ok := strings.CutPrefix(c.Image, "ko://")
			if !ok || !strings.HasPrefix(p, "github.com/trustplane/trustplane/") {
				t.Errorf("%s: image %q is not a ko:// reference to this module", overlay, c.Image)
				continue
			}
			paths[p] = true
		}
	}
	var list []string
	for p := range paths {
		list = append(list, p)
	}
	sort.Strings(list)
	if len(list) == 0 {
		t.Fatal("no ko:// images")
	}
	args := append([]string{"list", "-f", "{{.ImportPath}} {{.Name}}"}, list...)
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) != 2 || f[1] != "main" {
			t.Errorf("%s: not a main package", line)
		}
	}
	build := append([]string{"build", "-o", t.TempDir()}, list...)
	if out, err := exec.Command("go", build...).CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", list, err, out)
	}
}
