package auth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/functions/runtime"
)

// Status is a key's lifecycle state.
type Status string

// Key states. A revoked key stays in the file so that its id is never reused and its denial
// says "revoked" rather than "unknown".
const (
	StatusActive  Status = "active"
	StatusRevoked Status = "revoked"
)

// Record is one key in the key file. It holds the key's hash, never the key.
type Record struct {
	ID          string             `json:"id"`
	Hash        string             `json:"hash"`
	Tenant      string             `json:"tenant"`
	Project     string             `json:"project"`
	Scopes      []authclient.Scope `json:"scopes"`
	Status      Status             `json:"status"`
	CreatedAt   time.Time          `json:"created_at"`
	Description string             `json:"description,omitempty"`
	Limits      *authclient.Limits `json:"limits,omitempty"`
}

// KeyFile is the document mounted from the Secret: {"keys": [Record, ...]}, in JSON or YAML.
type KeyFile struct {
	Keys []Record `json:"keys"`
}

// MaxKeyFileSize bounds what is read from the key file.
const MaxKeyFileSize = 16 << 20

const maxDescriptionLen = 512

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ParseKeyFile decodes and validates a key file. A missing "keys" list, unknown fields, bad values
// and duplicate ids are errors naming the record and field; all problems are reported at once.
func ParseKeyFile(data []byte) (KeyFile, error) {
	var kf KeyFile
	if len(bytes.TrimSpace(data)) == 0 {
		return kf, errors.New("key file is empty")
	}
	if err := yaml.UnmarshalStrict(data, &kf); err != nil {
		return KeyFile{}, fmt.Errorf("decode key file: %w", err)
	}
	// A missing or null list is not "no keys": the first line of a file caught half written
	// ("keys:"), a comment-only or empty document would otherwise drop every key on reload.
	// WriteKeyFile always writes a list, [] when there are no keys.
	if kf.Keys == nil {
		return KeyFile{}, errors.New(`key file has no "keys" list (write "keys: []" for a file without keys)`)
	}
	if err := kf.Validate(); err != nil {
		return KeyFile{}, err
	}
	return kf, nil
}

// Validate checks every record and that ids are unique.
func (kf KeyFile) Validate() error {
	var errs []error
	seen := make(map[string]int, len(kf.Keys))
	for i, r := range kf.Keys {
		label := fmt.Sprintf("keys[%d] (id %s)", i, quoteID(r.ID))
		for _, err := range r.validate() {
			errs = append(errs, fmt.Errorf("%s: %w", label, err))
		}
		if j, dup := seen[r.ID]; dup && r.ID != "" {
			errs = append(errs, fmt.Errorf("%s: id: duplicate of keys[%d]", label, j))
		} else {
			seen[r.ID] = i
		}
	}
	return errors.Join(errs...)
}

// quoteID quotes an id for an error message, unless it is longer than a key id: then it may be
// an API key pasted in its place, and errors end up in logs.
func quoteID(id string) string {
	if len(id) > authclient.KeyIDLen {
		return fmt.Sprintf("of %d characters, not shown", len(id))
	}
	return strconv.Quote(id)
}

func (r Record) validate() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if !authclient.ValidKeyID(r.ID) {
		bad("id", "must be 8 characters of lowercase base32 (a-z, 2-7)")
	}
	if _, err := decodeHash(r.Hash); err != nil {
		bad("hash", "%v", err)
	}
	if !nameRE.MatchString(r.Tenant) {
		bad("tenant", "must match %s", nameRE)
	}
	if !nameRE.MatchString(r.Project) {
		bad("project", "must match %s", nameRE)
	}
	if len(r.Scopes) == 0 {
		bad("scopes", "at least one scope is required")
	}
	seen := map[authclient.Scope]bool{}
	for j, s := range r.Scopes {
		if !s.Valid() {
			bad(fmt.Sprintf("scopes[%d]", j), "unknown scope %q (known: ingest, query, llm)", s)
		} else if seen[s] {
			bad(fmt.Sprintf("scopes[%d]", j), "duplicate scope %q", s)
		}
		seen[s] = true
	}
	if r.Status != StatusActive && r.Status != StatusRevoked {
		bad("status", "must be active or revoked, got %q", r.Status)
	}
	if r.CreatedAt.IsZero() {
		bad("created_at", "is required (RFC 3339 time)")
	}
	if len(r.Description) > maxDescriptionLen {
		bad("description", "longer than %d bytes", maxDescriptionLen)
	}
	if r.Limits != nil && (r.Limits.RequestsPerMinute < 0 || r.Limits.TokensPerMinute < 0 || r.Limits.USDPerDay < 0) {
		bad("limits", "must not be negative")
	}
	return errs
}

func decodeHash(s string) ([sha256.Size]byte, error) {
	var h [sha256.Size]byte
	if len(s) != 2*sha256.Size || strings.ToLower(s) != s {
		return h, fmt.Errorf("must be %d lowercase hex characters (HMAC-SHA-256)", 2*sha256.Size)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("must be %d lowercase hex characters (HMAC-SHA-256)", 2*sha256.Size)
	}
	return h, nil
}

// ReadKeyFile reads and validates the key file at path.
func ReadKeyFile(path string) (KeyFile, error) {
	data, err := runtime.ReadFile(path, MaxKeyFileSize)
	if err != nil {
		return KeyFile{}, err
	}
	kf, err := ParseKeyFile(data)
	if err != nil {
		return KeyFile{}, fmt.Errorf("%s: %w", path, err)
	}
	return kf, nil
}

// WriteKeyFile validates kf and writes it to path atomically (temporary file in the same
// directory, fsync, rename) with mode 0600, so a reader never sees half a file. Paths ending in
// .yaml or .yml get YAML, anything else JSON.
func WriteKeyFile(path string, kf KeyFile) error {
	if err := kf.Validate(); err != nil {
		return err
	}
	if kf.Keys == nil {
		kf.Keys = []Record{}
	}
	var data []byte
	var err error
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		data, err = yaml.Marshal(kf)
	default:
		data, err = json.MarshalIndent(kf, "", "  ")
		data = append(data, '\n')
	}
	if err != nil {
		return fmt.Errorf("encode key file: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".keys-*.tmp")
	if err != nil {
		return fmt.Errorf("create temporary key file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("chmod temporary key file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write temporary key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync temporary key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close temporary key file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace key file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename durable; not all filesystems support it
		d.Close()
	}
	return nil
}
