// Package authtest makes real API keys in a real key file, for the tests of functions that
// verify keys.
package authtest

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/trustplane/trustplane/functions/auth"
)

// Pepper returns the pepper the test keys are hashed with (32 bytes of "p").
func Pepper(t testing.TB) auth.Pepper {
	t.Helper()
	p, err := auth.NewPepper(bytes.Repeat([]byte("p"), 32))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Keys is a key file in the test's temporary directory. Its methods fail the test on error.
type Keys struct {
	t      testing.TB
	path   string
	pepper auth.Pepper
}

// New returns an empty key file for the test, its keys hashed with Pepper.
func New(t testing.TB) *Keys {
	t.Helper()
	return &Keys{t: t, path: filepath.Join(t.TempDir(), "keys.json"), pepper: Pepper(t)}
}

// Add creates a key in the file and returns the secret and its record.
func (k *Keys) Add(nk auth.NewKey) (string, auth.Record) {
	k.t.Helper()
	key, rec, err := auth.AddKey(k.path, k.pepper, nk, time.Now())
	if err != nil {
		k.t.Fatal(err)
	}
	return key, rec
}

// Revoke revokes the key with the given id.
func (k *Keys) Revoke(id string) {
	k.t.Helper()
	if _, err := auth.RevokeKey(k.path, id); err != nil {
		k.t.Fatal(err)
	}
}

// Store opens a store over the file as it is now, logging nowhere.
func (k *Keys) Store() *auth.Store {
	k.t.Helper()
	s, err := auth.OpenStore(k.path, k.pepper, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		k.t.Fatal(err)
	}
	return s
}
