package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRendersEveryOverlay(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"-root", "../../..", "-out", out, "-example-secrets"}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	dev, err := os.ReadFile(filepath.Join(out, "dev.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dev), "ko://github.com/trustplane/trustplane/functions/ingest/cmd/ingest") {
		t.Error("dev.yaml does not name the ingest image in ko's form")
	}
	// Production is rendered from the operator's secret files when they exist, and for
	// checking only, from the examples, when they do not.
	if prod, err := os.ReadFile(filepath.Join(out, "production.yaml")); err == nil {
		if strings.HasPrefix(string(prod), checkOnly) {
			t.Error("production.yaml carries the check-only warning")
		}
	} else {
		prod, err := os.ReadFile(filepath.Join(out, "production.check-only.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(prod), checkOnly) {
			t.Error("production.check-only.yaml does not start with the check-only warning")
		}
	}
}
