package providers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/trustplane/trustplane/functions/router/openai"

	"github.com/google/uuid"
)

func newID(prefix string) string { return prefix + strings.ReplaceAll(uuid.NewString(), "-", "") }

// mockProvider answers in process, without a network or a key: it echoes the last user
// message. It exists so the gateway can be tried locally; the real adapters are the others.
type mockProvider struct {
	latency time.Duration
}

func (m *mockProvider) reply(ctx context.Context, req *openai.ChatRequest) (string, openai.Usage, error) {
	if m.latency > 0 {
		select {
		case <-time.After(m.latency):
		case <-ctx.Done():
			return "", openai.Usage{}, &UpstreamError{Provider: "mock", Err: ctx.Err()}
		}
	}
	var last string
	var promptChars int
	for _, msg := range req.Messages {
		t, _ := textOf(msg.Content)
		promptChars += len(t)
		if msg.Role == "user" {
			last = t
		}
	}
	text := "mock reply to: " + last
	u := openai.Usage{PromptTokens: int64(promptChars/4 + 1), CompletionTokens: int64(len(strings.Fields(text)))}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return text, u, nil
}

func (m *mockProvider) Chat(ctx context.Context, model string, req *openai.ChatRequest) (*ChatResult, error) {
	text, u, err := m.reply(ctx, req)
	if err != nil {
		return nil, err
	}
	content, _ := json.Marshal(text)
	msg := openai.Message{Role: "assistant", Content: content}
	stop := "stop"
	body, err := json.Marshal(openai.ChatResponse{ID: newID("chatcmpl-"), Object: "chat.completion", Created: time.Now().Unix(), Model: model,
		Choices: []openai.Choice{{Message: &msg, FinishReason: &stop}}, Usage: &u})
	if err != nil {
		return nil, err
	}
	output, _ := json.Marshal(msg)
	return &ChatResult{Body: body, Model: model, Usage: u, Output: output}, nil
}

func (m *mockProvider) ChatStream(ctx context.Context, model string, req *openai.ChatRequest) (ChunkStream, error) {
	text, u, err := m.reply(ctx, req)
	if err != nil {
		return nil, err
	}
	return &mockStream{ctx: ctx, id: newID("chatcmpl-"), model: model, words: strings.SplitAfter(text, " "), usage: u}, nil
}

type mockStream struct {
	ctx       context.Context
	id, model string
	words     []string
	usage     openai.Usage
	step      int
}

func (s *mockStream) Next() (Chunk, error) {
	if err := s.ctx.Err(); err != nil {
		return Chunk{}, &UpstreamError{Provider: "mock", Err: err}
	}
	n := s.step
	s.step++
	resp := openai.ChatResponse{ID: s.id, Object: "chat.completion.chunk", Created: time.Now().Unix(), Model: s.model, Choices: []openai.Choice{}}
	c := Chunk{Model: s.model}
	switch {
	case n < len(s.words):
		c.Text = s.words[n]
		content, _ := json.Marshal(c.Text)
		resp.Choices = []openai.Choice{{Delta: &openai.Message{Content: content}}}
		if n == 0 {
			resp.Choices[0].Delta.Role = "assistant"
		}
	case n == len(s.words):
		stop := "stop"
		resp.Choices = []openai.Choice{{Delta: &openai.Message{}, FinishReason: &stop}}
	case n == len(s.words)+1:
		resp.Usage, c.Usage, c.UsageOnly = &s.usage, &s.usage, true
	default:
		return Chunk{}, io.EOF
	}
	var err error
	c.Data, err = json.Marshal(resp)
	return c, err
}

func (s *mockStream) Close() error { return nil }

func (m *mockProvider) Embed(ctx context.Context, model string, req *openai.EmbeddingRequest) (*EmbedResult, error) {
	u := openai.Usage{PromptTokens: int64(len(req.Input)/4 + 1)}
	u.TotalTokens = u.PromptTokens
	body := fmt.Sprintf(`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2,0.3]}],"model":%q,"usage":{"prompt_tokens":%d,"total_tokens":%d}}`,
		model, u.PromptTokens, u.TotalTokens)
	return &EmbedResult{Body: []byte(body), Model: model, Usage: u}, nil
}
