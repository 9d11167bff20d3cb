package auth

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/trustplane/trustplane/functions/auth/authclient"
)

// NewKey describes a key to create.
type NewKey struct {
	Tenant      string
	Project     string
	Scopes      []authclient.Scope
	Description string
	Limits      *authclient.Limits
}

// NewRecord generates a key and its record. The key is returned once and stored nowhere; the
// record holds only its hash. taken reports ids already in use, so a new id never collides.
func NewRecord(p Pepper, nk NewKey, now time.Time, taken func(id string) bool) (key string, rec Record, err error) {
	for range 16 {
		var id string
		key, id, err = authclient.GenerateKey()
		if err != nil {
			return "", Record{}, err
		}
		if taken != nil && taken(id) {
			continue
		}
		rec = Record{
			ID: id, Hash: p.HashHex(key), Tenant: nk.Tenant, Project: nk.Project,
			Scopes: nk.Scopes, Status: StatusActive, CreatedAt: now.UTC().Truncate(time.Second),
			Description: nk.Description, Limits: nk.Limits,
		}
		if errs := rec.validate(); len(errs) > 0 {
			return "", Record{}, fmt.Errorf("new key: %w", errors.Join(errs...))
		}
		return key, rec, nil
	}
	return "", Record{}, errors.New("new key: could not find an unused key id")
}

// AddKey creates a key, appends its record to the key file at path (creating the file if it
// does not exist) and returns the key. The caller shows the key once; it cannot be recovered.
func AddKey(path string, p Pepper, nk NewKey, now time.Time) (key string, rec Record, err error) {
	kf, err := ReadKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		kf, err = KeyFile{}, nil
	}
	if err != nil {
		return "", Record{}, err
	}
	key, rec, err = NewRecord(p, nk, now, func(id string) bool {
		for _, r := range kf.Keys {
			if r.ID == id {
				return true
			}
		}
		return false
	})
	if err != nil {
		return "", Record{}, err
	}
	kf.Keys = append(kf.Keys, rec)
	if err := WriteKeyFile(path, kf); err != nil {
		return "", Record{}, err
	}
	return key, rec, nil
}

// RevokeKey marks the key with the given id revoked in the key file at path.
func RevokeKey(path, id string) (Record, error) {
	kf, err := ReadKeyFile(path)
	if err != nil {
		return Record{}, err
	}
	for i := range kf.Keys {
		if kf.Keys[i].ID == id {
			kf.Keys[i].Status = StatusRevoked
			if err := WriteKeyFile(path, kf); err != nil {
				return Record{}, err
			}
			return kf.Keys[i], nil
		}
	}
	return Record{}, fmt.Errorf("%s: no key with id %s", path, quoteID(id))
}
