package runtime

import (
	"context"
	"fmt"
	"net/http"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// CloudEventsHandler adapts a CloudEvents receive function to an http.Handler, for functions
// that receive Trigger deliveries or request/reply events. The function's returned event, if
// any, is the reply; its protocol.Result decides the status code (use cehttp.NewResult).
func CloudEventsHandler(ctx context.Context, fn func(context.Context, cloudevents.Event) (*cloudevents.Event, cloudevents.Result)) (http.Handler, error) {
	p, err := cloudevents.NewHTTP()
	if err != nil {
		return nil, fmt.Errorf("cloudevents protocol: %w", err)
	}
	h, err := cloudevents.NewHTTPReceiveHandler(ctx, p, fn)
	if err != nil {
		return nil, fmt.Errorf("cloudevents receiver: %w", err)
	}
	return h, nil
}

// Status returns a CloudEvents result carrying an HTTP status code and message.
func Status(code int, format string, args ...any) cloudevents.Result {
	return cehttp.NewResult(code, format, args...)
}
