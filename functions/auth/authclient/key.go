package authclient

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
)

// Key format: "tp_" + key id + "_" + secret.
//
// The key id is 5 random bytes in lowercase unpadded base32 (8 characters): a public handle that
// may appear in logs and in the key file. The secret is 32 bytes from crypto/rand in the same
// encoding (52 characters). Base32 lowercase has no characters that need escaping in headers,
// URLs or shells and is easy to read aloud; the whole key is 64 characters.
const (
	keyPrefix   = "tp_"
	keyIDBytes  = 5
	secretBytes = 32
	secretLen   = 52 // base32 length of secretBytes, unpadded
	keyLen      = len(keyPrefix) + KeyIDLen + 1 + secretLen
)

// KeyIDLen is the length of a key id (the base32 length of its 5 bytes).
const KeyIDLen = 8

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
func ValidKeyID(id string) bool { return len(id) == KeyIDLen && isBase32(id) }

// ParseKey checks the shape of an API key and returns its key id. It never echoes the key in its
// error, because a malformed key may still be a secret with a typo.
func ParseKey(key string) (keyID string, err error) {
	if len(key) != keyLen || !strings.HasPrefix(key, keyPrefix) || key[len(keyPrefix)+KeyIDLen] != '_' {
		return "", ErrMalformedKey
	}
	id := key[len(keyPrefix) : len(keyPrefix)+KeyIDLen]
	if !ValidKeyID(id) || !isBase32(key[len(keyPrefix)+KeyIDLen+1:]) {
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
