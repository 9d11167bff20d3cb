package providers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/trustplane/trustplane/functions/router/openai"
)

// openAIProvider speaks OpenAI's API: OpenAI itself, Azure OpenAI (deployment URLs, api-key
// header, api-version), and any OpenAI-compatible server (vLLM, Ollama, ...).
type openAIProvider struct {
	name       string
	client     *http.Client
	baseURL    string // e.g. https://api.openai.com/v1, or for Azure https://x.openai.azure.com
	apiKey     string
	azure      bool
	apiVersion string
}

func (p *openAIProvider) url(model, op string) string {
	if p.azure {
		return fmt.Sprintf("%s/openai/deployments/%s/%s?api-version=%s", p.baseURL, url.PathEscape(model), op, url.QueryEscape(p.apiVersion))
	}
	return p.baseURL + "/" + op
}

func (p *openAIProvider) header() http.Header {
	h := make(http.Header, 3)
	switch {
	case p.apiKey == "":
	case p.azure:
		h.Set("Api-Key", p.apiKey)
	default:
		h.Set("Authorization", "Bearer "+p.apiKey)
	}
	return h
}

func (p *openAIProvider) Chat(ctx context.Context, model string, req *openai.ChatRequest) (*ChatResult, error) {
	body, err := req.Forward(map[string]any{"model": model, "stream": nil, "stream_options": nil})
	if err != nil {
		return nil, err
	}
	raw, r, err := p.call(ctx, model, "chat/completions", body)
	if err != nil {
		return nil, err
	}
	res := &ChatResult{Body: raw, Model: r.Model}
	if r.Usage != nil {
		res.Usage = *r.Usage
	}
	if len(r.Choices) > 0 {
		res.Output = r.Choices[0].Message
	}
	return res, nil
}

func (p *openAIProvider) ChatStream(ctx context.Context, model string, req *openai.ChatRequest) (ChunkStream, error) {
	body, err := req.Forward(map[string]any{"model": model, "stream": true, "stream_options": openai.StreamOptions{IncludeUsage: true}})
	if err != nil {
		return nil, err
	}
	h := p.header()
	h.Set("Accept", "text/event-stream")
	resp, err := post(ctx, p.client, p.name, p.url(model, "chat/completions"), h, body)
	if err != nil {
		return nil, err
	}
	return &openAIStream{ctx: ctx, name: p.name, body: resp.Body, sse: NewSSEReader(resp.Body)}, nil
}

type openAIStream struct {
	ctx  context.Context
	name string
	body io.ReadCloser
	sse  *SSEReader
	done bool // [DONE] was read
}

var doneMarker = []byte("[DONE]")

func (s *openAIStream) Next() (Chunk, error) {
	for {
		ev, err := s.sse.Next()
		if err == io.EOF {
			return Chunk{}, &UpstreamError{Provider: s.name, Err: io.ErrUnexpectedEOF}
		}
		if err != nil {
			return Chunk{}, &UpstreamError{Provider: s.name, Err: transportError(s.ctx, err)}
		}
		data := bytes.TrimSpace(ev.Data)
		if bytes.Equal(data, doneMarker) {
			s.done = true
			return Chunk{}, io.EOF
		}
		if len(data) == 0 {
			continue
		}
		if ev.Name == "error" || bytes.HasPrefix(data, []byte(`{"error"`)) {
			typ, msg := errorMessageOf(data)
			return Chunk{}, &UpstreamError{Provider: s.name, Status: http.StatusBadGateway, Type: typ, Message: msg}
		}
		if bytes.ContainsAny(data, "\r\n") {
			// A data field of several lines comes joined with '\n', which would end the line on
			// the client's stream: it is passed on compacted to one line.
			var b bytes.Buffer
			if json.Compact(&b, data) == nil {
				data = b.Bytes()
			}
		}
		r, err := openai.ReadReply(data)
		if err != nil {
			return Chunk{}, &UpstreamError{Provider: s.name, Status: http.StatusBadGateway, Message: "the provider streamed invalid JSON"}
		}
		c := Chunk{Data: data, Model: r.Model, Usage: r.Usage, UsageOnly: r.Usage != nil && len(r.Choices) == 0}
		// Capture keeps the first choice, as for a non-streamed answer; with n > 1 the chunks
		// of the other choices are interleaved with its own.
		if len(r.Choices) > 0 && r.Choices[0].Index == 0 {
			c.Text, c.ToolCalls = r.Choices[0].Delta.Content, r.Choices[0].Delta.ToolCalls
		}
		return c, nil
	}
}

func (s *openAIStream) Close() error { return closeStream(s.body, s.done) }

func (s *openAIStream) Buffered() bool { return s.sse.Buffered() }

func (p *openAIProvider) Embed(ctx context.Context, model string, req *openai.EmbeddingRequest) (*EmbedResult, error) {
	body, err := req.Forward(map[string]any{"model": model})
	if err != nil {
		return nil, err
	}
	raw, r, err := p.call(ctx, model, "embeddings", body)
	if err != nil {
		return nil, err
	}
	res := &EmbedResult{Body: raw, Model: r.Model}
	if r.Usage != nil {
		res.Usage = *r.Usage
		res.Usage.TotalTokens = max(res.Usage.TotalTokens, res.Usage.PromptTokens)
	}
	return res, nil
}

// closeStream closes a stream's body. A stream that ended is first read to the end of the
// body (the chunked-encoding end, which comes after the last event), so that the connection
// goes back to the pool instead of being closed.
func closeStream(body io.ReadCloser, ended bool) error {
	if ended {
		_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	}
	return body.Close()
}

// call posts a non-streaming request and decodes the answer's model and usage; the raw answer
// is passed on to the client as it came.
func (p *openAIProvider) call(ctx context.Context, model, path string, body []byte) ([]byte, openai.Reply, error) {
	var r openai.Reply
	resp, err := post(ctx, p.client, p.name, p.url(model, path), p.header(), body)
	if err != nil {
		return nil, r, err
	}
	raw, err := readBody(ctx, p.name, resp)
	if err != nil {
		return nil, r, err
	}
	if r, err = openai.ReadReply(raw); err != nil {
		return nil, r, &UpstreamError{Provider: p.name, Status: http.StatusBadGateway, Message: "the provider answered with invalid JSON"}
	}
	return raw, r, nil
}
