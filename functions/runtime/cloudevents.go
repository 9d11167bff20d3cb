package runtime

import (
	"context"
	"errors"
	"net/http"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// MaxCloudEventBytes bounds the body of one delivered CloudEvent.
const MaxCloudEventBytes = 10 << 20

// ReceiveFunc handles one CloudEvent. The returned event, if any, is the reply; the result
// decides the status code (use Status; nil means 200).
type ReceiveFunc func(context.Context, cloudevents.Event) (*cloudevents.Event, cloudevents.Result)

// CloudEventsHandler adapts a receive function to an http.Handler, for functions that receive
// Trigger deliveries or request/reply events, in binary or structured mode. It decodes the
// event in the request's own goroutine: the SDK's receive handler hands each request through a
// channel to a second goroutine, which costs more than the work of a small function.
func CloudEventsHandler(fn ReceiveFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "post a CloudEvent", http.StatusMethodNotAllowed)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxCloudEventBytes)
		e, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
		if err != nil {
			http.Error(w, "not a CloudEvent: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := e.Validate(); err != nil {
			http.Error(w, "not a valid CloudEvent: "+err.Error(), http.StatusBadRequest)
			return
		}
		reply, result := fn(r.Context(), *e)
		status, msg := statusOf(result)
		if reply == nil {
			if status >= 400 && msg != "" {
				http.Error(w, msg, status)
				return
			}
			w.WriteHeader(status)
			return
		}
		_ = cehttp.WriteResponseWriter(r.Context(), binding.ToMessage(reply), status, w)
	})
}

func statusOf(result cloudevents.Result) (int, string) {
	if result == nil {
		return http.StatusOK, ""
	}
	var hr *cehttp.Result
	if errors.As(result, &hr) {
		return hr.StatusCode, hr.Error()
	}
	if protocol.IsACK(result) {
		return http.StatusOK, ""
	}
	return http.StatusInternalServerError, result.Error()
}

// Status returns a CloudEvents result carrying an HTTP status code and message.
func Status(code int, format string, args ...any) cloudevents.Result {
	return cehttp.NewResult(code, format, args...)
}
