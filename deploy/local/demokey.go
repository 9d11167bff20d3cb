package main

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trustplane/trustplane/functions/auth"
	"github.com/trustplane/trustplane/functions/auth/authclient"
)

// The local run has one active demo key. It keeps the key itself (not only its hash, as the
// key file does) in a file of its own, so that every run prints the same key, and revokes any
// other active demo key it finds.
const (
	demoTenant      = "demo"
	demoProject     = "demo"
	demoDescription = "demo key created by the local run"
)

type demoKey struct {
	key, id string
	reused  bool     // the stored key, still active
	revoked []string // ids of other active demo keys this run revoked
}

// ensureDemoKey returns the stored demo key when the key file still holds it active, and
// otherwise creates one and stores it in keyPath (mode 0600). Either way every other active
// demo key in the key file is revoked.
func ensureDemoKey(keysFile, keyPath string, pepper auth.Pepper, now time.Time) (demoKey, error) {
	kf, err := auth.ReadKeyFile(keysFile)
	if errors.Is(err, fs.ErrNotExist) {
		kf, err = auth.KeyFile{Keys: []auth.Record{}}, nil
	}
	if err != nil {
		return demoKey{}, err
	}
	var d demoKey
	if stored, err := os.ReadFile(keyPath); err == nil {
		key := strings.TrimSpace(string(stored))
		if id, err := authclient.ParseKey(key); err == nil {
			for _, r := range kf.Keys {
				if r.ID == id && r.Status == auth.StatusActive && r.Tenant == demoTenant &&
					subtle.ConstantTimeCompare([]byte(r.Hash), []byte(pepper.HashHex(key))) == 1 {
					d = demoKey{key: key, id: id, reused: true}
				}
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return demoKey{}, err
	}
	if !d.reused {
		key, rec, err := auth.AddKey(keysFile, pepper, auth.NewKey{
			Tenant: demoTenant, Project: demoProject, Scopes: []authclient.Scope{authclient.ScopeIngest, authclient.ScopeQuery, authclient.ScopeLLM},
			Description: demoDescription,
		}, now)
		if err != nil {
			return demoKey{}, err
		}
		if err := writeSecret(keyPath, key+"\n"); err != nil {
			return demoKey{}, err
		}
		d = demoKey{key: key, id: rec.ID}
	}
	for _, r := range kf.Keys {
		if r.ID != d.id && r.Status == auth.StatusActive && r.Tenant == demoTenant && r.Description == demoDescription {
			if _, err := auth.RevokeKey(keysFile, r.ID); err != nil {
				return demoKey{}, err
			}
			d.revoked = append(d.revoked, r.ID)
		}
	}
	return d, nil
}

// writeSecret replaces path with data, mode 0600, through a temporary file and a rename, so
// that a run stopped halfway leaves the old file or the new one, never half of one.
func writeSecret(path, data string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("store the demo key: %w", err)
	}
	return nil
}
