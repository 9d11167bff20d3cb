package authclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trustplane/trustplane/functions/runtime"
)

func TestClonedPrincipalSharesNothingWithTheCache(t *testing.T) {
	cached := Principal{KeyID: "k", Scopes: []Scope{ScopeLLM}, Limits: &Limits{RequestsPerMinute: 10}}
	p := clonePrincipal(cached)
	p.Scopes[0] = ScopeQuery
	p.Limits.RequestsPerMinute = 1e9
	if cached.Scopes[0] != ScopeLLM || cached.Limits.RequestsPerMinute != 10 {
		t.Fatalf("changing a clone changed the cached principal: %+v %+v", cached, *cached.Limits)
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
		c, err := New(ClientConfig{URL: srv.URL, CacheTTL: time.Minute, NegativeCacheTTL: time.Minute, CacheSize: 10, Timeout: time.Second}, Options{})
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
