package policy

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/functions/guard/detect"
	"github.com/trustplane/trustplane/functions/runtime"
)

// Config is the configuration router and guard share for their checks, read from the
// environment.
type Config struct {
	// PolicyFile is the policy file, usually mounted from a ConfigMap; re-read when it changes.
	// Empty: the built-in policy (BuiltinYAML).
	PolicyFile     string        `envconfig:"GUARD_POLICY"`
	ReloadInterval time.Duration `envconfig:"GUARD_POLICY_RELOAD" default:"5s"`
	// FingerprintKeyFile holds the key of the findings' fingerprints (a keyed hash of each
	// matched value, for counting repeats without storing it), usually from a Secret. Empty:
	// findings carry no fingerprint.
	FingerprintKeyFile string `envconfig:"GUARD_FINGERPRINT_KEY_FILE"`
	// MaxScanBytes bounds the text one scan looks at; past it the rest is not scanned and the
	// findings say so (truncated).
	MaxScanBytes int `envconfig:"GUARD_MAX_SCAN_BYTES" default:"1048576"`
}

// Validate checks the configuration without reading any file.
func (c Config) Validate() error {
	var errs []error
	if c.ReloadInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("GUARD_POLICY_RELOAD must be at least 100ms, got %s", c.ReloadInterval))
	}
	if c.MaxScanBytes < 1024 || c.MaxScanBytes > 64<<20 {
		errs = append(errs, fmt.Errorf("GUARD_MAX_SCAN_BYTES must be between 1024 and %d, got %d", 64<<20, c.MaxScanBytes))
	}
	return errors.Join(errs...)
}

// Checks are what running the checks takes: the scanner with every detector, and the policy.
type Checks struct {
	Scanner  *detect.Scanner
	Policies *Source
}

// Open reads the fingerprint key and the policy file, and registers the policy's reload
// metric (trustplane_<subsystem>_policy_loads_total) with reg, which may be nil.
func Open(c Config, subsystem string, logger *slog.Logger, reg prometheus.Registerer) (*Checks, error) {
	var key []byte
	if c.FingerprintKeyFile != "" {
		b, err := runtime.ReadFile(c.FingerprintKeyFile, 4096)
		if err != nil {
			return nil, fmt.Errorf("GUARD_FINGERPRINT_KEY_FILE: %w", err)
		}
		if key = []byte(strings.TrimSpace(string(b))); len(key) < 16 {
			return nil, fmt.Errorf("GUARD_FINGERPRINT_KEY_FILE: the key must be at least 16 bytes, got %d", len(key))
		}
	}
	loads := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "trustplane", Subsystem: subsystem, Name: "policy_loads_total",
		Help: "Loads of the guard policy file, by outcome (ok, error: the previous policy stays in force)."}, []string{"outcome"})
	if reg != nil {
		reg.MustRegister(loads)
	}
	src, err := Load(c.PolicyFile, logger, func(err error) {
		if err != nil {
			loads.WithLabelValues("error").Inc()
			return
		}
		loads.WithLabelValues("ok").Inc()
	})
	if err != nil {
		return nil, err
	}
	return &Checks{Scanner: detect.Default(detect.Options{MaxBytes: c.MaxScanBytes, HashKey: key}), Policies: src}, nil
}
