package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// pythonOTel is the virtual environment `make deps` installs the official OpenTelemetry Python
// SDK and its OTLP/HTTP exporter into (functions/ingest/ingest.mk).
const pythonOTel = "../../.cache/otel-python/bin/python"

// An application instrumented with the official OpenTelemetry Python SDK, configured by the
// standard environment variables alone (endpoint, headers with the key, compression), sends
// its LLM spans to ingest, and they are rows in ClickHouse, once each.
func TestPythonSDKExportsReachClickHouse(t *testing.T) {
	if _, err := os.Stat(pythonOTel); err != nil {
		t.Fatalf("the OpenTelemetry Python SDK is not installed (%v): run `make deps`", err)
	}
	p := startPlane(t)
	ctx := context.Background()
	for _, compression := range []string{"none", "gzip"} {
		cmd := exec.Command(pythonOTel, filepath.Join("testdata", "otlp_genai.py"))
		cmd.Env = append(os.Environ(),
			"OTEL_EXPORTER_OTLP_ENDPOINT="+p.ingest,
			"OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20"+p.key,
			"OTEL_EXPORTER_OTLP_COMPRESSION="+compression,
			"OTEL_SERVICE_NAME=python-e2e-"+compression,
		)
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("compression %s: %v\n%s\n%s", compression, err, out, stderr)
		}
		var ids struct {
			TraceID string `json:"trace_id"`
			RootID  string `json:"root_id"`
			GenID   string `json:"gen_id"`
		}
		if err := json.Unmarshal(out, &ids); err != nil {
			t.Fatalf("compression %s: output %q: %v", compression, out, err)
		}
		p.eventually(t, "traces", "id", ids.TraceID, 1)
		p.eventually(t, "observations", "id", ids.RootID, 1)
		p.eventually(t, "observations", "id", ids.GenID, 1)
		var typ, model, input, userID string
		var prompt, completion uint64
		err = p.db.QueryRow(ctx, "SELECT type, model, input, prompt_tokens, completion_tokens FROM trustplane.observations FINAL WHERE id = ?", ids.GenID).
			Scan(&typ, &model, &input, &prompt, &completion)
		if err != nil || typ != "GENERATION" || model != "gpt-4o-mini" || prompt != 321 || completion != 123 || !json.Valid([]byte(input)) {
			t.Errorf("compression %s: generation %s %s %d %d %s (%v)", compression, typ, model, prompt, completion, input, err)
		}
		if err := p.db.QueryRow(ctx, "SELECT user_id FROM trustplane.traces FINAL WHERE id = ?", ids.TraceID).Scan(&userID); err != nil || userID != "py-user" {
			t.Errorf("compression %s: trace user %q (%v)", compression, userID, err)
		}
	}
}
