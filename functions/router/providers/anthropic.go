package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/trustplane/trustplane/functions/router/openai"
)

// anthropicProvider translates OpenAI chat completions to Anthropic's Messages API and back:
// system prompts, tool definitions, tool calls and results, stop reasons, usage, and the
// streaming events.
type anthropicProvider struct {
	name      string
	client    *http.Client
	baseURL   string // e.g. https://api.anthropic.com
	apiKey    string
	version   string // anthropic-version header
	maxTokens int64  // max_tokens when the client sets none (Anthropic requires it)
}

type anthMessage struct {
	Role    string      `json:"role"`
	Content []anthBlock `json:"content"`
}

type anthBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   json.RawMessage `json:"content,omitempty"`
	Source    *anthSource     `json:"source,omitempty"`
}

type anthSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type anthTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type anthRequest struct {
	Model         string          `json:"model"`
	System        string          `json:"system,omitempty"`
	Messages      []anthMessage   `json:"messages"`
	MaxTokens     int64           `json:"max_tokens"`
	Temperature   *float64        `json:"temperature,omitempty"`
	TopP          *float64        `json:"top_p,omitempty"`
	StopSequences []string        `json:"stop_sequences,omitempty"`
	Stream        bool            `json:"stream,omitempty"`
	Tools         []anthTool      `json:"tools,omitempty"`
	ToolChoice    json.RawMessage `json:"tool_choice,omitempty"`
	Metadata      *anthMetadata   `json:"metadata,omitempty"`
}

type anthMetadata struct {
	UserID string `json:"user_id"`
}

type anthUsage struct {
	InputTokens              int64 `json:"input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
}

func (u anthUsage) openAI() openai.Usage {
	in := u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens
	return openai.Usage{PromptTokens: in, CompletionTokens: u.OutputTokens, TotalTokens: in + u.OutputTokens}
}

type anthResponse struct {
	ID         string      `json:"id"`
	Model      string      `json:"model"`
	Content    []anthBlock `json:"content"`
	StopReason string      `json:"stop_reason"`
	Usage      anthUsage   `json:"usage"`
}

// finishReason maps Anthropic's stop_reason to OpenAI's finish_reason.
func finishReason(stop string) string {
	switch stop {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	default: // end_turn, stop_sequence, pause_turn
		return "stop"
	}
}

// contentBlocks reads an OpenAI content value, a string or an array of text and image parts.
func contentBlocks(content json.RawMessage) ([]anthBlock, error) {
	if len(content) == 0 || string(content) == "null" {
		return nil, nil
	}
	var s string
	if json.Unmarshal(content, &s) == nil {
		if s == "" {
			return nil, nil
		}
		return []anthBlock{{Type: "text", Text: s}}, nil
	}
	var parts []struct {
		Type     string `json:"type"`
		Text     string `json:"text"`
		ImageURL struct {
			URL string `json:"url"`
		} `json:"image_url"`
	}
	if err := json.Unmarshal(content, &parts); err != nil {
		return nil, errors.New("content must be a string or an array of content parts")
	}
	var out []anthBlock
	for _, p := range parts {
		switch p.Type {
		case "text":
			out = append(out, anthBlock{Type: "text", Text: p.Text})
		case "image_url":
			out = append(out, anthBlock{Type: "image", Source: imageSource(p.ImageURL.URL)})
		default:
			return nil, fmt.Errorf("content part type %q is not supported by this provider", p.Type)
		}
	}
	return out, nil
}

// imageSource turns an OpenAI image URL (https or a data: URL) into an Anthropic image source.
func imageSource(u string) *anthSource {
	if rest, ok := strings.CutPrefix(u, "data:"); ok {
		if meta, data, ok := strings.Cut(rest, ","); ok {
			return &anthSource{Type: "base64", MediaType: strings.TrimSuffix(meta, ";base64"), Data: data}
		}
	}
	return &anthSource{Type: "url", URL: u}
}

// textOf joins the text of an OpenAI content value.
func textOf(content json.RawMessage) (string, error) {
	blocks, err := contentBlocks(content)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, bl := range blocks {
		b.WriteString(bl.Text)
	}
	return b.String(), nil
}

// toAnthropic translates a chat completion request.
func (p *anthropicProvider) toAnthropic(model string, req *openai.ChatRequest, stream bool) (*anthRequest, error) {
	out := &anthRequest{Model: model, Temperature: req.Temperature, TopP: req.TopP, Stream: stream, MaxTokens: p.maxTokens}
	if req.MaxCompletionTokens != nil {
		out.MaxTokens = *req.MaxCompletionTokens
	} else if req.MaxTokens != nil {
		out.MaxTokens = *req.MaxTokens
	}
	if req.User != "" {
		out.Metadata = &anthMetadata{UserID: req.User}
	}
	// A null field is an unset one, as OpenAI reads it.
	if len(req.Stop) > 0 && string(req.Stop) != "null" {
		var one string
		if json.Unmarshal(req.Stop, &one) == nil {
			out.StopSequences = []string{one}
		} else if err := json.Unmarshal(req.Stop, &out.StopSequences); err != nil {
			return nil, openai.BadRequest("stop must be a string or an array of strings")
		}
	}
	var system []string
	for i, m := range req.Messages {
		switch m.Role {
		case "system", "developer":
			s, err := textOf(m.Content)
			if err != nil {
				return nil, openai.BadRequest("messages[%d]: %v", i, err)
			}
			system = append(system, s)
		case "user", "assistant":
			blocks, err := contentBlocks(m.Content)
			if err != nil {
				return nil, openai.BadRequest("messages[%d]: %v", i, err)
			}
			for _, tc := range m.ToolCalls {
				input := json.RawMessage(tc.Function.Arguments)
				if strings.TrimSpace(tc.Function.Arguments) == "" {
					input = json.RawMessage("{}")
				} else if !json.Valid(input) {
					return nil, openai.BadRequest("messages[%d].tool_calls: arguments of %s are not valid JSON", i, tc.Function.Name)
				}
				blocks = append(blocks, anthBlock{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: input})
			}
			out.Messages = appendMessage(out.Messages, m.Role, blocks)
		case "tool":
			text, err := textOf(m.Content)
			if err != nil {
				return nil, openai.BadRequest("messages[%d]: %v", i, err)
			}
			content, _ := json.Marshal(text)
			out.Messages = appendMessage(out.Messages, "user", []anthBlock{{Type: "tool_result", ToolUseID: m.ToolCallID, Content: content}})
		}
	}
	out.System = strings.Join(system, "\n\n")
	for _, t := range req.Tools {
		schema := t.Function.Parameters
		if len(schema) == 0 {
			schema = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		out.Tools = append(out.Tools, anthTool{Name: t.Function.Name, Description: t.Function.Description, InputSchema: schema})
	}
	if len(req.ToolChoice) > 0 && string(req.ToolChoice) != "null" {
		tc, err := toolChoice(req.ToolChoice)
		if err != nil {
			return nil, err
		}
		out.ToolChoice = tc
	}
	return out, nil
}

// appendMessage merges consecutive messages of one role: Anthropic wants user and assistant
// turns to alternate, and several tool results answer one assistant turn.
func appendMessage(msgs []anthMessage, role string, blocks []anthBlock) []anthMessage {
	if n := len(msgs); n > 0 && msgs[n-1].Role == role {
		msgs[n-1].Content = append(msgs[n-1].Content, blocks...)
		return msgs
	}
	if blocks == nil {
		blocks = []anthBlock{}
	}
	return append(msgs, anthMessage{Role: role, Content: blocks})
}

func toolChoice(raw json.RawMessage) (json.RawMessage, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "auto":
			return json.RawMessage(`{"type":"auto"}`), nil
		case "required":
			return json.RawMessage(`{"type":"any"}`), nil
		case "none":
			return json.RawMessage(`{"type":"none"}`), nil
		}
		return nil, openai.BadRequest("tool_choice must be auto, required, none or a function, got %q", s)
	}
	var f struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(raw, &f) != nil || f.Function.Name == "" {
		return nil, openai.BadRequest("tool_choice must be auto, required, none or {\"type\":\"function\",\"function\":{\"name\":...}}")
	}
	return json.Marshal(map[string]string{"type": "tool", "name": f.Function.Name})
}

func (p *anthropicProvider) send(ctx context.Context, model string, req *openai.ChatRequest, stream bool) (*http.Response, error) {
	ar, err := p.toAnthropic(model, req, stream)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(ar)
	if err != nil {
		return nil, err
	}
	h := make(http.Header, 4)
	h.Set("X-Api-Key", p.apiKey)
	h.Set("Anthropic-Version", p.version)
	if stream {
		h.Set("Accept", "text/event-stream")
	}
	return post(ctx, p.client, p.name, p.baseURL+"/v1/messages", h, body)
}

func (p *anthropicProvider) Chat(ctx context.Context, model string, req *openai.ChatRequest) (*ChatResult, error) {
	resp, err := p.send(ctx, model, req, false)
	if err != nil {
		return nil, err
	}
	raw, err := readBody(ctx, p.name, resp)
	if err != nil {
		return nil, err
	}
	var ar anthResponse
	if err := json.Unmarshal(raw, &ar); err != nil {
		return nil, &UpstreamError{Provider: p.name, Status: http.StatusBadGateway, Message: "the provider answered with invalid JSON"}
	}
	msg := openai.Message{Role: "assistant"}
	var text strings.Builder
	for _, b := range ar.Content {
		switch b.Type {
		case "text":
			text.WriteString(b.Text)
		case "tool_use":
			input := string(b.Input)
			if input == "" {
				input = "{}"
			}
			msg.ToolCalls = append(msg.ToolCalls, openai.ToolCall{ID: b.ID, Type: "function", Function: openai.FunctionCall{Name: b.Name, Arguments: input}})
		}
	}
	if text.Len() > 0 || len(msg.ToolCalls) == 0 {
		msg.Content, _ = json.Marshal(text.String())
	} else {
		msg.Content = json.RawMessage("null")
	}
	fr := finishReason(ar.StopReason)
	usage := ar.Usage.openAI()
	out := openai.ChatResponse{ID: ar.ID, Object: "chat.completion", Created: time.Now().Unix(), Model: ar.Model,
		Choices: []openai.Choice{{Index: 0, Message: &msg, FinishReason: &fr}}, Usage: &usage}
	body, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	output, _ := json.Marshal(msg)
	return &ChatResult{Body: body, Model: ar.Model, Usage: usage, Output: output}, nil
}

func (p *anthropicProvider) ChatStream(ctx context.Context, model string, req *openai.ChatRequest) (ChunkStream, error) {
	resp, err := p.send(ctx, model, req, true)
	if err != nil {
		return nil, err
	}
	return &anthropicStream{ctx: ctx, name: p.name, body: resp.Body, sse: NewSSEReader(resp.Body), created: time.Now().Unix(), toolIndex: map[int]int{}}, nil
}

// anthropicStream turns Messages API events into chat.completion.chunk objects.
type anthropicStream struct {
	ctx     context.Context
	name    string
	body    io.ReadCloser
	sse     *SSEReader
	created int64

	id, model string
	usage     anthUsage
	toolIndex map[int]int // content block index -> OpenAI tool_calls index
	done      bool
}

type anthEvent struct {
	Type    string `json:"type"`
	Index   int    `json:"index"`
	Message struct {
		ID    string    `json:"id"`
		Model string    `json:"model"`
		Usage anthUsage `json:"usage"`
	} `json:"message"`
	ContentBlock anthBlock `json:"content_block"`
	Delta        struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		PartialJSON string `json:"partial_json"`
		StopReason  string `json:"stop_reason"`
	} `json:"delta"`
	Usage *anthUsage `json:"usage"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

func (s *anthropicStream) chunk(delta *openai.Message, finish *string, usage *openai.Usage) (Chunk, error) {
	choices := []openai.Choice{}
	if delta != nil {
		choices = []openai.Choice{{Index: 0, Delta: delta, FinishReason: finish}}
	}
	data, err := json.Marshal(openai.ChatResponse{ID: s.id, Object: "chat.completion.chunk", Created: s.created, Model: s.model, Choices: choices, Usage: usage})
	c := Chunk{Data: data, Model: s.model, Usage: usage, UsageOnly: usage != nil && delta == nil}
	if delta != nil && len(delta.Content) > 0 {
		_ = json.Unmarshal(delta.Content, &c.Text)
	}
	if delta != nil {
		c.ToolCalls = delta.ToolCalls
	}
	return c, err
}

func (s *anthropicStream) Next() (Chunk, error) {
	for {
		if s.done {
			return Chunk{}, io.EOF
		}
		ev, err := s.sse.Next()
		if err == io.EOF {
			return Chunk{}, &UpstreamError{Provider: s.name, Err: io.ErrUnexpectedEOF}
		}
		if err != nil {
			return Chunk{}, &UpstreamError{Provider: s.name, Err: transportError(s.ctx, err)}
		}
		var e anthEvent
		if err := json.Unmarshal(ev.Data, &e); err != nil {
			return Chunk{}, &UpstreamError{Provider: s.name, Status: http.StatusBadGateway, Message: "the provider streamed invalid JSON"}
		}
		switch e.Type {
		case "message_start":
			s.id, s.model, s.usage = e.Message.ID, e.Message.Model, e.Message.Usage
			empty, _ := json.Marshal("")
			return s.chunk(&openai.Message{Role: "assistant", Content: empty}, nil, nil)
		case "content_block_start":
			if e.ContentBlock.Type != "tool_use" {
				continue
			}
			idx := len(s.toolIndex)
			s.toolIndex[e.Index] = idx
			return s.chunk(&openai.Message{ToolCalls: []openai.ToolCall{{Index: &idx, ID: e.ContentBlock.ID, Type: "function",
				Function: openai.FunctionCall{Name: e.ContentBlock.Name}}}}, nil, nil)
		case "content_block_delta":
			switch e.Delta.Type {
			case "text_delta":
				text, _ := json.Marshal(e.Delta.Text)
				return s.chunk(&openai.Message{Content: text}, nil, nil)
			case "input_json_delta":
				idx, ok := s.toolIndex[e.Index]
				if !ok {
					continue
				}
				return s.chunk(&openai.Message{ToolCalls: []openai.ToolCall{{Index: &idx, Function: openai.FunctionCall{Arguments: e.Delta.PartialJSON}}}}, nil, nil)
			}
		case "message_delta":
			if e.Usage != nil {
				// message_delta's usage is cumulative.
				s.usage.OutputTokens = e.Usage.OutputTokens
				if e.Usage.InputTokens > 0 {
					s.usage.InputTokens = e.Usage.InputTokens
				}
			}
			if e.Delta.StopReason != "" {
				fr := finishReason(e.Delta.StopReason)
				return s.chunk(&openai.Message{}, &fr, nil)
			}
		case "message_stop":
			s.done = true
			u := s.usage.openAI()
			return s.chunk(nil, nil, &u)
		case "error":
			status := http.StatusBadGateway
			if e.Error.Type == "overloaded_error" {
				status = 529
			}
			return Chunk{}, &UpstreamError{Provider: s.name, Status: status, Type: e.Error.Type, Message: e.Error.Message}
		}
		// ping, content_block_stop and unknown events carry nothing for the client.
	}
}

func (s *anthropicStream) Close() error { return closeStream(s.body, s.done) }

func (s *anthropicStream) Buffered() bool { return s.sse.Buffered() }

func (p *anthropicProvider) Embed(context.Context, string, *openai.EmbeddingRequest) (*EmbedResult, error) {
	return nil, &openai.APIError{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Message: "this model's provider (Anthropic) has no embeddings API"}
}
