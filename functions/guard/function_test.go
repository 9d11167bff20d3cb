package guard

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustplane/trustplane/functions/guard/policy"
	"github.com/trustplane/trustplane/functions/runtime"
)

func TestNewBuildsTheFunction(t *testing.T) {
	cfg := Config{Common: runtime.Common{Port: 8080, ShutdownTimeout: time.Second, LogLevel: "info"},
		Config: policy.Config{ReloadInterval: time.Second, MaxScanBytes: 1 << 20}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	fn, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if fn.Routes["POST /"] == nil || fn.Routes["GET /policy"] == nil || len(fn.Background) != 1 || fn.Metrics == nil {
		t.Errorf("function %+v", fn)
	}
	// A policy file that does not load, or a short fingerprint key, stops the start.
	bad := filepath.Join(t.TempDir(), "policy.yaml")
	_ = os.WriteFile(bad, []byte("default: {sides: sideways}"), 0o600)
	cfg.PolicyFile = bad
	if _, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "sides") {
		t.Errorf("bad policy: %v", err)
	}
	key := filepath.Join(t.TempDir(), "key")
	_ = os.WriteFile(key, []byte("short"), 0o600)
	cfg.PolicyFile, cfg.FingerprintKeyFile = "", key
	if _, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "at least 16 bytes") {
		t.Errorf("short key: %v", err)
	}
	cfg.ReloadInterval, cfg.MaxScanBytes = time.Millisecond, 10
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "GUARD_POLICY_RELOAD") || !strings.Contains(err.Error(), "GUARD_MAX_SCAN_BYTES") {
		t.Errorf("validate: %v", err)
	}
}
