package ingest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/trustplane/trustplane/eventing/catalog"
)

// problem is an RFC 9457 problem details document. Errors and Results are extension members:
// the problems of a single event, or the per-event results of a batch.
type problem struct {
	Type    string            `json:"type"`
	Title   string            `json:"title"`
	Status  int               `json:"status"`
	Detail  string            `json:"detail,omitempty"`
	Errors  []catalog.Problem `json:"errors,omitempty"`
	Results []Result          `json:"results,omitempty"`
}

// Problem type URIs; they name the class of error so clients can branch on it.
const (
	problemInvalid      = "https://trustplane.io/problems/invalid-event"
	problemAuth         = "https://trustplane.io/problems/unauthorized"
	problemForbidden    = "https://trustplane.io/problems/forbidden"
	problemTooLarge     = "https://trustplane.io/problems/too-large"
	problemMediaType    = "https://trustplane.io/problems/unsupported-media-type"
	problemMethod       = "https://trustplane.io/problems/method-not-allowed"
	problemNotFound     = "https://trustplane.io/problems/not-found"
	problemTimeout      = "https://trustplane.io/problems/timeout"
	problemUnavailable  = "https://trustplane.io/problems/unavailable"
	problemInternal     = "https://trustplane.io/problems/internal"
	contentTypeProblem  = "application/problem+json"
	contentTypeJSON     = "application/json"
	contentTypeBatch    = "application/cloudevents-batch+json"
	contentTypeCEStruct = "application/cloudevents+json"
)

func writeProblem(w http.ResponseWriter, p problem) {
	writeJSON(w, p.Status, contentTypeProblem, p)
}

func writeJSON(w http.ResponseWriter, status int, contentType string, body any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
}
