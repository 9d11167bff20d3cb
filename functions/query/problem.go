package query

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// problem is an RFC 9457 problem details document. Errors names each bad part of a request.
type problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Errors []fieldError `json:"errors,omitempty"`
}

// fieldError is one bad part of a request: the parameter or JSON field, and why.
type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// badRequest collects a request's problems so that one answer names all of them.
type badRequest struct{ errs []fieldError }

func (b *badRequest) add(field, format string, args ...any) {
	b.errs = append(b.errs, fieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (b *badRequest) ok() bool { return len(b.errs) == 0 }

func (b *badRequest) Error() string {
	if len(b.errs) == 1 {
		return b.errs[0].Field + ": " + b.errs[0].Message
	}
	return fmt.Sprintf("%d problems, the first: %s: %s", len(b.errs), b.errs[0].Field, b.errs[0].Message)
}

// Problem type URIs; they name the class of error so clients can branch on it.
const (
	problemInvalid      = "https://trustplane.io/problems/invalid-query"
	problemAuth         = "https://trustplane.io/problems/unauthorized"
	problemForbidden    = "https://trustplane.io/problems/forbidden"
	problemNotFound     = "https://trustplane.io/problems/not-found"
	problemMethod       = "https://trustplane.io/problems/method-not-allowed"
	problemRateLimited  = "https://trustplane.io/problems/rate-limited"
	problemTooExpensive = "https://trustplane.io/problems/query-too-expensive"
	problemUnavailable  = "https://trustplane.io/problems/unavailable"
	problemInternal     = "https://trustplane.io/problems/internal"

	contentTypeProblem = "application/problem+json"
	contentTypeJSON    = "application/json"
)

func writeProblem(w http.ResponseWriter, p problem) {
	writeJSON(w, p.Status, contentTypeProblem, p)
}

func writeInvalid(w http.ResponseWriter, b *badRequest) {
	writeProblem(w, problem{Type: problemInvalid, Title: "Invalid query", Status: http.StatusBadRequest,
		Detail: b.Error(), Errors: b.errs})
}

func writeJSON(w http.ResponseWriter, status int, contentType string, body any) {
	buf, err := json.Marshal(body)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(buf)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(buf, '\n'))
}

func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(s))
}
