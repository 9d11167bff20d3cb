package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trustplane/trustplane/functions/runtime"
)

func TestConfigValidate(t *testing.T) {
	good := Config{Common: runtime.Common{Port: 8080, LogLevel: "info", ShutdownTimeout: time.Second},
		KeysFile: "/keys/keys.json", Pepper: strings.Repeat("p", 32), ReloadInterval: 5 * time.Second}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := good
	bad.Port, bad.KeysFile, bad.Pepper, bad.ReloadInterval = -1, "", "", 0
	err := bad.Validate()
	for _, want := range []string{"PORT", "AUTH_KEYS_FILE", "AUTH_PEPPER", "AUTH_RELOAD_INTERVAL"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

// callerConfig is how a calling function embeds the client settings.
type callerConfig struct {
	runtime.Common
	ClientConfig
}

func (c callerConfig) Validate() error {
	return errors.Join(c.Common.Validate(), c.ClientConfig.Validate())
}

func TestClientConfigFromEnvironment(t *testing.T) {
	t.Setenv("AUTH_URL", "http://auth.trustplane.svc")
	t.Setenv("AUTH_CACHE_TTL", "10s")
	var cfg callerConfig
	if err := runtime.LoadConfig(&cfg); err != nil {
		t.Fatal(err)
	}
	want := ClientConfig{URL: "http://auth.trustplane.svc", CacheTTL: 10 * time.Second, NegativeCacheTTL: 2 * time.Second,
		CacheSize: 10000, Timeout: 2 * time.Second}
	if cfg.ClientConfig != want {
		t.Fatalf("got %+v, want %+v", cfg.ClientConfig, want)
	}
	t.Setenv("AUTH_CACHE_SIZE", "0")
	if err := runtime.LoadConfig(&cfg); err == nil || !strings.Contains(err.Error(), "AUTH_CACHE_SIZE") {
		t.Fatalf("bad AUTH_CACHE_SIZE: %v", err)
	}
}
