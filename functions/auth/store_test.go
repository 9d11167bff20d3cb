package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trustplane/trustplane/functions/auth/authclient"
)

func timeZero() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }

func denialReason(t *testing.T, err error) authclient.Reason {
	t.Helper()
	var d *authclient.DeniedError
	if !errors.As(err, &d) {
		t.Fatalf("want a denial, got %v", err)
	}
	return d.Reason
}

func TestStoreVerify(t *testing.T) {
	e := newEnv(t)
	key, rec := e.addKey(t, "acme", authclient.ScopeIngest, authclient.ScopeQuery)
	ctx := context.Background()

	p, err := e.store.Verify(ctx, key, authclient.ScopeIngest)
	if err != nil {
		t.Fatal(err)
	}
	if p.KeyID != rec.ID || p.Tenant != "acme" || p.Project != "web" || !p.HasScope(authclient.ScopeQuery) {
		t.Fatalf("principal %+v", p)
	}
	if r := denialReason(t, second(e.store.Verify(ctx, key, authclient.ScopeLLM))); r != authclient.ReasonMissingScope {
		t.Errorf("missing scope: %s", r)
	}
	unknown, _, _ := authclient.GenerateKey()
	if r := denialReason(t, second(e.store.Verify(ctx, unknown, authclient.ScopeIngest))); r != authclient.ReasonUnknownKey {
		t.Errorf("unknown key: %s", r)
	}
	// Right id, wrong secret: unknown, not a hint that the id exists.
	forged := key[:12] + strings.Repeat("a", 52)
	if r := denialReason(t, second(e.store.Verify(ctx, forged, authclient.ScopeIngest))); r != authclient.ReasonUnknownKey {
		t.Errorf("forged secret: %s", r)
	}
	if r := denialReason(t, second(e.store.Verify(ctx, "Bearer nonsense", authclient.ScopeIngest))); r != authclient.ReasonMalformed {
		t.Errorf("malformed: %s", r)
	}
	if _, err := e.store.Verify(ctx, key, authclient.Scope("admin")); err == nil || isDenied(err) {
		t.Errorf("unknown scope must be an error, not a denial: %v", err)
	}
	if got := value(t, e.metrics.verifications.WithLabelValues("verified")); got != 1 {
		t.Errorf("verified counter = %v", got)
	}
	if got := value(t, e.metrics.verifications.WithLabelValues("unknown_key")); got != 2 {
		t.Errorf("unknown_key counter = %v", got)
	}
}

func second[T any](_ T, err error) error { return err }

func TestReloadPicksUpNewKeyAndRevocation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key, rec := e.addKey(t, "acme", authclient.ScopeIngest)
	if _, err := e.store.Verify(ctx, key, authclient.ScopeIngest); err != nil {
		t.Fatalf("new key after reload: %v", err)
	}
	if e.keysLoaded(t) != 1 || value(t, e.metrics.keys.WithLabelValues("active")) != 1 {
		t.Fatalf("key count: %d", e.keysLoaded(t))
	}
	if changed, err := e.store.Reload(); changed || err != nil {
		t.Fatalf("unchanged file reloaded: %v %v", changed, err)
	}
	e.revoke(t, rec.ID)
	if r := denialReason(t, second(e.store.Verify(ctx, key, authclient.ScopeIngest))); r != authclient.ReasonRevoked {
		t.Fatalf("revoked key: %s", r)
	}
	if value(t, e.metrics.keys.WithLabelValues("revoked")) != 1 || value(t, e.metrics.keys.WithLabelValues("active")) != 0 {
		t.Fatal("key gauges not updated")
	}
}

func TestBadReloadKeepsPreviousKeys(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key, _ := e.addKey(t, "acme", authclient.ScopeIngest)
	successes := value(t, e.metrics.reloads.WithLabelValues("success"))

	writeFile(t, e.path, `{"keys":[{"id":"abcdefgh","tenant":"Bad Tenant"}]}`)
	changed, err := e.store.Reload()
	if changed || err == nil || !strings.Contains(err.Error(), "tenant") {
		t.Fatalf("bad reload: changed=%v err=%v", changed, err)
	}
	if _, err := e.store.Verify(ctx, key, authclient.ScopeIngest); err != nil {
		t.Fatalf("previous keys lost: %v", err)
	}
	if value(t, e.metrics.reloads.WithLabelValues("failure")) != 1 ||
		value(t, e.metrics.reloads.WithLabelValues("success")) != successes {
		t.Fatal("reload metrics not counted")
	}
	if !strings.Contains(e.logs.String(), "key file reload failed") {
		t.Fatalf("reload failure not logged: %s", e.logs)
	}
	if err := e.store.Ready(ctx); err != nil {
		t.Fatalf("ready after a failed reload: %v", err)
	}
}

func TestOpenStoreRefusesBadFile(t *testing.T) {
	e := newEnv(t)
	writeFile(t, e.path, `{"keys":[{"id":"x"}]}`)
	if _, err := OpenStore(e.path, testPepper, nil, nil); err == nil || !strings.Contains(err.Error(), `keys[0] (id "x")`) {
		t.Fatalf("OpenStore bad file: %v", err)
	}
	if _, err := OpenStore(e.path+".missing", testPepper, nil, nil); err == nil {
		t.Fatal("OpenStore missing file succeeded")
	}
}

func TestWatchReloadsWithoutRestart(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { e.store.Watch(ctx, 10*time.Millisecond); close(done) }()

	key, _, err := AddKey(e.path, testPepper, NewKey{Tenant: "acme", Project: "web", Scopes: []authclient.Scope{authclient.ScopeIngest}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Wait for the poll to see the new file; the test fails by its own deadline if it never does.
	for {
		if _, err := e.store.Verify(ctx, key, authclient.ScopeIngest); err == nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestNewStoreInMemory(t *testing.T) {
	key, rec, err := NewRecord(testPepper, NewKey{Tenant: "acme", Project: "web", Scopes: []authclient.Scope{authclient.ScopeLLM}}, timeZero(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewStore(testPepper, []Record{rec})
	if err != nil {
		t.Fatal(err)
	}
	var v authclient.Verifier = s
	if p, err := v.Verify(context.Background(), key, authclient.ScopeLLM); err != nil || p.KeyID != rec.ID {
		t.Fatalf("in-memory verify: %+v %v", p, err)
	}
	if _, err := s.Reload(); err == nil {
		t.Fatal("reload of an in-memory store succeeded")
	}
	if _, err := NewStore(testPepper, []Record{rec, rec}); err == nil {
		t.Fatal("duplicate records accepted")
	}
}

// A key file caught half written, or a document that is not a key file at all, is a failed
// reload: it must not replace the loaded keys with none. Only an explicit `keys: []` empties the
// set.
func TestReloadOfDocumentWithoutKeysListKeepsKeys(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key, _ := e.addKey(t, "acme", authclient.ScopeIngest)
	for _, doc := range []string{"keys:\n", "keys: null\n", "{}", "---\n", "null", "# trustplane API keys\n"} {
		writeFile(t, e.path, doc)
		if changed, err := e.store.Reload(); changed || err == nil || !strings.Contains(err.Error(), "keys") {
			t.Errorf("%q: changed=%v err=%v, want a failed reload naming keys", doc, changed, err)
		}
		if _, err := e.store.Verify(ctx, key, authclient.ScopeIngest); err != nil {
			t.Fatalf("%q: previous keys lost: %v", doc, err)
		}
	}
	writeFile(t, e.path, "keys: []\n")
	if changed, err := e.store.Reload(); !changed || err != nil || e.keysLoaded(t) != 0 {
		t.Fatalf("explicit empty list: changed=%v err=%v len=%d", changed, err, e.keysLoaded(t))
	}
}
