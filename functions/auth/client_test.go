package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/functions/auth/authclient"
)

func TestClientPositiveCache(t *testing.T) {
	e := newEnv(t)
	clock := newFakeClock()
	c := e.client(t, clock, nil)
	key, rec := e.addKey(t, "acme", authclient.ScopeIngest)
	ctx := context.Background()

	for i := range 3 {
		p, err := c.Verify(ctx, key, authclient.ScopeIngest)
		if err != nil || p.KeyID != rec.ID || p.Tenant != "acme" {
			t.Fatalf("verify %d: %+v %v", i, p, err)
		}
	}
	if n := e.requests.Load(); n != 1 {
		t.Fatalf("3 verifications within the TTL made %d requests, want 1", n)
	}
	if hits, misses := c.lookups(t, "hit"), c.lookups(t, "miss"); hits != 2 || misses != 1 {
		t.Fatalf("cache hits %v misses %v", hits, misses)
	}
	// The cache is per scope: another scope asks again.
	if _, err := c.Verify(ctx, key, authclient.ScopeQuery); authclient.HTTPStatus(err) != http.StatusForbidden {
		t.Fatalf("other scope: %v", err)
	}
	if n := e.requests.Load(); n != 2 {
		t.Fatalf("requests = %d, want 2", n)
	}
	// A caller mutating its principal does not change the cached one.
	p, _ := c.Verify(ctx, key, authclient.ScopeIngest)
	p.Scopes[0] = authclient.ScopeLLM
	if p, _ := c.Verify(ctx, key, authclient.ScopeIngest); p.Scopes[0] != authclient.ScopeIngest {
		t.Fatal("cached principal was mutated through a returned copy")
	}
	clock.Advance(30 * time.Second)
	if _, err := c.Verify(ctx, key, authclient.ScopeIngest); err != nil {
		t.Fatal(err)
	}
	if n := e.requests.Load(); n != 3 {
		t.Fatalf("after the TTL requests = %d, want 3", n)
	}
}

func TestClientNegativeCache(t *testing.T) {
	e := newEnv(t)
	clock := newFakeClock()
	c := e.client(t, clock, nil)
	unknown, _, _ := authclient.GenerateKey()
	ctx := context.Background()
	for range 3 {
		if _, err := c.Verify(ctx, unknown, authclient.ScopeIngest); authclient.HTTPStatus(err) != http.StatusUnauthorized {
			t.Fatalf("unknown key: %v", err)
		}
	}
	if n := e.requests.Load(); n != 1 {
		t.Fatalf("requests = %d, want 1", n)
	}
	clock.Advance(2*time.Second - time.Nanosecond)
	_, _ = c.Verify(ctx, unknown, authclient.ScopeIngest)
	if n := e.requests.Load(); n != 1 {
		t.Fatalf("within the negative TTL requests = %d, want 1", n)
	}
	clock.Advance(time.Nanosecond)
	_, _ = c.Verify(ctx, unknown, authclient.ScopeIngest)
	if n := e.requests.Load(); n != 2 {
		t.Fatalf("after the negative TTL requests = %d, want 2", n)
	}
	// Malformed keys are answered locally.
	if _, err := c.Verify(ctx, "tp_short", authclient.ScopeIngest); authclient.HTTPStatus(err) != http.StatusUnauthorized {
		t.Fatalf("malformed: %v", err)
	}
	if n := e.requests.Load(); n != 2 {
		t.Fatalf("malformed key made a request")
	}
}

func TestClientCoalescesConcurrentLookups(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, newFakeClock(), nil)
	key, rec := e.addKey(t, "acme", authclient.ScopeIngest)
	gate := make(chan struct{})
	e.gate.Store(&gate)

	const callers = 20
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := c.Verify(context.Background(), key, authclient.ScopeIngest)
			if err == nil && p.KeyID != rec.ID {
				err = fmt.Errorf("principal %+v", p)
			}
			errs <- err
		}()
	}
	// Every caller has missed the cache (and so joined the flight) before the server answers.
	for c.lookups(t, "miss") < callers {
		time.Sleep(time.Millisecond)
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := e.requests.Load(); n != 1 {
		t.Fatalf("%d concurrent lookups made %d requests, want 1", callers, n)
	}
}

func TestClientUnavailableIsNotDenied(t *testing.T) {
	key, _, _ := authclient.GenerateKey()
	ctx := context.Background()

	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	}))
	defer failing.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	notEvents := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	defer notEvents.Close()

	for name, url := range map[string]string{"500": failing.URL, "connection refused": closed.URL, "no reply event": notEvents.URL} {
		reg := prometheus.NewRegistry()
		c, err := authclient.New(authclient.ClientConfig{URL: url, CacheTTL: time.Minute, NegativeCacheTTL: time.Minute, CacheSize: 10, Timeout: time.Second}, authclient.Options{Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Verify(ctx, key, authclient.ScopeIngest)
		var denied *authclient.DeniedError
		if !errors.Is(err, authclient.ErrUnavailable) || errors.As(err, &denied) || authclient.HTTPStatus(err) != http.StatusServiceUnavailable {
			t.Errorf("%s: err %v, want unavailable (503)", name, err)
		}
		if strings.Contains(fmt.Sprint(err), key[12:]) {
			t.Errorf("%s: error contains the key", name)
		}
		// Had the answer been cached, asking again would not reach the server.
		_, _ = c.Verify(ctx, key, authclient.ScopeIngest)
		if n := counter(t, reg, "trustplane_auth_client_requests_total", "outcome", "unavailable"); n != 2 {
			t.Errorf("%s: an unavailable answer was cached (%v requests for two lookups)", name, n)
		}
	}

	// A caller whose context ends while auth is slow gets unavailable too.
	e := newEnv(t)
	gate := make(chan struct{})
	e.gate.Store(&gate)
	defer close(gate)
	c := e.client(t, nil, nil)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Verify(cctx, key, authclient.ScopeIngest); !errors.Is(err, authclient.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
}

// A revoked key stops working within AUTH_RELOAD_INTERVAL + AUTH_CACHE_TTL: the store's next
// poll picks up the revocation, and the client's cached positive answer lasts CacheTTL.
func TestRevokedKeyStopsWithinBound(t *testing.T) {
	e := newEnv(t)
	clock := newFakeClock()
	ttl := 30 * time.Second
	c := e.client(t, clock, func(cfg *authclient.ClientConfig) { cfg.CacheTTL = ttl })
	key, rec := e.addKey(t, "acme", authclient.ScopeIngest)
	ctx := context.Background()
	if _, err := c.Verify(ctx, key, authclient.ScopeIngest); err != nil {
		t.Fatal(err)
	}
	// Revocation written and seen by the store's poll (at most one reload interval later).
	e.revoke(t, rec.ID)
	clock.Advance(ttl - time.Nanosecond)
	if _, err := c.Verify(ctx, key, authclient.ScopeIngest); err != nil {
		t.Fatalf("still cached within the TTL: %v", err)
	}
	clock.Advance(time.Nanosecond)
	_, err := c.Verify(ctx, key, authclient.ScopeIngest)
	var d *authclient.DeniedError
	if !errors.As(err, &d) || d.Reason != authclient.ReasonRevoked || d.KeyID != rec.ID || authclient.HTTPStatus(err) != http.StatusUnauthorized {
		t.Fatalf("revoked key after the bound: %v", err)
	}
}

func TestClientCacheIsBounded(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, newFakeClock(), func(cfg *authclient.ClientConfig) { cfg.CacheSize = 2 })
	ctx := context.Background()
	var keys []string
	for range 3 {
		k, _ := e.addKey(t, "acme", authclient.ScopeIngest)
		keys = append(keys, k)
	}
	for _, k := range keys {
		if _, err := c.Verify(ctx, k, authclient.ScopeIngest); err != nil {
			t.Fatal(err)
		}
	}
	// The two most recent keys are answered from the cache; the least recently used one was
	// evicted, and asking for it again evicts the next least recent.
	before := e.requests.Load()
	_, _ = c.Verify(ctx, keys[1], authclient.ScopeIngest)
	_, _ = c.Verify(ctx, keys[2], authclient.ScopeIngest)
	if got := e.requests.Load() - before; got != 0 {
		t.Fatalf("requests = %d, want 0: the cache lost one of its two most recent keys", got)
	}
	_, _ = c.Verify(ctx, keys[0], authclient.ScopeIngest)
	if got := e.requests.Load() - before; got != 1 {
		t.Fatalf("requests = %d, want 1 (only the evicted key)", got)
	}
	_, _ = c.Verify(ctx, keys[1], authclient.ScopeIngest)
	if got := e.requests.Load() - before; got != 2 {
		t.Fatalf("requests = %d, want 2: the cache holds more than 2 entries", got)
	}
}
