package router

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/functions/router/limits"
	"github.com/trustplane/trustplane/functions/router/openai"
	"github.com/trustplane/trustplane/functions/router/providers"
	"github.com/trustplane/trustplane/functions/router/routing"
)

// maxStreamCapture bounds the streamed text kept for capture, whatever the policy.
const maxStreamCapture = 1 << 20

func (g *Gateway) stream(w http.ResponseWriter, r *http.Request, c *call, cfg *routing.Table, rt *routing.Route, adm *limits.Admission, req *openai.ChatRequest) {
	var s providers.ChunkStream
	var first providers.Chunk
	var eof bool
	var stop context.CancelCauseFunc
	// The end of the provider's answer is read after the client's answer has ended (see release
	// below), so the upstream request must outlive this handler: it follows the client's
	// context only until the stream is over.
	upCtx, upCancel := context.WithCancelCause(context.WithoutCancel(r.Context()))
	unfollow := context.AfterFunc(r.Context(), func() { upCancel(context.Cause(r.Context())) })
	handedOff := false
	defer func() {
		if !handedOff { // an error before the stream, or a panic on the way
			unfollow()
			upCancel(context.Canceled)
		}
	}()
	t, err := g.router.Try(upCtx, cfg, rt, c, func(ctx context.Context, t *routing.Target) error {
		// The target's timeout covers the wait for the first chunk, not the whole stream (and
		// then each wait for the next chunk: see below).
		sctx, cancel := context.WithCancelCause(ctx)
		timer := time.AfterFunc(t.Timeout, func() { cancel(context.DeadlineExceeded) })
		st, err := t.Provider.ChatStream(sctx, t.Model, req)
		if err == nil {
			first, err = st.Next()
			if err == io.EOF {
				eof, err = true, nil
			}
			if err != nil {
				st.Close()
			}
		}
		timer.Stop()
		if err != nil {
			cancel(err)
			return err
		}
		s, stop = st, cancel
		return nil
	})
	if err != nil {
		g.settle(c, cfg, adm, nil, openai.Usage{})
		g.failed(w, r, c, err)
		return
	}
	// Past the first chunk, the target's timeout bounds each wait for the next one: an upstream
	// that stalls mid-stream ends the call (504 upstream_timeout as the stream's last event,
	// and recorded) instead of holding it, and the client, for good.
	idle := time.AfterFunc(t.Timeout, func() { stop(context.DeadlineExceeded) })
	idle.Stop()
	// Closing s waits for the end of the provider's answer, which comes after its last event:
	// it is left to the bookkeeping below, after the client's answer has ended. Closing s
	// before cancelling keeps the connection for the next call.
	release := func() {
		idle.Reset(min(t.Timeout, streamEndWait))
		_ = s.Close()
		idle.Stop()
		stop(context.Canceled)
		upCancel(context.Canceled)
	}
	defer func() {
		if !handedOff {
			release()
		}
	}()
	c.ttft = time.Since(c.start)
	c.served(t, first.Model)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)

	var usage *openai.Usage
	var text strings.Builder
	var calls streamedCalls
	var streamErr error
	var buf []byte
	// As OpenAI does, the usage chunk goes only to a client that asked for it.
	wantUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	chunk := first
	for !eof {
		if chunk.Usage != nil {
			usage = chunk.Usage
		}
		if text.Len() < maxStreamCapture {
			text.WriteString(chunk.Text)
		}
		for _, d := range chunk.ToolCalls {
			calls.add(d)
		}
		if !chunk.UsageOnly || wantUsage {
			buf = append(append(append(buf[:0], "data: "...), chunk.Data...), "\n\n"...)
			if _, err := w.Write(buf); err != nil {
				streamErr = err
				break
			}
			if bs, ok := s.(providers.BufferedStream); !ok || !bs.Buffered() {
				if err := rc.Flush(); err != nil {
					streamErr = err
					break
				}
			}
		}
		start := time.Now()
		idle.Reset(t.Timeout)
		chunk, streamErr = s.Next()
		idle.Stop()
		c.providerTime += time.Since(start)
		if streamErr == io.EOF {
			eof, streamErr = true, nil
		}
		if streamErr != nil {
			break
		}
	}
	// What is written from here on goes to the client with the end of the answer, in one write,
	// when the handler returns.
	if eof {
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	}
	switch {
	case streamErr == nil:
		c.ev.Status, c.ev.StatusCode = catalog.LLMCallSuccess, http.StatusOK
	case r.Context().Err() != nil:
		// The client went away: closing s (deferred) cancels the upstream request.
		c.ev.Status, c.ev.StatusCode, c.ev.Error = catalog.LLMCallCancelled, 499, "the client closed the connection during the stream"
	default:
		// Too late for a status code: the error goes to the client as a last event.
		e := asAPIError(streamErr)
		_, _ = w.Write(append(append([]byte("data: "), e.Body()...), "\n\n"...))
		c.ev.Status, c.ev.StatusCode, c.ev.Error = catalog.LLMCallError, e.Status, clip(streamErr.Error(), 4096)
	}
	// The stream ends for the client when this handler returns; the bookkeeping (a limits
	// round trip to Redis, encoding the event) need not hold it up.
	c.end = time.Now()
	g.tails.add()
	unfollow()
	handedOff = true
	go func() {
		defer g.tails.done()
		release()
		out := openai.Message{Role: "assistant", Content: mustJSON(text.String()), ToolCalls: calls.done()}
		if text.Len() == 0 && len(out.ToolCalls) > 0 {
			out.Content = json.RawMessage("null")
		}
		c.output, _ = json.Marshal(out)
		var u openai.Usage
		if usage != nil {
			u = *usage
		} else {
			// The stream ended before its usage chunk: count what was seen.
			u = estimatedUsage(c.input, text.Len())
		}
		g.settle(c, cfg, adm, t, u)
		g.finish(c)
	}()
}

// streamEndWait bounds the wait for the end of a provider's answer after its last event. The end
// normally follows at once; one that does not come costs the connection (closed, not reused),
// not the call's record, which waits for it, nor a shutdown, which waits for the records.
const streamEndWait = time.Second

// maxStreamToolCalls bounds the streamed tool calls kept for capture.
const maxStreamToolCalls = 128

// streamedCalls puts streamed tool call deltas together for capture: the first delta of a call
// names it, the later ones add pieces of its arguments, gathered in a buffer each (adding to
// the string itself would copy the arguments so far for every piece).
type streamedCalls struct {
	calls []openai.ToolCall
	args  [][]byte
}

func (s *streamedCalls) add(d openai.ToolCall) {
	i := len(s.calls)
	if d.Index != nil {
		i = *d.Index
	}
	if i < 0 || i >= maxStreamToolCalls {
		return
	}
	for len(s.calls) <= i {
		s.calls = append(s.calls, openai.ToolCall{})
		s.args = append(s.args, nil)
	}
	tc := &s.calls[i]
	if d.ID != "" {
		tc.ID = d.ID
	}
	if d.Type != "" {
		tc.Type = d.Type
	}
	if d.Function.Name != "" {
		tc.Function.Name = d.Function.Name
	}
	if len(s.args[i]) < maxStreamCapture {
		s.args[i] = append(s.args[i], d.Function.Arguments...)
	}
}

// done returns the calls with their arguments.
func (s *streamedCalls) done() []openai.ToolCall {
	for i := range s.calls {
		s.calls[i].Function.Arguments = string(s.args[i])
	}
	return s.calls
}

func mustJSON(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}
