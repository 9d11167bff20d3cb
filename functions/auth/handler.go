package auth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/uuid"

	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/functions/runtime"
)

// EventSource is the source of the auth function's reply events.
const EventSource = "/trustplane/auth"

// NewHandler answers verify request events from v (normally the Store) with a verified or
// denied reply. A request that is not a well-formed verify request gets a 400 result.
// Serve it with runtime.CloudEventsHandler.
func NewHandler(v authclient.Verifier, logger *slog.Logger) func(context.Context, cloudevents.Event) (*cloudevents.Event, cloudevents.Result) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, in cloudevents.Event) (*cloudevents.Event, cloudevents.Result) {
		if in.Type() != authclient.VerifyType {
			return nil, runtime.Status(http.StatusBadRequest, "event type must be %s, got %q", authclient.VerifyType, in.Type())
		}
		if ct := in.DataContentType(); ct != "" && ct != cloudevents.ApplicationJSON && ct != "text/json" {
			return nil, runtime.Status(http.StatusBadRequest, "datacontenttype must be application/json, got %q", ct)
		}
		req, err := ParseVerifyRequest(in.Data())
		if err != nil {
			return nil, runtime.Status(http.StatusBadRequest, "%v", err)
		}
		p, err := v.Verify(ctx, req.Key, req.Scope)
		var d *authclient.DeniedError
		switch {
		case err == nil:
			logger.Debug("key verified", "key_id", p.KeyID, "scope", string(req.Scope))
			return reply(in, authclient.VerifiedType, p)
		case errors.As(err, &d):
			logger.Info("key denied", "key_id", d.KeyID, "reason", string(d.Reason), "scope", string(req.Scope))
			return reply(in, authclient.DeniedType, d.Denial)
		default:
			logger.Error("verify failed", "error", err.Error())
			return nil, runtime.Status(http.StatusInternalServerError, "verify failed")
		}
	}
}

func reply(in cloudevents.Event, typ string, data any) (*cloudevents.Event, cloudevents.Result) {
	out := cloudevents.NewEvent()
	out.SetID(uuid.NewString())
	out.SetSource(EventSource)
	out.SetType(typ)
	out.SetTime(time.Now())
	out.SetExtension("requestid", in.ID()) // lets a caller match a reply to its request
	if err := out.SetData(cloudevents.ApplicationJSON, data); err != nil {
		return nil, runtime.Status(http.StatusInternalServerError, "encode reply: %v", err)
	}
	return &out, runtime.Status(http.StatusOK, "")
}
