package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// CloudEvents types of the verify request/reply exchange.
const (
	VerifyType   = "io.trustplane.auth.verify.v1"
	VerifiedType = "io.trustplane.auth.verified.v1"
	DeniedType   = "io.trustplane.auth.denied.v1"
)

// EventSource is the source of the auth function's reply events.
const EventSource = "/trustplane/auth"

// VerifyRequest is the data of a verify request event.
type VerifyRequest struct {
	Key   string `json:"key"`
	Scope Scope  `json:"scope"`
}

// Principal is who a verified key speaks for; it is also the data of a verified reply.
type Principal struct {
	KeyID   string  `json:"key_id"`
	Tenant  string  `json:"tenant"`
	Project string  `json:"project"`
	Scopes  []Scope `json:"scopes"`
	Limits  *Limits `json:"limits,omitempty"`
}

// HasScope reports whether the principal carries s.
func (p Principal) HasScope(s Scope) bool {
	for _, have := range p.Scopes {
		if have == s {
			return true
		}
	}
	return false
}

// Reason says why a key was denied.
type Reason string

// Denial reasons.
const (
	ReasonUnknownKey   Reason = "unknown_key"
	ReasonRevoked      Reason = "revoked"
	ReasonMalformed    Reason = "malformed"
	ReasonMissingScope Reason = "missing_scope"
)

// Denial is the data of a denied reply.
type Denial struct {
	KeyID   string `json:"key_id,omitempty"`
	Reason  Reason `json:"reason"`
	Message string `json:"message"`
}

// DeniedError is returned by a Verifier when the key is not accepted. Callers answer with
// HTTPStatus: 401 when the key is not valid, 403 when it lacks the scope.
type DeniedError struct{ Denial }

func (e *DeniedError) Error() string {
	if e.KeyID != "" {
		return fmt.Sprintf("API key %s denied (%s): %s", e.KeyID, e.Reason, e.Message)
	}
	return fmt.Sprintf("API key denied (%s): %s", e.Reason, e.Message)
}

// HTTPStatus is the status a caller answers with.
func (e *DeniedError) HTTPStatus() int {
	if e.Reason == ReasonMissingScope {
		return http.StatusForbidden
	}
	return http.StatusUnauthorized
}

// ErrUnavailable is wrapped by errors meaning the auth function could not give an answer;
// callers answer 503 and the client retries later.
var ErrUnavailable = errors.New("auth unavailable")

// HTTPStatus maps a Verify error to the status a caller answers with: 200 for nil, 401/403 for
// a denial, 503 when auth is unavailable, 500 otherwise.
func HTTPStatus(err error) int {
	var d *DeniedError
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &d):
		return d.HTTPStatus()
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// ParseVerifyRequest decodes verify request data strictly: JSON object, no unknown, duplicate or
// differently cased fields, no trailing data, a known scope. The key is only checked for presence here; its shape decides a
// "malformed" denial, not a bad request.
func ParseVerifyRequest(data []byte) (VerifyRequest, error) {
	var req VerifyRequest
	if len(bytes.TrimSpace(data)) == 0 {
		return VerifyRequest{}, errors.New(`verify request data is missing: want {"key": "...", "scope": "..."}`)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return VerifyRequest{}, fmt.Errorf("verify request data: %w", err)
	}
	// Token, not More: More reports no more data before a stray '}' or ']'.
	if _, err := dec.Token(); err != io.EOF {
		return VerifyRequest{}, errors.New("verify request data: trailing data after the JSON object")
	}
	if err := exactFieldNames(data); err != nil {
		return VerifyRequest{}, fmt.Errorf("verify request data: %w", err)
	}
	if req.Key == "" {
		return VerifyRequest{}, errors.New("verify request data: key is required")
	}
	if !req.Scope.Valid() {
		return VerifyRequest{}, fmt.Errorf("verify request data: scope must be one of ingest, query, llm, got %q", req.Scope)
	}
	return req, nil
}

// exactFieldNames checks that data, a JSON object that already decoded into VerifyRequest, names
// each field once and in its exact case. encoding/json matches names case-insensitively and lets
// the last of two equal names win; another reader of the same request could take the other one.
func exactFieldNames(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // the opening brace
		return err
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		if name != "key" && name != "scope" {
			return fmt.Errorf("unknown field %q (fields are key and scope, in lowercase)", name)
		}
		if seen[name] {
			return fmt.Errorf("duplicate field %q", name)
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}
