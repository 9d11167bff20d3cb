package authclient

import (
	"net/http"
	"strings"
)

// Errors of BearerKey. Each is a *DeniedError with reason malformed, so callers answer 401.
var (
	ErrMissingAuthorization  = &DeniedError{Denial{Reason: ReasonMalformed, Message: "missing Authorization header: send Authorization: Bearer <API key>"}}
	ErrNotBearer             = &DeniedError{Denial{Reason: ReasonMalformed, Message: "Authorization header must use the Bearer scheme: Authorization: Bearer <API key>"}}
	ErrMalformedBearerKey    = &DeniedError{Denial{Reason: ReasonMalformed, Message: "the Bearer credential is not a trustplane API key (tp_<key id>_<secret>)"}}
	ErrMultipleAuthorization = &DeniedError{Denial{Reason: ReasonMalformed, Message: "more than one Authorization header"}}
)

// BearerKey extracts the API key from "Authorization: Bearer <key>". The scheme is matched
// case-insensitively (RFC 9110); the key's shape is checked but the error never repeats it.
func BearerKey(r *http.Request) (string, error) {
	vals := r.Header.Values("Authorization")
	switch {
	case len(vals) == 0 || strings.TrimSpace(vals[0]) == "":
		return "", ErrMissingAuthorization
	case len(vals) > 1:
		return "", ErrMultipleAuthorization
	}
	scheme, cred, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", ErrNotBearer
	}
	key := strings.TrimSpace(cred)
	if _, err := ParseKey(key); err != nil {
		return "", ErrMalformedBearerKey
	}
	return key, nil
}
