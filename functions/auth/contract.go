package auth

import "github.com/trustplane/trustplane/functions/auth/authclient"

// These names forward to authclient for the callers not yet switched to it; the file goes
// once none uses them. Nothing in this package uses them.
type (
	Scope         = authclient.Scope
	Limits        = authclient.Limits
	Principal     = authclient.Principal
	Reason        = authclient.Reason
	Denial        = authclient.Denial
	DeniedError   = authclient.DeniedError
	VerifyRequest = authclient.VerifyRequest
	Verifier      = authclient.Verifier
	Client        = authclient.Client
	ClientConfig  = authclient.ClientConfig
	ClientOptions = authclient.Options
)

const (
	ScopeIngest        = authclient.ScopeIngest
	ScopeQuery         = authclient.ScopeQuery
	ScopeLLM           = authclient.ScopeLLM
	ReasonUnknownKey   = authclient.ReasonUnknownKey
	ReasonRevoked      = authclient.ReasonRevoked
	ReasonMalformed    = authclient.ReasonMalformed
	ReasonMissingScope = authclient.ReasonMissingScope
	VerifyType         = authclient.VerifyType
	VerifiedType       = authclient.VerifiedType
	DeniedType         = authclient.DeniedType
)

var (
	ErrUnavailable           = authclient.ErrUnavailable
	ErrMalformedKey          = authclient.ErrMalformedKey
	ErrMissingAuthorization  = authclient.ErrMissingAuthorization
	ErrNotBearer             = authclient.ErrNotBearer
	ErrMalformedBearerKey    = authclient.ErrMalformedBearerKey
	ErrMultipleAuthorization = authclient.ErrMultipleAuthorization

	NewClient   = authclient.New
	HTTPStatus  = authclient.HTTPStatus
	BearerKey   = authclient.BearerKey
	ParseKey    = authclient.ParseKey
	ValidKeyID  = authclient.ValidKeyID
	GenerateKey = authclient.GenerateKey
	ParseScopes = authclient.ParseScopes
)
