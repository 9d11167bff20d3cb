package openai

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// Chunks as providers stream them: OpenAI, Azure (an empty choices list first), vLLM and Ollama
// (escaped non-ASCII text), a usage chunk.
var chunkSeeds = []string{
	`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1764410400,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}`,
	`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1764410400,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hello \"there\"\n\u00e9\ud83d\ude00"},"finish_reason":null}]}`,
	`{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}`,
	`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":14,"completion_tokens":6,"total_tokens":20,"prompt_tokens_details":{"cached_tokens":0}}}`,
	`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":1,"delta":{"content":"b"}},{"index":0,"delta":{"content":"a"}}]}`,
	`{"id":"c","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}}]}`,
	`{"model":"m","Model":"n","choices":[{"index":0,"delta":{"content":"x"}}]}`,
	`{"model":"m","choices":[{"index":0,"delta":{"content":"x","content":"y"}}]}`,
	`{"model":"m","choices":[{"index":0,"delta":{"content":null,"tool_calls":null}}],"usage":null}`,
	`{"model":"m","choices":[{"index":0.5,"delta":{"content":"x"}}]}`,
	`{"model":"m","choices":[null]}`,
	`{"model":"m","choices":[{"index":0,"delta":{"content":"x"}}]} trailing`,
	"{\"model\":\"m\xff\",\"choices\":[{\"Delta\":{\"content\":\"x\"}}]}",
}

// Answers as providers send them: a completion with a tool call, an embeddings answer.
var answerSeeds = []string{
	openAICompletion,
	`{"id":"chatcmpl-2","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}`,
	`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023064255,-0.009327292,1e-7]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}`,
}

// The chunks and answers providers normally send are read in place, without encoding/json.
func TestCommonRepliesAreReadInPlace(t *testing.T) {
	for _, seed := range append(chunkSeeds[:5:5], answerSeeds...) {
		if _, ok := scanReply([]byte(seed)); !ok {
			t.Errorf("not read in place: %s", seed)
		}
	}
	r, _ := scanReply([]byte(chunkSeeds[1]))
	if r.Model != "gpt-4o" || len(r.Choices) != 1 || r.Choices[0].Delta.Content != "Hello \"there\"\n\u00e9\U0001F600" {
		t.Errorf("read %+v", r)
	}
	r, _ = scanReply([]byte(chunkSeeds[3]))
	if len(r.Choices) != 0 || r.Usage == nil || *r.Usage != (Usage{PromptTokens: 14, CompletionTokens: 6, TotalTokens: 20}) {
		t.Errorf("read %+v", r)
	}
	r, _ = scanReply([]byte(answerSeeds[1]))
	if len(r.Choices) != 1 || !strings.Contains(string(r.Choices[0].Message), "call_1") || r.Usage.TotalTokens != 11 {
		t.Errorf("read %+v", r)
	}
}

// Whatever a provider sends, ReadReply reads it as encoding/json reads it into Reply:
// the same fields when that succeeds, an error when it fails.
func FuzzReadReply(f *testing.F) {
	for _, s := range append(chunkSeeds, answerSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want Reply
		slowErr := json.Unmarshal(data, &want)
		got, err := ReadReply(data)
		if (err != nil) != (slowErr != nil) {
			t.Fatalf("ReadReply error %v, encoding/json %v", err, slowErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("read %+v, encoding/json %+v", got, want)
		}
	})
}

// Reading a typical content chunk in place, beside encoding/json reading it into Reply.
func BenchmarkReadReply(b *testing.B) {
	data := []byte(chunkSeeds[1])
	b.Run("in-place", func(b *testing.B) {
		for b.Loop() {
			if _, ok := scanReply(data); !ok {
				b.Fatal("not read in place")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			var r Reply
			if err := json.Unmarshal(data, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
