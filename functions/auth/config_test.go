package auth

import (
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
