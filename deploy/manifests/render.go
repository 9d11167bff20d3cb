package manifests

import (
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Overlays are the environments under deploy/overlays.
var Overlays = []string{"dev", "production"}

// RenderOptions change how an overlay is rendered.
type RenderOptions struct {
	// ExampleSecrets reads every file F that has an F.example beside it from F.example, so
	// that an overlay whose Secrets come from files the operator writes (production) renders
	// the same, and can be checked, whether or not those files exist. Never use it for what
	// is applied to a cluster.
	ExampleSecrets bool
}

// Render builds the kustomization in dir, as `kubectl apply -k dir` would, and returns the
// YAML stream.
func Render(dir string, opts RenderOptions) ([]byte, error) {
	var fsys filesys.FileSystem = filesys.MakeFsOnDisk()
	if opts.ExampleSecrets {
		fsys = exampleFS{fsys}
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	res, err := k.Run(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	out, err := res.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	return out, nil
}

// exampleFS reads F.example in place of F wherever F.example exists. kustomize resolves every
// file it loads through CleanedAbs before reading it, so redirecting that one call is enough.
type exampleFS struct{ filesys.FileSystem }

func (e exampleFS) CleanedAbs(path string) (filesys.ConfirmedDir, string, error) {
	if _, err := os.Stat(path + ".example"); err == nil {
		return e.FileSystem.CleanedAbs(path + ".example")
	}
	return e.FileSystem.CleanedAbs(path)
}

// OverlayDir is the directory of the named overlay, given the repository root.
func OverlayDir(root, overlay string) string {
	return filepath.Join(root, "deploy", "overlays", overlay)
}
