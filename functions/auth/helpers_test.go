package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/functions/runtime"
	"github.com/trustplane/trustplane/internal/testsupport"
)

var testPepper = mustPepper("0123456789abcdef0123456789abcdef-test-pepper")

func mustPepper(s string) Pepper {
	p, err := NewPepper([]byte(s))
	if err != nil {
		panic(err)
	}
	return p
}

// value reads a counter or gauge.
func value(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a key file in a temp dir, a store over it, and a real auth HTTP server.
type env struct {
	path     string
	store    *Store
	metrics  *StoreMetrics
	logs     *testsupport.Buffer
	server   *httptest.Server
	requests atomic.Int64 // verify requests that reached the server
	// gate, when set, holds every request until it is closed.
	gate atomic.Pointer[chan struct{}]
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{path: filepath.Join(t.TempDir(), "keys.json"), logs: &testsupport.Buffer{}}
	if err := WriteKeyFile(e.path, KeyFile{}); err != nil {
		t.Fatal(err)
	}
	logger := runtime.NewLogger("auth", "debug", e.logs)
	e.metrics = NewStoreMetrics(prometheus.NewRegistry())
	var err error
	if e.store, err = OpenStore(e.path, testPepper, logger, e.metrics); err != nil {
		t.Fatal(err)
	}
	h := runtime.CloudEventsHandler(NewHandler(e.store, logger))
	e.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.requests.Add(1)
		if g := e.gate.Load(); g != nil {
			<-*g
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(e.server.Close)
	return e
}

// addKey creates a key in the file and reloads the store.
func (e *env) addKey(t testing.TB, tenant string, scopes ...authclient.Scope) (string, Record) {
	t.Helper()
	key, rec, err := AddKey(e.path, testPepper, NewKey{Tenant: tenant, Project: "web", Scopes: scopes}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e.reload(t)
	return key, rec
}

func (e *env) revoke(t testing.TB, id string) {
	t.Helper()
	if _, err := RevokeKey(e.path, id); err != nil {
		t.Fatal(err)
	}
	e.reload(t)
}

func (e *env) reload(t testing.TB) {
	t.Helper()
	if changed, err := e.store.Reload(); err != nil || !changed {
		t.Fatalf("reload: changed=%v err=%v", changed, err)
	}
}

// testClient is a client of the env's server with the registry its metrics are in.
type testClient struct {
	*authclient.Client
	reg *prometheus.Registry
}

// lookups is the client's count of cache lookups with result (hit or miss).
func (c testClient) lookups(t testing.TB, result string) float64 {
	t.Helper()
	return counter(t, c.reg, "trustplane_auth_client_cache_lookups_total", "result", result)
}

// counter reads the counter name{label=value} from reg; 0 when it was never counted.
func counter(t testing.TB, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func (e *env) client(t testing.TB, clock *fakeClock, mutate func(*authclient.ClientConfig)) testClient {
	t.Helper()
	// Answers must come within 5 s, 75 times the slowest of a million loopback calls on the
	// 2-core build machine under load (66 ms): no test fails by a late answer but by accident
	// far less than once in a million.
	cfg := authclient.ClientConfig{URL: e.server.URL, CacheTTL: 30 * time.Second, NegativeCacheTTL: 2 * time.Second,
		CacheSize: 10000, Timeout: 5 * time.Second}
	if mutate != nil {
		mutate(&cfg)
	}
	reg := prometheus.NewRegistry()
	opts := authclient.Options{Registerer: reg}
	if clock != nil {
		opts.Now = clock.Now
	}
	c, err := authclient.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return testClient{c, reg}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// isDenied reports whether err is a denial (as opposed to auth being unavailable).
func isDenied(err error) bool {
	var d *authclient.DeniedError
	return errors.As(err, &d)
}

// keysLoaded is the number of keys the store holds, active and revoked, as its gauge shows.
func (e *env) keysLoaded(t testing.TB) int {
	t.Helper()
	return int(value(t, e.metrics.keys.WithLabelValues(string(StatusActive))) + value(t, e.metrics.keys.WithLabelValues(string(StatusRevoked))))
}
