// Package providers sends chat completions and embeddings to LLM providers: OpenAI, Azure
// OpenAI and any OpenAI-compatible server (one adapter), Anthropic's Messages API (translated
// both ways), and an in-process mock. Streams are read as server-sent events. A failed attempt
// is an *UpstreamError, which says whether another target may succeed.
package providers

import (
	"context"
	"encoding/json"

	"github.com/trustplane/trustplane/functions/router/openai"
)

// Provider sends requests to one LLM provider account. model is the provider's own model (or,
// for Azure, deployment) name.
type Provider interface {
	Chat(ctx context.Context, model string, req *openai.ChatRequest) (*ChatResult, error)
	// ChatStream returns once the provider has accepted the request (answered 200), so a
	// failure before any chunk can still fall back to another target.
	ChatStream(ctx context.Context, model string, req *openai.ChatRequest) (ChunkStream, error)
	Embed(ctx context.Context, model string, req *openai.EmbeddingRequest) (*EmbedResult, error)
}

// ChatResult is a non-streaming completion, already in OpenAI's format.
type ChatResult struct {
	Body   []byte // the chat.completion JSON the client receives
	Model  string // the model the provider says served it
	Usage  openai.Usage
	Output json.RawMessage // the assistant message, for capture
}

// EmbedResult is an embeddings response in OpenAI's format.
type EmbedResult struct {
	Body  []byte
	Model string
	Usage openai.Usage
}

// Chunk is one streamed chat.completion.chunk.
type Chunk struct {
	Data  []byte // the chunk's JSON, as the client receives it
	Model string
	Usage *openai.Usage // set on the final usage chunk
	Text  string        // the content delta, for capture
	// ToolCalls are the tool call deltas, for capture.
	ToolCalls []openai.ToolCall
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

// BufferedStream is a ChunkStream that can tell whether more of the stream has already
// arrived: the gateway then writes the next chunk before flushing, saving a write per chunk
// without ever holding back a chunk that is waiting on the provider.
type BufferedStream interface {
	Buffered() bool
}
