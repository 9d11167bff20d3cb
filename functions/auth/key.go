// Package auth verifies trustplane API keys. Keys are stored only as HMAC-SHA-256 hashes under a
// server-side pepper, in a key file mounted from a Kubernetes Secret and reloaded when it
// changes. The auth function answers CloudEvents verify requests; other functions call it
// through authclient.Client, which caches answers, and import only authclient.
package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

const minPepperLen = 32

// Pepper is the server-side secret keyed into every stored hash, so that a leaked key file alone
// does not allow offline guessing. Its String method hides it from logs and %v.
type Pepper struct{ b []byte }

// NewPepper checks that p is long enough to be a secret.
func NewPepper(p []byte) (Pepper, error) {
	if len(p) < minPepperLen {
		return Pepper{}, fmt.Errorf("pepper must be at least %d bytes, got %d", minPepperLen, len(p))
	}
	return Pepper{b: append([]byte(nil), p...)}, nil
}

// LoadPepper reads the pepper from a value (AUTH_PEPPER) or a file (AUTH_PEPPER_FILE); exactly one
// must be set. One trailing newline in the file is ignored, as editors and `echo` add it.
func LoadPepper(value, file string) (Pepper, error) {
	switch {
	case value != "" && file != "":
		return Pepper{}, errors.New("set only one of AUTH_PEPPER and AUTH_PEPPER_FILE")
	case value != "":
		p, err := NewPepper([]byte(value))
		if err != nil {
			return Pepper{}, fmt.Errorf("AUTH_PEPPER: %w", err)
		}
		return p, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			// Without the path: a pepper pasted where its path belongs would be in the log.
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return Pepper{}, fmt.Errorf("AUTH_PEPPER_FILE: cannot read the file it names: %w", err)
		}
		b = []byte(strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"))
		p, err := NewPepper(b)
		if err != nil {
			return Pepper{}, fmt.Errorf("AUTH_PEPPER_FILE %s: %w", file, err)
		}
		return p, nil
	default:
		return Pepper{}, errors.New("one of AUTH_PEPPER and AUTH_PEPPER_FILE is required")
	}
}

// String hides the pepper.
func (Pepper) String() string { return "[pepper]" }

// GoString hides the pepper from %#v.
func (Pepper) GoString() string { return "auth.Pepper{[hidden]}" }

// Hash returns HMAC-SHA-256(pepper, key), the form in which keys are stored.
func (p Pepper) Hash(key string) [sha256.Size]byte {
	m := hmac.New(sha256.New, p.b)
	m.Write([]byte(key))
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}

// HashHex is Hash in the lowercase hex form of the key file.
func (p Pepper) HashHex(key string) string {
	h := p.Hash(key)
	return hex.EncodeToString(h[:])
}

// Matches reports, in constant time, whether key hashes to stored.
func (p Pepper) Matches(key string, stored [sha256.Size]byte) bool {
	h := p.Hash(key)
	return hmac.Equal(h[:], stored[:])
}
