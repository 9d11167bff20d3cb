package openai

// A chat request and a completion as clients and providers send them (the HTTP API's tests use
// the same two).
const (
	chatBody = `{"model":"gpt","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"temperature":0.2}`

	openAICompletion = `{"id":"chatcmpl-1","object":"chat.completion","created":1764410400,"model":"gpt-4o-2024-08-06",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"logprobs":null,"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}`
)
