package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/trustplane/trustplane/functions/router/openai"
)

// UpstreamError is a failed attempt: an HTTP error answer, or no answer (Err).
type UpstreamError struct {
	Provider   string
	Status     int // 0 when the provider did not answer
	Type       string
	Message    string
	RetryAfter time.Duration // from Retry-After / retry-after-ms, 0 when absent
	Err        error         // transport error or timeout
}

func (e *UpstreamError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("%s: %v", e.Provider, e.Err)
	}
	return fmt.Sprintf("%s answered %d: %s", e.Provider, e.Status, e.Message)
}

func (e *UpstreamError) Unwrap() error { return e.Err }

// Retryable reports whether another attempt may succeed: rate limits, server errors,
// timeouts and connection failures, and a target refusing router's own credentials (another
// target has its own). Other client errors would fail the same way anywhere.
func (e *UpstreamError) Retryable() bool {
	return e.Status == 0 || e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout || e.Status >= 500 ||
		e.CredentialsRefused()
}

// CredentialsRefused reports a 401 or 403: the provider refused the credentials router is
// configured with for this target, which asking it again will not change.
func (e *UpstreamError) CredentialsRefused() bool {
	return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
}

// APIError is what the client hears when this was the last attempt.
func (e *UpstreamError) APIError() *openai.APIError {
	switch {
	case e.Status == 0 && errors.Is(e.Err, context.DeadlineExceeded):
		return &openai.APIError{Status: http.StatusGatewayTimeout, Type: openai.TypeServer, Code: "upstream_timeout", Message: "the provider did not answer in time"}
	case e.Status == 0:
		return &openai.APIError{Status: http.StatusBadGateway, Type: openai.TypeServer, Code: "upstream_unreachable", Message: "the provider could not be reached"}
	case e.Status == http.StatusTooManyRequests:
		return &openai.APIError{Status: http.StatusTooManyRequests, Type: openai.TypeRateLimit, Code: "upstream_rate_limited",
			Message: "the provider is rate limiting: " + e.Message, RetryAfter: e.RetryAfter}
	case e.Status == http.StatusUnauthorized:
		// Router's provider key is at fault, not the client's key.
		return &openai.APIError{Status: http.StatusBadGateway, Type: openai.TypeServer, Code: "upstream_auth_failed", Message: e.Message}
	case e.Status == http.StatusForbidden:
		// As for 401: the provider refused router's credentials (a model the provider account
		// may not use, a region it does not serve), which the client cannot change.
		return &openai.APIError{Status: http.StatusBadGateway, Type: openai.TypeServer, Code: "upstream_forbidden", Message: "the provider refused the call: " + e.Message}
	case e.Status >= 500:
		return &openai.APIError{Status: http.StatusBadGateway, Type: openai.TypeServer, Code: "upstream_error", Message: fmt.Sprintf("the provider failed (%d): %s", e.Status, e.Message)}
	}
	typ := e.Type
	if typ == "" {
		typ = openai.TypeInvalidRequest
	}
	return &openai.APIError{Status: e.Status, Type: typ, Message: e.Message}
}

// errorMessageOf extracts type and message from an error body: {"error": {"type", "message"}}
// is both OpenAI's and Anthropic's shape.
func errorMessageOf(body []byte) (typ, msg string) {
	var e struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && len(e.Error) > 0 {
		var d struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		}
		if json.Unmarshal(e.Error, &d) == nil && d.Message != "" {
			return d.Type, d.Message
		}
		var s string
		if json.Unmarshal(e.Error, &s) == nil {
			return "", s
		}
	}
	msg = strings.TrimSpace(string(body))
	if len(msg) > 512 {
		msg = msg[:512]
	}
	return "", msg
}
