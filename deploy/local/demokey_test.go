package main

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/functions/auth"
	"github.com/trustplane/trustplane/functions/auth/authclient"
)

func activeDemoKeys(t *testing.T, keysFile string) []string {
	t.Helper()
	kf, err := auth.ReadKeyFile(keysFile)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range kf.Keys {
		if r.Status == auth.StatusActive && r.Tenant == demoTenant {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

// Two runs on one directory print the same demo key, and the key file holds one active demo key.
func TestDemoKeyIsReusedAcrossRuns(t *testing.T) {
	dir := t.TempDir()
	first := startLocalRun(t, nil, "-dir", dir)
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(first.stdout.String(), "created now, kept in "+filepath.Join(dir, "auth", "demo-key")) {
		t.Errorf("the first run's banner does not say the key is new and where it is kept:\n%s", first.stdout.String())
	}
	second := startLocalRun(t, nil, "-dir", dir)
	if second.key != first.key {
		t.Fatalf("second run's demo key differs from the first's")
	}
	if !strings.Contains(second.stdout.String(), "the same as before") {
		t.Errorf("the second run's banner does not say the key is reused:\n%s", second.stdout.String())
	}
	if ids := activeDemoKeys(t, filepath.Join(dir, "auth", "keys.json")); len(ids) != 1 {
		t.Fatalf("active demo keys after two runs: %v, want one", ids)
	}
	// The reused key works.
	p := plane{ingest: "http://127.0.0.1:" + strconv.Itoa(second.o.ingestPort), client: http.DefaultClient}
	now := time.Now().UTC().Format(time.RFC3339)
	if code := p.post(t, second.key, map[string]string{"Content-Type": "application/cloudevents+json"},
		ce("reuse-1", catalog.TypeTrace, `{"id":"trace-reuse","timestamp":"`+now+`"}`)); code != 202 {
		t.Fatalf("post with the reused key: %d", code)
	}
}

// Active demo keys of earlier runs are revoked when the stored key is missing or no longer
// active; keys of other tenants are left alone.
func TestDemoKeyRevokesTheOthers(t *testing.T) {
	dir := t.TempDir()
	keysFile, keyPath := filepath.Join(dir, "keys.json"), filepath.Join(dir, "demo-key")
	pepper, err := auth.NewPepper([]byte("a-pepper-of-at-least-thirty-two-bytes!!"))
	if err != nil {
		t.Fatal(err)
	}
	var earlier []string
	for range 3 {
		_, rec, err := auth.AddKey(keysFile, pepper, auth.NewKey{Tenant: demoTenant, Project: demoProject,
			Scopes: []authclient.Scope{authclient.ScopeIngest}, Description: demoDescription}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		earlier = append(earlier, rec.ID)
	}
	_, other, err := auth.AddKey(keysFile, pepper, auth.NewKey{Tenant: "acme", Project: "web", Scopes: []authclient.Scope{authclient.ScopeIngest}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}

	d, err := ensureDemoKey(keysFile, keyPath, pepper, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(earlier)
	slices.Sort(d.revoked)
	if d.reused || !slices.Equal(d.revoked, earlier) {
		t.Fatalf("no stored key: reused %v, revoked %v, want a new key and %v revoked", d.reused, d.revoked, earlier)
	}
	if ids := activeDemoKeys(t, keysFile); !slices.Equal(ids, []string{d.id}) {
		t.Fatalf("active demo keys %v, want only %s", ids, d.id)
	}
	if st, err := os.Stat(keyPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("stored demo key: %v %v, want mode 0600", st, err)
	}

	again, err := ensureDemoKey(keysFile, keyPath, pepper, time.Now())
	if err != nil || !again.reused || again.key != d.key || len(again.revoked) != 0 {
		t.Fatalf("second call: %+v %v, want the same key reused", again.id, err)
	}

	// Revoked by hand (bin/keys revoke): the next run makes a new one.
	if _, err := auth.RevokeKey(keysFile, d.id); err != nil {
		t.Fatal(err)
	}
	fresh, err := ensureDemoKey(keysFile, keyPath, pepper, time.Now())
	if err != nil || fresh.reused || fresh.key == d.key {
		t.Fatalf("after revoking the stored key: reused %v, same key %v (%v)", fresh.reused, fresh.key == d.key, err)
	}
	kf, _ := auth.ReadKeyFile(keysFile)
	for _, r := range kf.Keys {
		if r.ID == other.ID && r.Status != auth.StatusActive {
			t.Fatalf("acme's key was revoked")
		}
	}
}
