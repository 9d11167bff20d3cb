package ingest

import (
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
	if cfg.Limits != defaultLimits() || cfg.MaxEventBytes != 256<<10 || cfg.KafkaTopic != "trustplane-events" {
		t.Fatalf("defaults: %+v", cfg)
	}
	t.Setenv("MAX_CONCURRENT_REQUESTS", "0")
	t.Setenv("MAX_EVENT_BYTES", "10")
	err := runtime.LoadConfig(&cfg)
	for _, want := range []string{"MAX_CONCURRENT_REQUESTS", "MAX_EVENT_BYTES"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}
