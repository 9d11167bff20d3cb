// Command manifests renders every overlay in deploy/overlays, checks it (strict decoding,
// Knative validation, the cross-checks of package manifests) and writes it to the output
// directory, one file per overlay, ready for `ko resolve -f`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/trustplane/trustplane/deploy/manifests"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "manifests:", err)
		os.Exit(1)
	}
}

const checkOnly = "# Rendered with the example Secrets (*.example): for checking only, never apply this file.\n"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("manifests", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", ".", "repository root")
	out := fs.String("out", "deploy/out", "output directory")
	examples := fs.Bool("example-secrets", false, "where an overlay's secret files are missing, render it from the *.example files into <overlay>.check-only.yaml instead of failing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	var errs []error
	for _, overlay := range manifests.Overlays {
		name, err := renderOne(ctx, *root, *out, overlay, *examples)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", overlay, err))
			continue
		}
		fmt.Fprintln(stdout, name)
	}
	return errors.Join(errs...)
}

// renderOne renders, checks and writes one overlay and returns the file written.
func renderOne(ctx context.Context, root, out, overlay string, examples bool) (string, error) {
	dir := manifests.OverlayDir(root, overlay)
	data, err := manifests.Render(dir, manifests.RenderOptions{})
	name, header := filepath.Join(out, overlay+".yaml"), ""
	if err != nil && examples {
		data, err = manifests.Render(dir, manifests.RenderOptions{ExampleSecrets: true})
		name, header = filepath.Join(out, overlay+".check-only.yaml"), checkOnly
	}
	if err != nil {
		return "", err
	}
	set, err := manifests.Decode(ctx, data)
	if err != nil {
		return "", err
	}
	if err := manifests.Check(set, manifests.Sizes[overlay]); err != nil {
		return "", err
	}
	return name, os.WriteFile(name, append([]byte(header), data...), 0o644)
}
