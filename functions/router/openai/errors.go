package openai

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// OpenAI's error types.
const (
	TypeInvalidRequest = "invalid_request_error"
	TypePermission     = "permission_error"
	TypeRateLimit      = "rate_limit_error"
	TypeServer         = "server_error"
	TypeUnavailable    = "service_unavailable"
)

// APIError is an error answered to the client in OpenAI's format:
// {"error": {"message", "type", "param", "code"}}.
type APIError struct {
	Status  int
	Type    string
	Code    string
	Param   string
	Message string
	// RetryAfter is sent as Retry-After, rounded up to whole seconds; 0: no Retry-After header.
	RetryAfter time.Duration
}

func (e *APIError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Type, e.Message) }

// BadRequest is a 400 invalid_request_error.
func BadRequest(format string, args ...any) *APIError {
	return &APIError{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Message: fmt.Sprintf(format, args...)}
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// Body is the error's JSON object, as an answer's body or a stream's last event.
func (e *APIError) Body() []byte {
	d := errorDetail{Message: e.Message, Type: e.Type}
	if e.Param != "" {
		d.Param = &e.Param
	}
	if e.Code != "" {
		d.Code = &e.Code
	}
	b, _ := json.Marshal(errorBody{Error: d})
	return b
}

// WriteError answers e.
func WriteError(w http.ResponseWriter, e *APIError) {
	if s := ceilSeconds(e.RetryAfter); s > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(s))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	_, _ = w.Write(e.Body())
}

func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}
