package router

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// The OpenAI wire format, as much of it as router reads or writes. Requests keep every field
// they arrived with (raw), so OpenAI-compatible upstreams receive what the client sent.

// ChatRequest is the body of POST /v1/chat/completions.
type ChatRequest struct {
	Model               string          `json:"model"`
	Messages            []Message       `json:"messages"`
	Stream              bool            `json:"stream,omitempty"`
	StreamOptions       *StreamOptions  `json:"stream_options,omitempty"`
	MaxTokens           *int64          `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int64          `json:"max_completion_tokens,omitempty"`
	Temperature         *float64        `json:"temperature,omitempty"`
	TopP                *float64        `json:"top_p,omitempty"`
	Stop                json.RawMessage `json:"stop,omitempty"`
	Tools               []Tool          `json:"tools,omitempty"`
	ToolChoice          json.RawMessage `json:"tool_choice,omitempty"`
	User                string          `json:"user,omitempty"`

	raw map[string]json.RawMessage
}

// StreamOptions asks for a final usage chunk.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// Message is one chat message. Content is a string or an array of content parts.
type Message struct {
	Role       string          `json:"role,omitempty"`
	Content    json.RawMessage `json:"content,omitempty"`
	Name       string          `json:"name,omitempty"`
	ToolCalls  []ToolCall      `json:"tool_calls,omitempty"`
	ToolCallID string          `json:"tool_call_id,omitempty"`
}

// ToolCall is a function call the model asked for. Index is set in stream deltas only.
type ToolCall struct {
	Index    *int         `json:"index,omitempty"`
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function FunctionCall `json:"function"`
}

// FunctionCall names a function and carries its JSON arguments as a string.
type FunctionCall struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// Tool is a function the model may call.
type Tool struct {
	Type     string      `json:"type"`
	Function FunctionDef `json:"function"`
}

// FunctionDef describes a callable function.
type FunctionDef struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// ChatResponse is a chat.completion object, or with Object chat.completion.chunk a stream chunk.
type ChatResponse struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"`
	Created int64    `json:"created"`
	Model   string   `json:"model"`
	Choices []Choice `json:"choices"`
	Usage   *Usage   `json:"usage,omitempty"`
}

// Choice is one completion; Message in responses, Delta in stream chunks.
type Choice struct {
	Index        int      `json:"index"`
	Message      *Message `json:"message,omitempty"`
	Delta        *Message `json:"delta,omitempty"`
	FinishReason *string  `json:"finish_reason"`
}

// Usage counts tokens.
type Usage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
}

// EmbeddingRequest is the body of POST /v1/embeddings. Input is a string, an array of strings,
// or arrays of token ids.
type EmbeddingRequest struct {
	Model string          `json:"model"`
	Input json.RawMessage `json:"input"`

	raw map[string]json.RawMessage
}

// ParseChatRequest parses and validates a chat completion request.
func ParseChatRequest(body []byte) (*ChatRequest, error) {
	if tooManyValues(body, maxRequestValues) {
		return nil, &APIError{Status: http.StatusBadRequest, Type: errInvalidRequest,
			Message: fmt.Sprintf("the request holds more than %d values in its arrays and objects", maxRequestValues)}
	}
	var r ChatRequest
	if err := decodeRequest(body, &r, &r.raw); err != nil {
		return nil, err
	}
	if r.Model == "" {
		return nil, &APIError{Status: http.StatusBadRequest, Type: errInvalidRequest, Param: "model", Message: "model is required"}
	}
	if len(r.Messages) == 0 {
		return nil, &APIError{Status: http.StatusBadRequest, Type: errInvalidRequest, Param: "messages", Message: "messages must hold at least one message"}
	}
	for i, m := range r.Messages {
		switch m.Role {
		case "system", "developer", "user", "assistant", "tool":
		default:
			return nil, &APIError{Status: http.StatusBadRequest, Type: errInvalidRequest, Param: fmt.Sprintf("messages[%d].role", i),
				Message: fmt.Sprintf("messages[%d].role must be system, developer, user, assistant or tool, got %q", i, m.Role)}
		}
	}
	return &r, nil
}

// ParseEmbeddingRequest parses and validates an embeddings request.
func ParseEmbeddingRequest(body []byte) (*EmbeddingRequest, error) {
	var r EmbeddingRequest
	if err := decodeRequest(body, &r, &r.raw); err != nil {
		return nil, err
	}
	if r.Model == "" {
		return nil, &APIError{Status: http.StatusBadRequest, Type: errInvalidRequest, Param: "model", Message: "model is required"}
	}
	if len(r.Input) == 0 || string(r.Input) == "null" {
		return nil, &APIError{Status: http.StatusBadRequest, Type: errInvalidRequest, Param: "input", Message: "input is required"}
	}
	return &r, nil
}

// OpenAI error types.
const (
	errInvalidRequest = "invalid_request_error"
	errAuthentication = "authentication_error"
	errPermission     = "permission_error"
	errRateLimit      = "rate_limit_error"
	errServer         = "server_error"
	errUnavailable    = "service_unavailable"
	errNotFound       = "not_found_error"
)

// APIError is an error answered to the client in OpenAI's format:
// {"error": {"message", "type", "param", "code"}}.
type APIError struct {
	Status     int
	Type       string
	Code       string
	Param      string
	Message    string
	RetryAfter int // seconds; 0: no Retry-After header
}

func (e *APIError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Type, e.Message) }

// asAPIError converts any error into what the client is told.
func asAPIError(err error) *APIError {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae
	}
	var ue *UpstreamError
	if errors.As(err, &ue) {
		return ue.apiError()
	}
	return &APIError{Status: http.StatusBadRequest, Type: errInvalidRequest, Message: err.Error()}
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *APIError) body() []byte {
	d := errorDetail{Message: e.Message, Type: e.Type}
	if e.Param != "" {
		d.Param = &e.Param
	}
	if e.Code != "" {
		d.Code = &e.Code
	}
	b, _ := json.Marshal(errorBody{Error: d})
	return b
}

func writeError(w http.ResponseWriter, e *APIError) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	_, _ = w.Write(e.body())
}
