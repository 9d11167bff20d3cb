package router

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/functions/guard/policy"
	"github.com/trustplane/trustplane/functions/router/limits"
	"github.com/trustplane/trustplane/functions/runtime"
	"github.com/trustplane/trustplane/kafka"
)

// Config is router's configuration, read from the environment.
type Config struct {
	runtime.Common
	authclient.ClientConfig

	// ProducerConfig is where llm-call events go.
	kafka.ProducerConfig

	// Guard turns the inline content checks on; their policy and detectors are configured by
	// policy.Config (GUARD_POLICY, ...).
	Guard bool `envconfig:"ROUTER_GUARD" default:"true"`
	policy.Config

	// RoutingFile is the routing file (providers, models, prices, limits), usually mounted
	// from a ConfigMap; it is re-read when it changes. Empty: the built-in mock routing.
	RoutingFile    string        `envconfig:"ROUTER_CONFIG"`
	ReloadInterval time.Duration `envconfig:"ROUTER_CONFIG_RELOAD" default:"5s"`

	// RedisURL (redis://[user:password@]host:port/db) shares limits between replicas. Empty:
	// limits are kept in memory, right for a single replica.
	RedisURL string `envconfig:"REDIS_URL"`
	// LimitsTimeout bounds the time a call spends on Redis per step (its admission, then its
	// corrections); past it, this pod's own buckets decide.
	LimitsTimeout time.Duration `envconfig:"ROUTER_LIMITS_TIMEOUT" default:"50ms"`

	Capture         string `envconfig:"ROUTER_CAPTURE" default:"truncated"`
	CaptureMaxBytes int    `envconfig:"ROUTER_CAPTURE_MAX_BYTES" default:"4096"`

	TelemetryBuffer int `envconfig:"ROUTER_TELEMETRY_BUFFER" default:"10000"`
	TelemetryBatch  int `envconfig:"ROUTER_TELEMETRY_BATCH" default:"500"`

	MaxRequestBytes int64 `envconfig:"MAX_REQUEST_BYTES" default:"4194304"`
	// UpstreamConns bounds idle keep-alive connections per provider host.
	UpstreamConns int `envconfig:"ROUTER_UPSTREAM_CONNS" default:"256"`

	// GOGC is Go's collector setting, which New applies; empty is defaultGCPercent.
	GOGC string `envconfig:"GOGC"`
}

// Validate checks the configuration.
func (c Config) Validate() error {
	errs := []error{c.Common.Validate(), c.ClientConfig.Validate(), c.ProducerConfig.Validate(), c.Config.Validate()}
	if c.ReloadInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("ROUTER_CONFIG_RELOAD must be at least 100ms, got %s", c.ReloadInterval))
	}
	if c.RedisURL != "" {
		if _, err := limits.RedisOptions(c.RedisURL); err != nil {
			errs = append(errs, err)
		}
	}
	if c.LimitsTimeout < time.Millisecond || c.LimitsTimeout > time.Second {
		errs = append(errs, fmt.Errorf("ROUTER_LIMITS_TIMEOUT must be between 1ms and 1s, got %s", c.LimitsTimeout))
	}
	switch c.Capture {
	case CaptureFull, CaptureTruncated, CaptureNone:
	default:
		errs = append(errs, fmt.Errorf("ROUTER_CAPTURE must be full, truncated or none, got %q", c.Capture))
	}
	if c.CaptureMaxBytes < 16 {
		errs = append(errs, fmt.Errorf("ROUTER_CAPTURE_MAX_BYTES must be at least 16, got %d", c.CaptureMaxBytes))
	}
	if c.TelemetryBuffer < 1 || c.TelemetryBatch < 1 {
		errs = append(errs, fmt.Errorf("ROUTER_TELEMETRY_BUFFER and ROUTER_TELEMETRY_BATCH must be at least 1, got %d and %d", c.TelemetryBuffer, c.TelemetryBatch))
	}
	if c.MaxRequestBytes < 1024 {
		errs = append(errs, fmt.Errorf("MAX_REQUEST_BYTES must be at least 1024, got %d", c.MaxRequestBytes))
	}
	if _, err := gcPercent(c.GOGC); err != nil {
		errs = append(errs, err)
	}
	if c.UpstreamConns < 1 {
		errs = append(errs, fmt.Errorf("ROUTER_UPSTREAM_CONNS must be at least 1, got %d", c.UpstreamConns))
	}
	return errors.Join(errs...)
}

// defaultGCPercent is router's GOGC unless the environment sets one. router is on every call's
// path and its heap is small (about 30 MiB at 1,000 calls/s): collecting once the heap has grown
// fourfold instead of twofold cuts the collector's CPU and the latency it adds to calls, for
// about 15 MiB more.
const defaultGCPercent = 400

// gcPercent reads a GOGC value as Go does (off, or a percentage); empty is router's default.
func gcPercent(gogc string) (int, error) {
	switch gogc {
	case "":
		return defaultGCPercent, nil
	case "off":
		return -1, nil
	}
	n, err := strconv.Atoi(gogc)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("GOGC must be off or a percentage, got %q", gogc)
	}
	return n, nil
}
