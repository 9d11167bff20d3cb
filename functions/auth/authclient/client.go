// Package authclient is what a function that verifies API keys needs of the auth function: the
// principal a key speaks for, scopes, the key format and the Bearer header, the denial errors
// and the HTTP status each answers with, and Client, which asks the auth function over
// CloudEvents and caches its answers. It holds none of auth's key file, store or pepper code.
package authclient

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// ClientConfig is the environment of a function that verifies keys through the auth function.
// Embed it (anonymously, so the variable names stay AUTH_*) in the function's config and call
// its Validate from the function's Validate.
type ClientConfig struct {
	URL string `envconfig:"AUTH_URL" required:"true"`
	// CacheTTL is how long a verified answer is reused. A revoked key keeps working for at most
	// AUTH_RELOAD_INTERVAL (auth's poll) + CacheTTL + Timeout after the new key file is visible
	// in the auth pod.
	CacheTTL         time.Duration `envconfig:"AUTH_CACHE_TTL" default:"30s"`
	NegativeCacheTTL time.Duration `envconfig:"AUTH_NEGATIVE_CACHE_TTL" default:"2s"`
	CacheSize        int           `envconfig:"AUTH_CACHE_SIZE" default:"10000"`
	Timeout          time.Duration `envconfig:"AUTH_TIMEOUT" default:"2s"`
}

// Validate checks the settings.
func (c ClientConfig) Validate() error {
	var errs []error
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("AUTH_URL must be an http(s) URL, got %q", c.URL))
	}
	if c.CacheTTL < 0 {
		errs = append(errs, fmt.Errorf("AUTH_CACHE_TTL must not be negative, got %s", c.CacheTTL))
	}
	if c.NegativeCacheTTL < 0 {
		errs = append(errs, fmt.Errorf("AUTH_NEGATIVE_CACHE_TTL must not be negative, got %s", c.NegativeCacheTTL))
	}
	if c.CacheSize < 1 {
		errs = append(errs, fmt.Errorf("AUTH_CACHE_SIZE must be at least 1, got %d", c.CacheSize))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("AUTH_TIMEOUT must be positive, got %s", c.Timeout))
	}
	return errors.Join(errs...)
}

// Options are the parts of a Client that do not come from the environment.
type Options struct {
	HTTPClient *http.Client          // default: http.DefaultClient's transport with no timeout of its own
	Registerer prometheus.Registerer // nil: metrics are not registered
	Now        func() time.Time      // clock for cache expiry; default time.Now
	Source     string                // CloudEvents source of requests; default /trustplane/auth-client
}

// Client verifies keys with the auth function over HTTP, caching answers. It is safe for
// concurrent use and implements Verifier.
type Client struct {
	cfg    ClientConfig
	ce     cloudevents.Client
	now    func() time.Time
	source string

	mu     sync.Mutex
	lru    *list.List // of *cacheEntry, most recent at the front
	cache  map[[sha256.Size]byte]*list.Element
	flight map[[sha256.Size]byte]*call

	lookups  *prometheus.CounterVec
	outcomes *prometheus.CounterVec
}

type cacheEntry struct {
	id      [sha256.Size]byte
	p       Principal
	denied  *DeniedError
	expires time.Time
}

type call struct {
	done chan struct{}
	p    Principal
	err  error
}

// New builds a client for the auth function at cfg.URL.
func New(cfg ClientConfig, opts Options) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	proto, err := cehttp.New(cehttp.WithTarget(cfg.URL), cehttp.WithClient(*hc))
	if err != nil {
		return nil, fmt.Errorf("auth client: %w", err)
	}
	ce, err := cloudevents.NewClient(proto)
	if err != nil {
		return nil, fmt.Errorf("auth client: %w", err)
	}
	c := &Client{
		cfg: cfg, ce: ce, now: opts.Now, source: opts.Source,
		lru:    list.New(),
		cache:  make(map[[sha256.Size]byte]*list.Element),
		flight: make(map[[sha256.Size]byte]*call),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "trustplane", Subsystem: "auth_client", Name: "cache_lookups_total",
			Help: "Key verification cache lookups, by result (hit or miss).",
		}, []string{"result"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "trustplane", Subsystem: "auth_client", Name: "requests_total",
			Help: "Verify requests sent to the auth function, by outcome (verified, denied, unavailable).",
		}, []string{"outcome"}),
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.source == "" {
		c.source = "/trustplane/auth-client"
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(c.lookups); err != nil {
			return nil, fmt.Errorf("auth client metrics: %w", err)
		}
		if err := opts.Registerer.Register(c.outcomes); err != nil {
			return nil, fmt.Errorf("auth client metrics: %w", err)
		}
	}
	return c, nil
}

// cacheID identifies a (key, scope) pair without keeping the key: the raw key is never a map
// key or cache field.
func cacheID(key string, scope Scope) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write([]byte(scope))
	var id [sha256.Size]byte
	h.Sum(id[:0])
	return id
}

// Verify returns the principal of key if it carries scope. Answers are cached per key and
// scope; concurrent identical lookups share one request. Errors are *DeniedError or wrap
// ErrUnavailable.
func (c *Client) Verify(ctx context.Context, key string, scope Scope) (Principal, error) {
	if !scope.Valid() {
		return Principal{}, fmt.Errorf("unknown scope %q", scope)
	}
	keyID, err := ParseKey(key)
	if err != nil {
		// Settled locally: a malformed key never costs a request.
		return Principal{}, &DeniedError{Denial{Reason: ReasonMalformed, Message: err.Error()}}
	}
	id := cacheID(key, scope)

	c.mu.Lock()
	if el, ok := c.cache[id]; ok {
		e := el.Value.(*cacheEntry)
		if c.now().Before(e.expires) {
			c.lru.MoveToFront(el)
			c.mu.Unlock()
			c.lookups.WithLabelValues("hit").Inc()
			if e.denied != nil {
				return Principal{}, e.denied
			}
			return clonePrincipal(e.p), nil
		}
		c.lru.Remove(el)
		delete(c.cache, id)
	}
	c.lookups.WithLabelValues("miss").Inc()
	cl, running := c.flight[id]
	if !running {
		cl = &call{done: make(chan struct{})}
		c.flight[id] = cl
		// The request outlives a cancelled first caller, since others may be waiting on it.
		go c.run(context.WithoutCancel(ctx), id, cl, key, keyID, scope)
	}
	c.mu.Unlock()

	select {
	case <-cl.done:
		if cl.err != nil {
			return Principal{}, cl.err
		}
		return clonePrincipal(cl.p), nil
	case <-ctx.Done():
		return Principal{}, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
}

// clonePrincipal copies what a caller could change in place, so that no caller alters the
// answer the cache gives the next one.
func clonePrincipal(p Principal) Principal {
	p.Scopes = slices.Clone(p.Scopes)
	if p.Limits != nil {
		l := *p.Limits
		p.Limits = &l
	}
	return p
}

func (c *Client) run(ctx context.Context, id [sha256.Size]byte, cl *call, key, keyID string, scope Scope) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	cl.p, cl.err = c.request(ctx, key, keyID, scope)

	var denied *DeniedError
	outcome := "verified"
	switch {
	case errors.As(cl.err, &denied):
		outcome = "denied"
	case cl.err != nil:
		outcome = "unavailable"
	}
	c.outcomes.WithLabelValues(outcome).Inc()

	c.mu.Lock()
	delete(c.flight, id)
	// Unavailable answers are not cached: the next request tries again.
	switch {
	case cl.err == nil && c.cfg.CacheTTL > 0:
		c.store(&cacheEntry{id: id, p: cl.p, expires: c.now().Add(c.cfg.CacheTTL)})
	case denied != nil && c.cfg.NegativeCacheTTL > 0:
		c.store(&cacheEntry{id: id, denied: denied, expires: c.now().Add(c.cfg.NegativeCacheTTL)})
	}
	c.mu.Unlock()
	close(cl.done)
}

// store adds e, evicting the least recently used entry when full. c.mu is held.
func (c *Client) store(e *cacheEntry) {
	if el, ok := c.cache[e.id]; ok {
		c.lru.Remove(el)
	}
	for c.lru.Len() >= c.cfg.CacheSize {
		oldest := c.lru.Back()
		c.lru.Remove(oldest)
		delete(c.cache, oldest.Value.(*cacheEntry).id)
	}
	c.cache[e.id] = c.lru.PushFront(e)
}

func (c *Client) request(ctx context.Context, key, keyID string, scope Scope) (Principal, error) {
	ev := cloudevents.NewEvent()
	ev.SetID(uuid.NewString())
	ev.SetSource(c.source)
	ev.SetType(VerifyType)
	ev.SetTime(time.Now())
	if err := ev.SetData(cloudevents.ApplicationJSON, VerifyRequest{Key: key, Scope: scope}); err != nil {
		return Principal{}, fmt.Errorf("encode verify request: %w", err)
	}
	resp, res := c.ce.Request(ctx, ev)
	var hres *cehttp.Result
	if cloudevents.IsUndelivered(res) {
		return Principal{}, fmt.Errorf("%w: %w", ErrUnavailable, res)
	}
	if errors.As(res, &hres) && hres.StatusCode/100 != 2 {
		return Principal{}, fmt.Errorf("%w: auth answered HTTP %d", ErrUnavailable, hres.StatusCode)
	}
	if resp == nil {
		return Principal{}, fmt.Errorf("%w: auth answered without a reply event", ErrUnavailable)
	}
	switch resp.Type() {
	case VerifiedType:
		var p Principal
		// A reply for another key, or without the tenant and project that callers stamp on
		// what the key sends, is not an answer to this request.
		if err := json.Unmarshal(resp.Data(), &p); err != nil || p.KeyID != keyID || p.Tenant == "" || p.Project == "" || !p.HasScope(scope) {
			return Principal{}, fmt.Errorf("%w: bad verified reply", ErrUnavailable)
		}
		return p, nil
	case DeniedType:
		var d Denial
		if err := json.Unmarshal(resp.Data(), &d); err != nil || d.Reason == "" {
			return Principal{}, fmt.Errorf("%w: bad denied reply", ErrUnavailable)
		}
		return Principal{}, &DeniedError{d}
	default:
		return Principal{}, fmt.Errorf("%w: unexpected reply type %q", ErrUnavailable, resp.Type())
	}
}
