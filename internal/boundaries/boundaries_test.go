package boundaries

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/trustplane/trustplane"

// tools are main packages under functions/ that are never deployed: they may link any
// function's service code and the embedded broker.
var tools = map[string]string{
	"functions/router/cmd/routerbench": "the benchmark driver starts its own embedded broker",
}

// shared are the packages of this module, besides its own and the functions' client
// packages, that a function may import.
var shared = []string{"functions/runtime", "eventing/catalog", "kafka", "clickhouse",
	// guard's detectors and policy are libraries without I/O: router runs them inline and the
	// guard function asynchronously, so a finding is the same wherever it was made.
	"functions/guard/detect", "functions/guard/policy",
	// the price table: router prices its calls and ingest the generations it maps from
	// OpenTelemetry spans with the same one
	"eventing/pricing",
	// the rate limiter (GCRA buckets in Redis shared by a function's replicas, each pod's own
	// while Redis is unreachable) and the redis-server its tests start: router limits calls
	// with it, and query a key's requests, so both keep one algorithm, one Redis key layout and
	// one fallback.
	"functions/router/limits", "functions/router/redistest"}

type pkg struct {
	ImportPath string
	Name       string
	DepOnly    bool
	Imports    []string
	Deps       []string
}

// list is `go list -deps -json` over the functions and the commands under eventing/cmd: the
// named packages, with every package they link.
func list(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json", "./functions/...", "./eventing/cmd/...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if !p.DepOnly {
			pkgs = append(pkgs, p)
		}
	}
	if len(pkgs) == 0 {
		t.Fatal("go list named no packages")
	}
	return pkgs
}

// local is p's path inside this module, or "" for a package of another module.
func local(p string) string {
	if p == module {
		return "."
	}
	rest, ok := strings.CutPrefix(p, module+"/")
	if !ok {
		return ""
	}
	return rest
}

// function is the function a module path belongs to (functions/<name>/...), or "".
func function(p string) string {
	parts := strings.Split(p, "/")
	if len(parts) < 2 || parts[0] != "functions" || parts[1] == "runtime" {
		return ""
	}
	return parts[1]
}

// isClient reports whether p is a function's client package: functions/<fn>/<fn>client.
func isClient(p string) bool {
	parts := strings.Split(p, "/")
	return len(parts) == 3 && parts[0] == "functions" && parts[2] == parts[1]+"client"
}

func allowed(p string) bool {
	if isClient(p) || strings.HasPrefix(p, "internal/") {
		return true
	}
	return slices.Contains(shared, p)
}

func TestNoFunctionLinksAnotherFunctionsService(t *testing.T) {
	checked := 0
	for _, p := range list(t) {
		own := function(local(p.ImportPath))
		if own == "" || tools[local(p.ImportPath)] != "" {
			continue
		}
		checked++
		for _, imp := range p.Imports {
			l := local(imp)
			if l == "" || function(l) == own {
				continue
			}
			if !allowed(l) {
				t.Errorf("%s imports %s: a function imports only its own packages, other functions' client packages (functions/<fn>/<fn>client) and %s, internal/...", p.ImportPath, imp, strings.Join(shared, ", "))
			}
		}
		for _, dep := range p.Deps {
			l := local(dep)
			if fn := function(l); fn != "" && fn != own && !allowed(l) {
				t.Errorf("%s links %s, the service code of function %s", p.ImportPath, dep, fn)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no function package was checked")
	}
}

func TestNoDeployedBinaryLinksTheEmbeddedBroker(t *testing.T) {
	embedded := module + "/kafka/embedded"
	checked := 0
	for _, p := range list(t) {
		l := local(p.ImportPath)
		if p.Name != "main" || tools[l] != "" {
			continue
		}
		if !strings.HasPrefix(l, "functions/") && !strings.HasPrefix(l, "eventing/cmd/") {
			continue
		}
		checked++
		for _, dep := range p.Deps {
			if dep == embedded || strings.HasPrefix(dep, embedded+"/") || path.Base(dep) == "kfake" {
				t.Errorf("%s links %s: only the local runner, its embedded-kafka command and tests may", p.ImportPath, dep)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no command was checked")
	}
}
