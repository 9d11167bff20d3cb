package router

import (
	"encoding/json"
	"reflect"
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

// The chunks providers normally send are read in place, without encoding/json.
func TestCommonChunksTakeTheFastPath(t *testing.T) {
	for _, seed := range chunkSeeds[:5] {
		if _, ok := scanChunk([]byte(seed)); !ok {
			t.Errorf("not read in place: %s", seed)
		}
	}
	c, _ := scanChunk([]byte(chunkSeeds[1]))
	if c.Model != "gpt-4o" || c.Choices != 1 || c.Content != "Hello \"there\"\n\u00e9\U0001F600" {
		t.Errorf("read %+v", c)
	}
	c, _ = scanChunk([]byte(chunkSeeds[3]))
	if c.Choices != 0 || c.Usage == nil || *c.Usage != (Usage{PromptTokens: 14, CompletionTokens: 6, TotalTokens: 20}) {
		t.Errorf("read %+v", c)
	}
	c, _ = scanChunk([]byte(chunkSeeds[4]))
	if c.Choices != 2 || c.Index != 1 || c.Content != "b" {
		t.Errorf("read %+v", c)
	}
}

// Whatever a provider streams, readChunk reads it as encoding/json reads it into openAIReply:
// the same fields when that succeeds, an error when it fails.
func FuzzReadChunk(f *testing.F) {
	for _, s := range chunkSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r openAIReply
		slowErr := json.Unmarshal(data, &r)
		got, err := readChunk(data)
		if (err != nil) != (slowErr != nil) {
			t.Fatalf("readChunk error %v, encoding/json %v", err, slowErr)
		}
		if err != nil {
			return
		}
		want := streamChunk{Model: r.Model, Usage: r.Usage, Choices: len(r.Choices)}
		if len(r.Choices) > 0 {
			want.Index, want.Content, want.ToolCalls = r.Choices[0].Index, r.Choices[0].Delta.Content, r.Choices[0].Delta.ToolCalls
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("read %+v, encoding/json %+v", got, want)
		}
	})
}

// Reading a typical content chunk in place, beside encoding/json reading it into openAIReply.
func BenchmarkReadChunk(b *testing.B) {
	data := []byte(chunkSeeds[1])
	b.Run("in-place", func(b *testing.B) {
		for b.Loop() {
			if _, ok := scanChunk(data); !ok {
				b.Fatal("not read in place")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			var r openAIReply
			if err := json.Unmarshal(data, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
