package ingest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustplane/trustplane/functions/runtime"
)

func TestConfigDefaultsValidate(t *testing.T) {
	t.Setenv("AUTH_URL", "http://auth.trustplane.svc")
	t.Setenv("KAFKA_BROKERS", "kafka:9092")
	var cfg Config
	if err := runtime.LoadConfig(&cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Limits != defaultLimits() || cfg.MaxEventBytes != 256<<10 || cfg.KafkaTopic != "trustplane-events" || cfg.MaxBatchSpans != 10000 || cfg.PricesFile != "" {
		t.Fatalf("defaults: %+v", cfg)
	}
	t.Setenv("MAX_CONCURRENT_REQUESTS", "0")
	t.Setenv("MAX_EVENT_BYTES", "10")
	t.Setenv("MAX_BATCH_SPANS", "0")
	err := runtime.LoadConfig(&cfg)
	for _, want := range []string{"MAX_CONCURRENT_REQUESTS", "MAX_EVENT_BYTES", "MAX_BATCH_SPANS"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

// A price file that cannot be read, or holds a negative price, stops the start, naming it.
func TestNewRefusesABadPriceFile(t *testing.T) {
	t.Setenv("AUTH_URL", "http://auth.trustplane.svc")
	t.Setenv("KAFKA_BROKERS", "kafka:9092")
	var cfg Config
	if err := runtime.LoadConfig(&cfg); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "prices.yaml")
	if err := os.WriteFile(bad, []byte("prices: {m: {input_per_mtok: -1}}"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{bad, bad + ".missing"} {
		cfg.PricesFile = file
		if _, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "prices") {
			t.Errorf("PRICES_FILE %s: %v", file, err)
		}
	}
}
