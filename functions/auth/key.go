// Package auth verifies trustplane API keys. Keys are stored only as HMAC-SHA-256 hashes under a
// server-side pepper, in a key file mounted from a Kubernetes Secret and reloaded when it
// changes. The auth function answers CloudEvents verify requests; other functions call it
// through Client, which caches answers, or verify in process through Store.
package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// Key format: "tp_" + key id + "_" + secret.
//
// The key id is 5 random bytes in lowercase unpadded base32 (8 characters): a public handle that
// may appear in logs and in the key file. The secret is 32 bytes from crypto/rand in the same
// encoding (52 characters). Base32 lowercase has no characters that need escaping in headers,
// URLs or shells and is easy to read aloud; the whole key is 64 characters.
const (
	keyPrefix    = "tp_"
	keyIDBytes   = 5
	secretBytes  = 32
	keyIDLen     = 8  // base32 length of keyIDBytes
	secretLen    = 52 // base32 length of secretBytes, unpadded
	keyLen       = len(keyPrefix) + keyIDLen + 1 + secretLen
	minPepperLen = 32
)

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ErrMalformedKey is returned for a string that is not shaped like an API key.
var ErrMalformedKey = errors.New("malformed API key: want tp_<8 base32 chars>_<52 base32 chars>")

func isBase32(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// ValidKeyID reports whether id is shaped like a key id.
func ValidKeyID(id string) bool { return len(id) == keyIDLen && isBase32(id) }

// ParseKey checks the shape of an API key and returns its key id. It never echoes the key in its
// error, because a malformed key may still be a secret with a typo.
func ParseKey(key string) (keyID string, err error) {
	if len(key) != keyLen || !strings.HasPrefix(key, keyPrefix) || key[len(keyPrefix)+keyIDLen] != '_' {
		return "", ErrMalformedKey
	}
	id := key[len(keyPrefix) : len(keyPrefix)+keyIDLen]
	if !ValidKeyID(id) || !isBase32(key[len(keyPrefix)+keyIDLen+1:]) {
		return "", ErrMalformedKey
	}
	return id, nil
}

// GenerateKey returns a new random API key and its key id.
func GenerateKey() (key, keyID string, err error) {
	buf := make([]byte, keyIDBytes+secretBytes)
	if _, err := rand.Read(buf); err != nil {
		return "", "", fmt.Errorf("read random bytes: %w", err)
	}
	keyID = b32.EncodeToString(buf[:keyIDBytes])
	return keyPrefix + keyID + "_" + b32.EncodeToString(buf[keyIDBytes:]), keyID, nil
}

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
