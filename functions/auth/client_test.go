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
)

func TestClientPositiveCache(t *testing.T) {
	e := newEnv(t)
	clock := newFakeClock()
	c := e.client(t, clock, nil)
	key, rec := e.addKey(t, "acme", ScopeIngest)
	ctx := context.Background()

	for i := range 3 {
		p, err := c.Verify(ctx, key, ScopeIngest)
		if err != nil || p.KeyID != rec.ID || p.Tenant != "acme" {
			t.Fatalf("verify %d: %+v %v", i, p, err)
		}
	}
	if n := e.requests.Load(); n != 1 {
		t.Fatalf("3 verifications within the TTL made %d requests, want 1", n)
	}
	if hits, misses := value(t, c.lookups.WithLabelValues("hit")), value(t, c.lookups.WithLabelValues("miss")); hits != 2 || misses != 1 {
		t.Fatalf("cache hits %v misses %v", hits, misses)
	}
	// The cache is per scope: another scope asks again.
	if _, err := c.Verify(ctx, key, ScopeQuery); HTTPStatus(err) != http.StatusForbidden {
		t.Fatalf("other scope: %v", err)
	}
	if n := e.requests.Load(); n != 2 {
		t.Fatalf("requests = %d, want 2", n)
	}
	// A caller mutating its principal does not change the cached one.
	p, _ := c.Verify(ctx, key, ScopeIngest)
	p.Scopes[0] = ScopeLLM
	if p, _ := c.Verify(ctx, key, ScopeIngest); p.Scopes[0] != ScopeIngest {
		t.Fatal("cached principal was mutated through a returned copy")
	}
	clock.Advance(30 * time.Second)
	if _, err := c.Verify(ctx, key, ScopeIngest); err != nil {
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
	unknown, _, _ := GenerateKey()
	ctx := context.Background()
	for range 3 {
		if _, err := c.Verify(ctx, unknown, ScopeIngest); HTTPStatus(err) != http.StatusUnauthorized {
			t.Fatalf("unknown key: %v", err)
		}
	}
	if n := e.requests.Load(); n != 1 {
		t.Fatalf("requests = %d, want 1", n)
	}
	clock.Advance(2*time.Second - time.Nanosecond)
	_, _ = c.Verify(ctx, unknown, ScopeIngest)
	if n := e.requests.Load(); n != 1 {
		t.Fatalf("within the negative TTL requests = %d, want 1", n)
	}
	clock.Advance(time.Nanosecond)
	_, _ = c.Verify(ctx, unknown, ScopeIngest)
	if n := e.requests.Load(); n != 2 {
		t.Fatalf("after the negative TTL requests = %d, want 2", n)
	}
	// Malformed keys are answered locally.
	if _, err := c.Verify(ctx, "tp_short", ScopeIngest); HTTPStatus(err) != http.StatusUnauthorized {
		t.Fatalf("malformed: %v", err)
	}
	if n := e.requests.Load(); n != 2 {
		t.Fatalf("malformed key made a request")
	}
}

func TestClientCoalescesConcurrentLookups(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, newFakeClock(), nil)
	key, rec := e.addKey(t, "acme", ScopeIngest)
	gate := make(chan struct{})
	e.gate.Store(&gate)

	const callers = 20
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := c.Verify(context.Background(), key, ScopeIngest)
			if err == nil && p.KeyID != rec.ID {
				err = fmt.Errorf("principal %+v", p)
			}
			errs <- err
		}()
	}
	// Every caller has missed the cache (and so joined the flight) before the server answers.
	for value(t, c.lookups.WithLabelValues("miss")) < callers {
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
	key, _, _ := GenerateKey()
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
		c, err := NewClient(ClientConfig{URL: url, CacheTTL: time.Minute, NegativeCacheTTL: time.Minute, CacheSize: 10, Timeout: time.Second}, ClientOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Verify(ctx, key, ScopeIngest)
		if !errors.Is(err, ErrUnavailable) || IsDenied(err) || HTTPStatus(err) != http.StatusServiceUnavailable {
			t.Errorf("%s: err %v, want unavailable (503)", name, err)
		}
		if strings.Contains(fmt.Sprint(err), key[12:]) {
			t.Errorf("%s: error contains the key", name)
		}
		if len(c.cache) != 0 {
			t.Errorf("%s: an unavailable answer was cached", name)
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
	if _, err := c.Verify(cctx, key, ScopeIngest); !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
}

// A verified reply that does not answer the request (another key's, or one without a tenant
// or project) is refused as a bad reply, never taken as the caller's identity.
func TestClientRefusesVerifiedReplyNotForItsKey(t *testing.T) {
	key, _, _ := GenerateKey()
	id, err := ParseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := GenerateKey()
	otherID, _ := ParseKey(other)
	for name, principal := range map[string]string{
		"another key's":  `{"key_id":"` + otherID + `","tenant":"t","project":"p","scopes":["ingest"]}`,
		"no tenant":      `{"key_id":"` + id + `","tenant":"","project":"p","scopes":["ingest"]}`,
		"no project":     `{"key_id":"` + id + `","tenant":"t","scopes":["ingest"]}`,
		"no such scope":  `{"key_id":"` + id + `","tenant":"t","project":"p","scopes":["query"]}`,
		"this key's, ok": `{"key_id":"` + id + `","tenant":"t","project":"p","scopes":["ingest"]}`,
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			h.Set("Ce-Specversion", "1.0")
			h.Set("Ce-Id", "reply-1")
			h.Set("Ce-Source", "/auth")
			h.Set("Ce-Type", VerifiedType)
			h.Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(principal))
		}))
		// The good reply must come within the 1 s timeout: 15 times the slowest of a million
		// loopback calls on the 2-core build machine under load (66 ms), so it is late by
		// accident far less than once in a million.
		c, err := NewClient(ClientConfig{URL: srv.URL, CacheTTL: time.Minute, NegativeCacheTTL: time.Minute, CacheSize: 10, Timeout: time.Second}, ClientOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.Verify(context.Background(), key, ScopeIngest)
		srv.Close()
		if name == "this key's, ok" {
			if err != nil || p.KeyID != id || p.Tenant != "t" {
				t.Errorf("%s: %+v, %v", name, p, err)
			}
			continue
		}
		if !errors.Is(err, ErrUnavailable) || p.Tenant != "" {
			t.Errorf("%s: principal %+v, err %v; want a bad reply (unavailable)", name, p, err)
		}
	}
}

func TestClonedPrincipalSharesNothingWithTheCache(t *testing.T) {
	cached := Principal{KeyID: "k", Scopes: []Scope{ScopeLLM}, Limits: &Limits{RequestsPerMinute: 10}}
	p := clonePrincipal(cached)
	p.Scopes[0] = ScopeQuery
	p.Limits.RequestsPerMinute = 1e9
	if cached.Scopes[0] != ScopeLLM || cached.Limits.RequestsPerMinute != 10 {
		t.Fatalf("changing a clone changed the cached principal: %+v %+v", cached, *cached.Limits)
	}
}

// A revoked key stops working within AUTH_RELOAD_INTERVAL + AUTH_CACHE_TTL: the store's next
// poll picks up the revocation, and the client's cached positive answer lasts CacheTTL.
func TestRevokedKeyStopsWithinBound(t *testing.T) {
	e := newEnv(t)
	clock := newFakeClock()
	ttl := 30 * time.Second
	c := e.client(t, clock, func(cfg *ClientConfig) { cfg.CacheTTL = ttl })
	key, rec := e.addKey(t, "acme", ScopeIngest)
	ctx := context.Background()
	if _, err := c.Verify(ctx, key, ScopeIngest); err != nil {
		t.Fatal(err)
	}
	// Revocation written and seen by the store's poll (at most one reload interval later).
	e.revoke(t, rec.ID)
	clock.Advance(ttl - time.Nanosecond)
	if _, err := c.Verify(ctx, key, ScopeIngest); err != nil {
		t.Fatalf("still cached within the TTL: %v", err)
	}
	clock.Advance(time.Nanosecond)
	_, err := c.Verify(ctx, key, ScopeIngest)
	var d *DeniedError
	if !errors.As(err, &d) || d.Reason != ReasonRevoked || d.KeyID != rec.ID || HTTPStatus(err) != http.StatusUnauthorized {
		t.Fatalf("revoked key after the bound: %v", err)
	}
}

func TestClientCacheIsBounded(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, newFakeClock(), func(cfg *ClientConfig) { cfg.CacheSize = 2 })
	ctx := context.Background()
	var keys []string
	for range 3 {
		k, _ := e.addKey(t, "acme", ScopeIngest)
		keys = append(keys, k)
	}
	for _, k := range keys {
		if _, err := c.Verify(ctx, k, ScopeIngest); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.cache) != 2 || c.lru.Len() != 2 {
		t.Fatalf("cache holds %d entries, want 2", len(c.cache))
	}
	for id := range c.cache {
		if id == cacheID(keys[0], ScopeIngest) {
			t.Fatal("least recently used entry was not evicted")
		}
	}
	before := e.requests.Load()
	_, _ = c.Verify(ctx, keys[2], ScopeIngest)
	_, _ = c.Verify(ctx, keys[0], ScopeIngest)
	if got := e.requests.Load() - before; got != 1 {
		t.Fatalf("requests = %d, want 1 (only the evicted key)", got)
	}
}

func TestClientConfigValidate(t *testing.T) {
	err := ClientConfig{URL: "ftp://x", CacheTTL: -1, NegativeCacheTTL: -1, CacheSize: 0, Timeout: 0}.Validate()
	for _, want := range []string{"AUTH_URL", "AUTH_CACHE_TTL", "AUTH_NEGATIVE_CACHE_TTL", "AUTH_CACHE_SIZE", "AUTH_TIMEOUT"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

func TestBearerKey(t *testing.T) {
	key, _, _ := GenerateKey()
	for _, c := range []struct {
		headers []string
		want    error
	}{
		{nil, ErrMissingAuthorization},
		{[]string{""}, ErrMissingAuthorization},
		{[]string{"Basic dXNlcjpwYXNz"}, ErrNotBearer},
		{[]string{key}, ErrNotBearer},
		{[]string{"Bearer " + key[:40]}, ErrMalformedBearerKey},
		{[]string{"Bearer " + key, "Bearer " + key}, ErrMultipleAuthorization},
		{[]string{"Bearer " + key}, nil},
		{[]string{"bearer  " + key + " "}, nil},
	} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		for _, h := range c.headers {
			r.Header.Add("Authorization", h)
		}
		got, err := BearerKey(r)
		if err != c.want {
			t.Errorf("%q: err %v, want %v", c.headers, err, c.want)
		}
		if err == nil && got != key {
			t.Errorf("%q: key %q", c.headers, got)
		}
		if err != nil && (HTTPStatus(err) != http.StatusUnauthorized || strings.Contains(err.Error(), key[12:])) {
			t.Errorf("%q: %v must be a 401 that does not echo the key", c.headers, err)
		}
	}
}
