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

// stream runs a streamed call: the first chunk is awaited under the route's retries and
// fallbacks, then the chunks are passed on as they arrive. The call's bookkeeping runs after the
// client's answer has ended.
func (g *Gateway) stream(w http.ResponseWriter, r *http.Request, c *call, cfg *routing.Table, rt *routing.Route, adm *limits.Admission, req *openai.ChatRequest) {
	up := followClient(r.Context())
	var o *openedStream
	handedOff := false
	defer func() {
		if !handedOff { // an error before the stream, or a panic on the way
			if o != nil {
				o.close()
			}
			up.end()
		}
	}()
	t, err := g.router.Try(up.ctx, cfg, rt, c, func(ctx context.Context, t *routing.Target) (err error) {
		o, err = openStream(ctx, t, req)
		return err
	})
	if err != nil {
		g.settle(c, cfg, adm, nil, openai.Usage{})
		g.failed(w, r, c, err)
		return
	}
	c.ttft = time.Since(c.start)
	c.served(t, o.first.Model)
	// As OpenAI does, the usage chunk goes only to a client that asked for it.
	out := relay(w, c, o, req.StreamOptions != nil && req.StreamOptions.IncludeUsage)
	endStream(w, r, c, out)
	// The stream ends for the client when this handler returns; the bookkeeping (a limits
	// round trip to Redis, encoding the event) need not hold it up.
	c.end = time.Now()
	g.tails.add()
	up.detach()
	handedOff = true
	go g.finishStream(c, cfg, adm, t, o, up, out)
}

// upstreamContext is the context of a streamed call's upstream requests. The end of the
// provider's answer is read after the client's answer has ended (see openedStream.close), so the
// upstream request must outlive the handler: it follows the client's context only until the
// stream is over for the client (detach), and ends with the bookkeeping (end).
type upstreamContext struct {
	ctx      context.Context
	cancel   context.CancelCauseFunc
	unfollow func() bool
}

func followClient(client context.Context) *upstreamContext {
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(client))
	unfollow := context.AfterFunc(client, func() { cancel(context.Cause(client)) })
	return &upstreamContext{ctx: ctx, cancel: cancel, unfollow: unfollow}
}

// detach stops following the client: its going away no longer cancels the upstream request.
func (u *upstreamContext) detach() { u.unfollow() }

// end cancels whatever upstream request is left.
func (u *upstreamContext) end() {
	u.unfollow()
	u.cancel(context.Canceled)
}

// openedStream is a provider's stream that delivered its first chunk.
type openedStream struct {
	providers.ChunkStream
	first   providers.Chunk
	eof     bool // the first event ended the stream
	timeout time.Duration
	// idle ends the request (stop) when a wait for the next chunk outlasts the target's timeout:
	// an upstream that stalls mid-stream ends the call (504 upstream_timeout as the stream's last
	// event, and recorded) instead of holding it, and the client, for good.
	idle *time.Timer
	stop context.CancelCauseFunc
}

// openStream is one streamed attempt: the request, then the first chunk. The target's timeout
// covers the wait for the first chunk, not the whole stream (and then each wait for the next
// chunk: see next).
func openStream(ctx context.Context, t *routing.Target, req *openai.ChatRequest) (*openedStream, error) {
	sctx, stop := context.WithCancelCause(ctx)
	timer := time.AfterFunc(t.Timeout, func() { stop(context.DeadlineExceeded) })
	var first providers.Chunk
	eof := false
	s, err := t.Provider.ChatStream(sctx, t.Model, req)
	if err == nil {
		first, err = s.Next()
		if err == io.EOF {
			eof, err = true, nil
		}
		if err != nil {
			s.Close()
		}
	}
	timer.Stop()
	if err != nil {
		stop(err)
		return nil, err
	}
	o := &openedStream{ChunkStream: s, first: first, eof: eof, timeout: t.Timeout, stop: stop}
	o.idle = time.AfterFunc(t.Timeout, func() { stop(context.DeadlineExceeded) })
	o.idle.Stop()
	return o, nil
}

// next waits for the next chunk, for at most the target's timeout.
func (o *openedStream) next() (providers.Chunk, error) {
	o.idle.Reset(o.timeout)
	defer o.idle.Stop()
	return o.ChunkStream.Next()
}

// buffered reports whether the provider's next chunk has already arrived.
func (o *openedStream) buffered() bool {
	bs, ok := o.ChunkStream.(providers.BufferedStream)
	return ok && bs.Buffered()
}

// close reads the end of the provider's answer, which comes after its last event, so that the
// connection is kept for the next call (waiting at most streamEndWait), then ends the request.
// Closing before cancelling is what keeps the connection.
func (o *openedStream) close() {
	o.idle.Reset(min(o.timeout, streamEndWait))
	_ = o.ChunkStream.Close()
	o.idle.Stop()
	o.stop(context.Canceled)
}

// relayed is what a stream carried, for the call's record.
type relayed struct {
	usage *openai.Usage
	text  strings.Builder
	calls streamedCalls
	eof   bool  // the provider ended the stream
	err   error // what ended it otherwise: the provider, or the client going away
}

// relay sends the stream's chunks to the client as they arrive, writing the next one before
// flushing when it has already arrived.
func relay(w http.ResponseWriter, c *call, o *openedStream, wantUsage bool) *relayed {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)

	out := &relayed{eof: o.eof}
	var buf []byte
	sg := c.guard.streamGuard()
	chunk := o.first
	for !out.eof {
		if chunk.Usage != nil {
			out.usage = chunk.Usage
		}
		datas := [][]byte{chunk.Data}
		if sg != nil {
			var err error
			if datas, err = sg.pass(&chunk); err != nil {
				out.err = err
				return out
			}
		}
		if out.text.Len() < maxStreamCapture {
			out.text.WriteString(chunk.Text)
		}
		for _, d := range chunk.ToolCalls {
			out.calls.add(d)
		}
		if !chunk.UsageOnly || wantUsage {
			buf = buf[:0]
			for _, data := range datas {
				buf = append(append(append(buf, "data: "...), data...), "\n\n"...)
			}
			if _, err := w.Write(buf); err != nil {
				out.err = err
				return out
			}
			if !o.buffered() {
				if err := rc.Flush(); err != nil {
					out.err = err
					return out
				}
			}
		}
		start := time.Now()
		var err error
		chunk, err = o.next()
		c.providerTime += time.Since(start)
		if err == io.EOF {
			out.eof = true
		} else if err != nil {
			out.err = err
			return out
		}
	}
	if sg != nil {
		// The stream ended without a finishing chunk: what the checks held back goes now.
		rest, err := sg.end()
		if err != nil {
			out.eof, out.err = false, err
			return out
		}
		if rest != nil {
			out.text.WriteString(sg.restText)
			if _, err := w.Write(append(append([]byte("data: "), rest...), "\n\n"...)); err != nil {
				out.err = err
			}
		}
	}
	return out
}

// endStream writes the stream's last event and sets the call's status. What is written here goes
// to the client with the end of the answer, in one write, when the handler returns.
func endStream(w http.ResponseWriter, r *http.Request, c *call, out *relayed) {
	if out.eof {
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	}
	switch {
	case out.err == nil:
		c.ev.Status, c.ev.StatusCode = catalog.LLMCallSuccess, http.StatusOK
	case r.Context().Err() != nil:
		// The client went away: closing the stream cancels the upstream request.
		c.ev.Status, c.ev.StatusCode, c.ev.Error = catalog.LLMCallCancelled, 499, "the client closed the connection during the stream"
	default:
		// Too late for a status code: the error goes to the client as a last event.
		e := asAPIError(out.err)
		_, _ = w.Write(append(append([]byte("data: "), e.Body()...), "\n\n"...))
		c.ev.Status, c.ev.StatusCode, c.ev.Error = catalog.LLMCallError, e.Status, clip(out.err.Error(), 4096)
	}
}

// finishStream is a streamed call's bookkeeping, once the client's answer has ended: the end of
// the provider's answer is read, the limits are corrected and the call is recorded.
func (g *Gateway) finishStream(c *call, cfg *routing.Table, adm *limits.Admission, t *routing.Target, o *openedStream, up *upstreamContext, out *relayed) {
	defer g.tails.done()
	o.close()
	up.end()
	msg := openai.Message{Role: "assistant", Content: mustJSON(out.text.String()), ToolCalls: out.calls.done()}
	if out.text.Len() == 0 && len(msg.ToolCalls) > 0 {
		msg.Content = json.RawMessage("null")
	}
	c.output, _ = json.Marshal(msg)
	u := openai.Usage{}
	if out.usage != nil {
		u = *out.usage
	} else {
		// The stream ended before its usage chunk: count what was seen.
		u = estimatedUsage(c.input, out.text.Len())
	}
	g.settle(c, cfg, adm, t, u)
	g.finish(c)
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
