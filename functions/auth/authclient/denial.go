package authclient

import (
	"errors"
	"fmt"
	"net/http"
)

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
