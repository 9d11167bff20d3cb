package router

import (
	"strings"
	"testing"
	"time"

	"github.com/trustplane/trustplane/functions/runtime"
)

func TestBadRedisURLIsRefusedWithoutItsPassword(t *testing.T) {
	c := Config{RedisURL: "redis://:s3cret-pass@redis:63x9/0"}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "REDIS_URL") {
		t.Fatalf("error %v, want REDIS_URL named", err)
	}
	if strings.Contains(err.Error(), "s3cret-pass") {
		t.Errorf("the error quotes the password: %v", err)
	}
}

func TestLimitsTimeoutIsBounded(t *testing.T) {
	for _, bad := range []time.Duration{0, 500 * time.Microsecond, 2 * time.Second} {
		err := Config{LimitsTimeout: bad}.Validate()
		if err == nil || !strings.Contains(err.Error(), "ROUTER_LIMITS_TIMEOUT must be between 1ms and 1s") {
			t.Errorf("ROUTER_LIMITS_TIMEOUT=%s: error %v, want it named", bad, err)
		}
	}
	t.Setenv("KAFKA_BROKERS", "127.0.0.1:9092")
	t.Setenv("AUTH_URL", "http://auth")
	var cfg Config
	if err := runtime.LoadConfig(&cfg); err != nil || cfg.LimitsTimeout != 50*time.Millisecond {
		t.Errorf("defaults: ROUTER_LIMITS_TIMEOUT %s, error %v; want %s", cfg.LimitsTimeout, err, 50*time.Millisecond)
	}
}

func TestGOGCIsOffOrAPercentage(t *testing.T) {
	for gogc, ok := range map[string]bool{"400": true, "100": true, "0": true, "off": true, "": true, "-5": false, "fast": false} {
		err := Config{GOGC: gogc}.Validate()
		if named := err != nil && strings.Contains(err.Error(), "GOGC must be off or a percentage"); named == ok {
			t.Errorf("GOGC=%q: error %v", gogc, err)
		}
	}
	// Unset or empty, GOGC is router's 400.
	if n, err := gcPercent(""); err != nil || n != 400 {
		t.Errorf("GOGC unset: %d, %v; want 400", n, err)
	}
}
