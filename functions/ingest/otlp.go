package ingest

import (
	"context"
	"fmt"
	"mime"
	"net/http"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/trustplane/trustplane/functions/auth/authclient"
)

// PathTraces is the OTLP/HTTP path for traces.
const PathTraces = "/v1/traces"

// OTLP/HTTP content types.
const (
	contentTypeProtobuf = "application/x-protobuf"
)

// otlpEncoding is how an OTLP request and its answer are encoded.
type otlpEncoding string

const (
	otlpProtobuf otlpEncoding = contentTypeProtobuf
	otlpJSON     otlpEncoding = contentTypeJSON
)

func otlpEncodingOf(header http.Header) (otlpEncoding, error) {
	ct := header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	switch {
	case err == nil && mt == contentTypeProtobuf:
		return otlpProtobuf, nil
	case err == nil && mt == contentTypeJSON:
		return otlpJSON, nil
	}
	return "", fmt.Errorf("content type %q is not an OTLP encoding: send %s or %s", ct, contentTypeProtobuf, contentTypeJSON)
}

// serveOTLP is OTLP/HTTP's trace export: an ExportTraceServiceRequest in, each span mapped to
// the catalog's events (otlpmap.go), produced to Kafka, then an ExportTraceServiceResponse
// (200, with partial_success when some spans were rejected) or a google.rpc.Status: 400 for
// data that cannot be decoded or of which no span is valid, 503 with Retry-After when Kafka or
// auth cannot answer (the exporter retries; a re-sent span replaces its row).
func (h *Handler) serveOTLP(w http.ResponseWriter, r *http.Request) {
	// Until the request's own encoding is known, refusals are JSON.
	enc := otlpJSON
	fail := func(w http.ResponseWriter, p problem) { writeStatus(w, enc, p.Status, p.Detail) }
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		fail(w, problem{Status: http.StatusMethodNotAllowed, Detail: "post OTLP trace exports to " + PathTraces})
		return
	}
	if e, err := otlpEncodingOf(r.Header); err == nil {
		enc = e
	}
	principal, body, w, release, ok := h.receive(w, r, fail, func() error {
		_, err := otlpEncodingOf(r.Header)
		return err
	})
	if !ok {
		return
	}
	defer release()
	h.exportTraces(w, r.Context(), principal, enc, body)
}

func (h *Handler) exportTraces(w http.ResponseWriter, ctx context.Context, principal authclient.Principal, enc otlpEncoding, body []byte) {
	req := ptraceotlp.NewExportRequest()
	var err error
	if enc == otlpProtobuf {
		err = req.UnmarshalProto(body)
	} else {
		err = req.UnmarshalJSON(body)
	}
	if err != nil {
		// Its spans are not counted: an export that does not decode has no span count.
		writeStatus(w, enc, http.StatusBadRequest, "the body is not a valid OTLP ExportTraceServiceRequest: "+err.Error())
		return
	}
	td := req.Traces()
	if n := td.SpanCount(); n > h.limits.MaxBatchSpans {
		h.spans.WithLabelValues(StatusRejected).Add(float64(n))
		writeStatus(w, enc, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("the request holds %d spans, the limit is %d: export smaller batches", n, h.limits.MaxBatchSpans))
		return
	}
	m := h.mapper.Map(td, principal)
	h.spans.WithLabelValues(StatusRejected).Add(float64(m.Rejected))
	if len(m.Events) == 0 && m.Rejected > 0 {
		writeStatus(w, enc, http.StatusBadRequest, fmt.Sprintf("all %d spans were rejected: %s", m.Rejected, m.Message))
		return
	}
	if len(m.Events) > 0 {
		var firstErr error
		failed := 0
		for _, err := range h.producer.Send(ctx, m.Events) {
			if err != nil {
				failed++
				if firstErr == nil {
					firstErr = err
				}
			}
		}
		if failed > 0 {
			// Some events of the export may be in Kafka: the exporter re-sends the whole export,
			// and those replace the rows they wrote, so nothing counts twice.
			h.spans.WithLabelValues(StatusUnavailable).Add(float64(m.Spans))
			h.kafkaDown.Log("unavailable", failed, "accepted", len(m.Events)-failed, "error", firstErr)
			setRetryAfter(w, h.retryAfter)
			writeStatus(w, enc, http.StatusServiceUnavailable, "the spans could not be stored durably; retry the export")
			return
		}
	}
	h.spans.WithLabelValues(StatusAccepted).Add(float64(m.Spans))
	resp := ptraceotlp.NewExportResponse()
	if m.Rejected > 0 {
		resp.PartialSuccess().SetRejectedSpans(int64(m.Rejected))
		resp.PartialSuccess().SetErrorMessage(m.Message)
	}
	var out []byte
	if enc == otlpProtobuf {
		out, err = resp.MarshalProto()
	} else {
		out, err = resp.MarshalJSON()
	}
	if err != nil {
		writeStatus(w, enc, http.StatusInternalServerError, "the answer could not be encoded")
		return
	}
	w.Header().Set("Content-Type", string(enc))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// writeStatus answers an OTLP request with a google.rpc.Status in the request's encoding, as
// OTLP/HTTP asks of every failure.
func writeStatus(w http.ResponseWriter, enc otlpEncoding, status int, message string) {
	st := &spb.Status{Code: int32(grpcCode(status)), Message: message}
	var out []byte
	var err error
	if enc == otlpProtobuf {
		out, err = proto.Marshal(st)
	} else {
		out, err = protojson.Marshal(st)
	}
	if err != nil {
		out = nil
	}
	w.Header().Set("Content-Type", string(enc))
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

// grpcCode is the gRPC code matching an HTTP status, as OTLP's gRPC transport would answer.
func grpcCode(status int) codes.Code {
	switch status {
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusRequestTimeout:
		return codes.DeadlineExceeded
	case http.StatusRequestEntityTooLarge:
		return codes.ResourceExhausted
	case http.StatusMethodNotAllowed, http.StatusUnsupportedMediaType:
		return codes.Unimplemented
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	}
	return codes.Internal
}
