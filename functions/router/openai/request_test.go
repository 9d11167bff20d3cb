package openai

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

var requestSeeds = []string{
	chatBody,
	`{"model":"gpt","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":[{"type":"text","text":"What is in this image?"},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}],"max_tokens":10,"top_p":0.5,"stop":["\n"],"user":"u-1"}`,
	`{"model":"gpt","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","tool_call_id":"call_1","content":"42","name":"f"}],"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object"}}}],"tool_choice":"auto"}`,
	`{"model":"text-embedding-3-small","input":["a","b"],"encoding_format":"float"}`,
	` { "model" : "gpt" , "messages" : [ { "role" : "user" , "content" : "Hi \u00e9 <b>" } ] , "x" : { "nested" : [1, 2.5e3, null, true] } } `,
	`{"model":"gpt","Model":"other","messages":[]}`,
	`{"model":"gpt","model":"other","messages":[{"role":"user","content":"x"}]}`,
	`{"model":"gpt","messages":[{"role":"user","content":"x","Role":"system"}]}`,
	`{"model":"gpt","messages":[{"role":"user","role":"system","content":"x"}]}`,
	`{"model":5,"messages":[{"role":"user","content":"x"}]}`,
	`{"model":"gpt","messages":[null]}`,
	`{"model":"gpt","messages":null,"temperature":null,"stream":null}`,
	`{"mod\u0065l":"gpt","messages":[{"role":"user","content":"x"}]}`,
	`{"model":"gpt","messages":[{"role":"user","content":"x"}]}]`,
	`[1,2]`,
	`{"model":"gpt","max_tokens":1.5,"messages":[{"role":"user","content":"x"}]}`,
	"{\"model\":\"g\xffpt\",\"messages\":[{\"role\":\"us\xfeer\",\"content\":\"x\"}]}",
}

// The requests clients normally send are read in place, without encoding/json.
func TestCommonRequestsAreReadInPlace(t *testing.T) {
	for i, seed := range requestSeeds[:5] {
		var v any = &ChatRequest{}
		if i == 3 {
			v = &EmbeddingRequest{}
		}
		m, ok := scanMembers([]byte(seed))
		if !ok || !decodeMembers(m, v) {
			t.Errorf("not read in place: %s", seed)
		}
	}
}

// Whatever a client sends, decodeRequest reads it as encoding/json does: the same fields and
// raw members when that succeeds, the same error when it fails.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast, slow ChatRequest
		errFast, errSlow := decodeRequest(body, &fast, &fast.raw), decodeRequestSlowly(body, &slow, &slow.raw)
		if fmt.Sprint(errFast) != fmt.Sprint(errSlow) {
			t.Fatalf("chat: error %v, encoding/json's %v", errFast, errSlow)
		}
		if errFast == nil && !reflect.DeepEqual(fast, slow) {
			t.Fatalf("chat: read %+v, encoding/json %+v", fast, slow)
		}
		var fastE, slowE EmbeddingRequest
		errFast, errSlow = decodeRequest(body, &fastE, &fastE.raw), decodeRequestSlowly(body, &slowE, &slowE.raw)
		if fmt.Sprint(errFast) != fmt.Sprint(errSlow) {
			t.Fatalf("embeddings: error %v, encoding/json's %v", errFast, errSlow)
		}
		if errFast == nil && !reflect.DeepEqual(fastE, slowE) {
			t.Fatalf("embeddings: read %+v, encoding/json %+v", fastE, slowE)
		}
		if errFast != nil {
			return
		}
		// Forwarded, the request is the client's object with router's fields replaced.
		out, err := withFields(fast.raw, map[string]any{"model": "served", "stream": nil, "stream_options": StreamOptions{IncludeUsage: true}})
		if err != nil {
			t.Fatal(err)
		}
		var got, want map[string]any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("forwarded body %q: %v", out, err)
		}
		if _ = json.Unmarshal(body, &want); want == nil { // the body null
			want = map[string]any{}
		}
		want["model"], want["stream_options"] = "served", map[string]any{"include_usage": true}
		delete(want, "stream")
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("forwarded %s, want %v", out, want)
		}
	})
}

// Reading and forwarding a chat request with a long conversation, beside encoding/json doing
// the same (the reference) in the same run.
func BenchmarkChatRequest(b *testing.B) {
	for _, n := range []int{256, 32 << 10} {
		body := []byte(fmt.Sprintf(`{"model":"gpt","stream":true,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":%q}],"temperature":0.2}`,
			strings.Repeat("Lorem ipsum dolor sit amet.\n", n/28+1)))
		forward := map[string]any{"model": "x", "stream": true, "stream_options": StreamOptions{IncludeUsage: true}}
		b.Run(fmt.Sprintf("in-place/%dB", len(body)), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				r, err := ParseChatRequest(body)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := withFields(r.raw, forward); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("encoding-json/%dB", len(body)), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				var r ChatRequest
				if err := decodeRequestSlowly(body, &r, &r.raw); err != nil {
					b.Fatal(err)
				}
				out := make(map[string]json.RawMessage, len(r.raw)+len(forward))
				for k, v := range r.raw {
					out[k] = v
				}
				for k, v := range forward {
					out[k], _ = json.Marshal(v)
				}
				if _, err := json.Marshal(out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A request of countless empty messages is refused before it is decoded into as many structs;
// a long prompt full of commas is not such a request.
func TestRequestWithCountlessValuesIsRefused(t *testing.T) {
	empties := `{"model":"gpt","messages":[` + strings.Repeat(`{},`, maxRequestValues) + `{}]}`
	nulls := `{"model":"gpt","messages":[{"role":"user","content":"x"}],"messages":[` + strings.Repeat(`null,`, maxRequestValues) + `null]}`
	for name, body := range map[string]string{"empty messages": empties, "null messages, read by encoding/json": nulls} {
		_, err := ParseChatRequest([]byte(body))
		var e *APIError
		if !errors.As(err, &e) || e.Status != 400 || !strings.Contains(e.Message, "more than 200000 values") {
			t.Errorf("%s: %v", name, err)
		}
	}
	prose := `{"model":"gpt","messages":[{"role":"user","content":"` + strings.Repeat("one, two, three, ", maxRequestValues/2) + `"}]}`
	if r, err := ParseChatRequest([]byte(prose)); err != nil || len(r.Messages) != 1 {
		t.Errorf("a long prompt: %v", err)
	}
	if _, err := ParseChatRequest([]byte(prose[:len(prose)-10])); err == nil || strings.Contains(err.Error(), "values") {
		t.Errorf("a truncated long prompt is a syntax error, not too many values: %v", err)
	}
}
