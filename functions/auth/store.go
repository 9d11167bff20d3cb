package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/functions/runtime"
)

// StoreMetrics are the auth function's metrics.
type StoreMetrics struct {
	verifications *prometheus.CounterVec
	reloads       *prometheus.CounterVec
	keys          *prometheus.GaugeVec
}

// NewStoreMetrics registers the store's metrics with reg; nil reg keeps them unregistered.
func NewStoreMetrics(reg prometheus.Registerer) *StoreMetrics {
	m := &StoreMetrics{
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "trustplane", Subsystem: "auth", Name: "verifications_total",
			Help: "Key verifications, by result (verified or the denial reason).",
		}, []string{"result"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "trustplane", Subsystem: "auth", Name: "key_file_reloads_total",
			Help: "Key file loads, by result (success or failure). A failure keeps the previous keys.",
		}, []string{"result"}),
		keys: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "trustplane", Subsystem: "auth", Name: "keys",
			Help: "Keys in the loaded key file, by status.",
		}, []string{"status"}),
	}
	if reg != nil {
		reg.MustRegister(m.verifications, m.reloads, m.keys)
	}
	return m
}

type entry struct {
	hash [sha256.Size]byte
	p    authclient.Principal
	st   Status
}

type keySet struct {
	byID map[string]entry
}

// Store holds the loaded keys and verifies keys against them. It is safe for concurrent use; a
// reload swaps the whole set atomically.
type Store struct {
	pepper  Pepper
	logger  *slog.Logger
	metrics *StoreMetrics

	watch *runtime.FileWatch[KeyFile] // nil for a store held in memory
	set   atomic.Pointer[keySet]
}

// OpenStore loads the key file at path; a missing or invalid file is an error, so the function
// refuses to start rather than denying every key. logger and metrics may be nil.
func OpenStore(path string, p Pepper, logger *slog.Logger, metrics *StoreMetrics) (*Store, error) {
	s := newStore(p, logger, metrics)
	s.watch = &runtime.FileWatch[KeyFile]{
		What: "key file", Path: path, MaxBytes: MaxKeyFileSize,
		Parse: func(data []byte, _ func(string) ([]byte, error)) (KeyFile, error) { return ParseKeyFile(data) },
		Install: func(kf KeyFile) {
			s.install(buildSet(kf))
			s.logger.Info("key file loaded", "path", path, "keys", len(kf.Keys))
		},
		// The watch tells of each version of the file once, so a bad one is logged and
		// counted once, not at every poll.
		Loaded: func(err error) {
			if err == nil {
				s.metrics.reloads.WithLabelValues("success").Inc()
				return
			}
			s.metrics.reloads.WithLabelValues("failure").Inc()
			if s.set.Load() != nil {
				s.logger.Error("key file reload failed; keeping the previously loaded keys", "error", err.Error())
			}
		},
	}
	if _, err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// NewStore builds a store over records held in memory (no file, no reloads), for tests and for
// functions that verify in process.
func NewStore(p Pepper, records []Record) (*Store, error) {
	kf := KeyFile{Keys: records}
	if err := kf.Validate(); err != nil {
		return nil, err
	}
	s := newStore(p, nil, nil)
	s.install(buildSet(kf))
	return s, nil
}

func newStore(p Pepper, logger *slog.Logger, metrics *StoreMetrics) *Store {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if metrics == nil {
		metrics = NewStoreMetrics(nil)
	}
	return &Store{pepper: p, logger: logger, metrics: metrics}
}

func buildSet(kf KeyFile) *keySet {
	ks := &keySet{byID: make(map[string]entry, len(kf.Keys))}
	for _, r := range kf.Keys {
		h, _ := decodeHash(r.Hash) // validated
		ks.byID[r.ID] = entry{hash: h, st: r.Status, p: authclient.Principal{
			KeyID: r.ID, Tenant: r.Tenant, Project: r.Project, Scopes: slices.Clone(r.Scopes), Limits: r.Limits,
		}}
	}
	return ks
}

func (s *Store) install(ks *keySet) {
	s.set.Store(ks)
	var active, revoked int
	for _, e := range ks.byID {
		if e.st == StatusActive {
			active++
		} else {
			revoked++
		}
	}
	s.metrics.keys.WithLabelValues(string(StatusActive)).Set(float64(active))
	s.metrics.keys.WithLabelValues(string(StatusRevoked)).Set(float64(revoked))
}

// Reload reads the key file and installs it if its content changed. An unreadable or invalid
// file keeps the current keys and returns the error (naming record and field); the first time
// a version fails it is counted and logged.
func (s *Store) Reload() (changed bool, err error) {
	if s.watch == nil {
		return false, errors.New("store has no key file")
	}
	return s.watch.Load()
}

// Watch polls the key file every interval until ctx ends; it fits runtime.Function.Background.
// Polling, not file notifications: Kubernetes updates Secret volumes by swapping a symlink,
// which watches on the file miss.
func (s *Store) Watch(ctx context.Context, interval time.Duration) error {
	if s.watch == nil {
		return errors.New("store has no key file")
	}
	return s.watch.Run(ctx, interval)
}

// Ready reports whether a key set is loaded; it fits runtime.Server.AddReadyCheck.
func (s *Store) Ready(context.Context) error {
	if s.set.Load() == nil {
		return errors.New("key file not loaded")
	}
	return nil
}

// Verify checks key for scope: lookup by key id, then a constant-time hash comparison.
func (s *Store) Verify(_ context.Context, key string, scope authclient.Scope) (authclient.Principal, error) {
	p, err := s.verify(key, scope)
	result := "verified"
	var d *authclient.DeniedError
	if errors.As(err, &d) {
		result = string(d.Reason)
	} else if err != nil {
		result = "error"
	}
	s.metrics.verifications.WithLabelValues(result).Inc()
	return p, err
}

func (s *Store) verify(key string, scope authclient.Scope) (authclient.Principal, error) {
	if !scope.Valid() {
		return authclient.Principal{}, fmt.Errorf("unknown scope %q", scope)
	}
	id, err := authclient.ParseKey(key)
	if err != nil {
		return authclient.Principal{}, &authclient.DeniedError{Denial: authclient.Denial{Reason: authclient.ReasonMalformed, Message: err.Error()}}
	}
	e, ok := s.set.Load().byID[id]
	// An unknown id still costs one HMAC, so timing does not tell which ids exist.
	if !s.pepper.Matches(key, e.hash) || !ok {
		return authclient.Principal{}, &authclient.DeniedError{Denial: authclient.Denial{KeyID: id, Reason: authclient.ReasonUnknownKey, Message: "no such API key"}}
	}
	if e.st != StatusActive {
		return authclient.Principal{}, &authclient.DeniedError{Denial: authclient.Denial{KeyID: id, Reason: authclient.ReasonRevoked, Message: "API key has been revoked"}}
	}
	if !e.p.HasScope(scope) {
		return authclient.Principal{}, &authclient.DeniedError{Denial: authclient.Denial{KeyID: id, Reason: authclient.ReasonMissingScope,
			Message: fmt.Sprintf("API key lacks scope %q", scope)}}
	}
	p := e.p
	p.Scopes = slices.Clone(p.Scopes)
	return p, nil
}
