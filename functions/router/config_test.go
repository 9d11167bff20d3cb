package router

import (
	"strings"
	"testing"
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
