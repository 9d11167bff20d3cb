package authclient

import "context"

// CloudEvents types of the verify request/reply exchange.
const (
	VerifyType   = "io.trustplane.auth.verify.v1"
	VerifiedType = "io.trustplane.auth.verified.v1"
	DeniedType   = "io.trustplane.auth.denied.v1"
)

// VerifyRequest is the data of a verify request event.
type VerifyRequest struct {
	Key   string `json:"key"`
	Scope Scope  `json:"scope"`
}

// Verifier checks an API key for a scope. Client (over HTTP, cached) and the auth function's
// key store (in process) implement it. Errors are *DeniedError or wrap ErrUnavailable; see
// HTTPStatus.
type Verifier interface {
	Verify(ctx context.Context, key string, scope Scope) (Principal, error)
}
