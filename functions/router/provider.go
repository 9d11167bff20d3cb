package router

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Provider sends requests to one LLM provider account. model is the provider's own model (or,
// for Azure, deployment) name.
type Provider interface {
	Chat(ctx context.Context, model string, req *ChatRequest) (*ChatResult, error)
	// ChatStream returns once the provider has accepted the request (answered 200), so a
	// failure before any chunk can still fall back to another target.
	ChatStream(ctx context.Context, model string, req *ChatRequest) (ChunkStream, error)
	Embed(ctx context.Context, model string, req *EmbeddingRequest) (*EmbedResult, error)
}

// ChatResult is a non-streaming completion, already in OpenAI's format.
type ChatResult struct {
	Body   []byte // the chat.completion JSON the client receives
	Model  string // the model the provider says served it
	Usage  Usage
	Output json.RawMessage // the assistant message, for capture
}

// EmbedResult is an embeddings response in OpenAI's format.
type EmbedResult struct {
	Body  []byte
	Model string
	Usage Usage
}

// Chunk is one streamed chat.completion.chunk.
type Chunk struct {
	Data  []byte // the chunk's JSON, as the client receives it
	Model string
	Usage *Usage // set on the final usage chunk
	Text  string // the content delta, for capture
	// ToolCalls are the tool call deltas, for capture.
	ToolCalls []ToolCall
	// UsageOnly marks a chunk of usage without choices, which router always asks for to
	// count tokens: it reaches only clients that asked for it (stream_options.include_usage).
	UsageOnly bool
}

// ChunkStream yields chunks until io.EOF. Close releases the upstream connection; closing
// early cancels the upstream request.
type ChunkStream interface {
	Next() (Chunk, error)
	// Close releases the stream. After a stream's last event it first reads the rest of the
	// provider's answer to keep the connection, so it can wait on the provider: the gateway
	// calls it once the client's answer has ended.
	Close() error
}

// bufferedStream is a ChunkStream that can tell whether more of the stream has already
// arrived: the gateway then writes the next chunk before flushing, saving a write per chunk
// without ever holding back a chunk that is waiting on the provider.
type bufferedStream interface {
	Buffered() bool
}

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
		e.credentialsRefused()
}

// credentialsRefused reports a 401 or 403: the provider refused the credentials router is
// configured with for this target, which asking it again will not change.
func (e *UpstreamError) credentialsRefused() bool {
	return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
}

// apiError is what the client hears when this was the last attempt.
func (e *UpstreamError) apiError() *APIError {
	switch {
	case e.Status == 0 && errors.Is(e.Err, context.DeadlineExceeded):
		return &APIError{Status: http.StatusGatewayTimeout, Type: errServer, Code: "upstream_timeout", Message: "the provider did not answer in time"}
	case e.Status == 0:
		return &APIError{Status: http.StatusBadGateway, Type: errServer, Code: "upstream_unreachable", Message: "the provider could not be reached"}
	case e.Status == http.StatusTooManyRequests:
		return &APIError{Status: http.StatusTooManyRequests, Type: errRateLimit, Code: "upstream_rate_limited",
			Message: "the provider is rate limiting: " + e.Message, RetryAfter: ceilSeconds(e.RetryAfter)}
	case e.Status == http.StatusUnauthorized:
		// Router's provider key is at fault, not the client's key.
		return &APIError{Status: http.StatusBadGateway, Type: errServer, Code: "upstream_auth_failed", Message: e.Message}
	case e.Status == http.StatusForbidden:
		// As for 401: the provider refused router's credentials (a model the provider account
		// may not use, a region it does not serve), which the client cannot change.
		return &APIError{Status: http.StatusBadGateway, Type: errServer, Code: "upstream_forbidden", Message: "the provider refused the call: " + e.Message}
	case e.Status >= 500:
		return &APIError{Status: http.StatusBadGateway, Type: errServer, Code: "upstream_error", Message: fmt.Sprintf("the provider failed (%d): %s", e.Status, e.Message)}
	}
	typ := e.Type
	if typ == "" {
		typ = errInvalidRequest
	}
	return &APIError{Status: e.Status, Type: typ, Message: e.Message}
}

func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// retryAfter reads Retry-After (seconds or an HTTP date) or OpenAI's retry-after-ms.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if ms, err := strconv.ParseFloat(h.Get("Retry-After-Ms"), 64); err == nil && ms > 0 {
		return time.Duration(ms * float64(time.Millisecond))
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
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

const maxUpstreamBody = 64 << 20

// post sends a JSON request and returns the response when it is 2xx; anything else becomes an
// *UpstreamError. The caller closes the body.
func post(ctx context.Context, client *http.Client, provider, url string, header http.Header, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, &UpstreamError{Provider: provider, Err: err}
	}
	req.Header = header
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, &UpstreamError{Provider: provider, Err: transportError(ctx, err)}
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	typ, msg := errorMessageOf(raw)
	if resp.StatusCode == http.StatusUnauthorized {
		// The provider refused router's own key, and its message may quote it (OpenAI's does):
		// it must reach neither the client nor the recorded call.
		typ, msg = "", "the provider rejected the API key router is configured with"
	}
	return nil, &UpstreamError{Provider: provider, Status: resp.StatusCode, Type: typ, Message: msg, RetryAfter: retryAfter(resp.Header, time.Now())}
}

// transportError keeps a deadline recognisable however the transport wrapped it.
func transportError(ctx context.Context, err error) error {
	var ne net.Error
	if errors.Is(context.Cause(ctx), context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("%w: %v", context.DeadlineExceeded, err)
	}
	return err
}

func readBody(ctx context.Context, provider string, resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxUpstreamBody))
	if err != nil {
		return nil, &UpstreamError{Provider: provider, Err: transportError(ctx, err)}
	}
	return b, nil
}

// sseEvent is one server-sent event.
type sseEvent struct {
	Name string
	Data []byte
}

// sseReader parses a text/event-stream (WHATWG HTML, server-sent events).
type sseReader struct {
	r *bufio.Reader
}

func newSSEReader(r io.Reader) *sseReader { return &sseReader{r: bufio.NewReaderSize(r, 16<<10)} }

// Buffered reports whether bytes of the stream are already read but not yet parsed.
func (s *sseReader) Buffered() bool { return s.r.Buffered() > 0 }

// maxSSELine bounds a line of the stream and an event's data, and so the memory a provider that
// never ends a line (a fault, or a hostile endpoint) can make router hold.
const maxSSELine = 8 << 20

var errSSETooLong = fmt.Errorf("the provider sent a line or event over %d bytes", maxSSELine)

// readLine returns the next line, up to maxSSELine bytes. A line that fits the buffer is a view
// of it, valid until the next read.
func (s *sseReader) readLine() ([]byte, error) {
	line, err := s.r.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return line, err
	}
	long := append([]byte(nil), line...)
	for err == bufio.ErrBufferFull {
		if len(long) > maxSSELine {
			return nil, errSSETooLong
		}
		line, err = s.r.ReadSlice('\n')
		long = append(long, line...)
	}
	return long, err
}

// Next returns the next event with data, or io.EOF.
func (s *sseReader) Next() (sseEvent, error) {
	var ev sseEvent
	var data []byte
	hasData := false
	for {
		line, err := s.readLine()
		if err != nil && (len(line) == 0 || err != io.EOF) {
			if err == io.EOF && hasData {
				ev.Data = data
				return ev, nil
			}
			return ev, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			if hasData {
				ev.Data = data
				return ev, nil
			}
			ev = sseEvent{}
			continue
		}
		if line[0] == ':' {
			continue // comment, e.g. a keep-alive
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			ev.Name = string(value)
		case "data":
			if len(data)+len(value) > maxSSELine {
				return ev, errSSETooLong
			}
			if hasData {
				data = append(data, '\n')
			}
			data = append(data, value...)
			hasData = true
		}
	}
}
