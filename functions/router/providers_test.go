package router

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/trustplane/trustplane/functions/router/openai"
	"github.com/trustplane/trustplane/functions/router/providers"
)

func singleRoute(typ, url, extra string) string {
	return fmt.Sprintf(`
providers:
  - {name: p, type: %s, base_url: %q, api_key_env: PROVIDER_KEY%s}
models:
  - name: gpt
    targets: [{provider: p, model: upstream-model}]
prices:
  upstream-model: {input_per_mtok: 1, output_per_mtok: 2}
retry: {max_attempts: 2, base_backoff: 1ms}
`, typ, url, extra)
}

// readStream reads a client-side SSE answer into its data payloads.
func readStream(t *testing.T, body []byte) []string {
	t.Helper()
	r := providers.NewSSEReader(bytes.NewReader(body))
	var out []string
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(ev.Data))
	}
}

func TestOpenAIChatIsForwardedAndRecorded(t *testing.T) {
	up := newUpstream(t, reply(200, openAICompletion))
	f := newFixture(t, singleRoute("openai", up.URL+"/v1", ""), Options{Capture: Capture{Mode: CaptureFull}})
	resp, body := f.do(t, "POST", PathChat, f.keys.llm, chatBody)
	if resp.StatusCode != 200 || string(body) != openAICompletion {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
	got := up.request(0)
	if got.path != "/v1/chat/completions" || got.header.Get("Authorization") != "Bearer test-key" {
		t.Errorf("upstream saw %s with Authorization %q", got.path, got.header.Get("Authorization"))
	}
	var sent map[string]any
	_ = json.Unmarshal(got.body, &sent)
	if sent["model"] != "upstream-model" || sent["temperature"] != 0.2 || sent["stream"] != nil {
		t.Errorf("upstream body %s", got.body)
	}
	c := f.calls(t, 1)[resp.Header.Get(HeaderCallID)]
	if c.Status != "success" || c.StatusCode != 200 || c.Provider != "p" || c.ModelRequested != "gpt" || c.ModelServed != "gpt-4o-2024-08-06" ||
		c.Usage.TotalTokens != 11 || len(c.Attempts) != 1 || c.Latency.ProviderMs <= 0 || c.Latency.TotalMs < c.Latency.ProviderMs {
		t.Errorf("recorded %+v", c)
	}
	// Priced by the target's model: 9 tokens at $1/M in, 2 at $2/M out.
	if want := 9e-6 + 4e-6; c.Cost.Total < want*0.999 || c.Cost.Total > want*1.001 {
		t.Errorf("cost %v, want %v", c.Cost.Total, want)
	}
	if !strings.Contains(string(c.Input), "Be brief.") || !strings.Contains(string(c.Output), "Hello there") || c.Capture != "full" {
		t.Errorf("capture: input %s output %s", c.Input, c.Output)
	}
}

func TestOpenAIStreamPassesChunksThroughWithUsage(t *testing.T) {
	chunks := []string{
		`{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}`,
		`{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}],"usage":null}`,
		`{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}],"usage":null}`,
		`{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}`,
		`{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}`,
	}
	var events []string
	for _, c := range chunks {
		events = append(events, "data: "+c)
	}
	up := newUpstream(t, sse(append(events, "data: [DONE]")...))
	f := newFixture(t, singleRoute("openai-compatible", up.URL+"/v1", ""), Options{})
	resp, body := f.do(t, "POST", PathChat, f.keys.llm, `{"model":"gpt","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hi"}]}`)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	got := readStream(t, body)
	if want := append(chunks, "[DONE]"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("client got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var sent struct {
		Stream        bool                  `json:"stream"`
		StreamOptions *openai.StreamOptions `json:"stream_options"`
	}
	_ = json.Unmarshal(up.request(0).body, &sent)
	if !sent.Stream || sent.StreamOptions == nil || !sent.StreamOptions.IncludeUsage {
		t.Errorf("upstream body %s: usage must be asked for", up.request(0).body)
	}
	c := f.calls(t, 1)[resp.Header.Get(HeaderCallID)]
	if c.Status != "success" || !c.Stream || c.Usage.CompletionTokens != 2 || c.Latency.TTFTMs <= 0 || !strings.Contains(string(c.Output), "Hello") {
		t.Errorf("recorded %+v output %s", c, c.Output)
	}
}

func TestAzureUsesDeploymentURLAndAPIKeyHeader(t *testing.T) {
	up := newUpstream(t, reply(200, openAICompletion), reply(200, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5]}],"model":"ada","usage":{"prompt_tokens":3,"total_tokens":3}}`))
	f := newFixture(t, singleRoute("azure", up.URL, ", api_version: 2024-10-21"), Options{})
	if resp, body := f.do(t, "POST", PathChat, f.keys.llm, chatBody); resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	got := up.request(0)
	if got.path != "/openai/deployments/upstream-model/chat/completions" || got.query != "api-version=2024-10-21" ||
		got.header.Get("Api-Key") != "test-key" || got.header.Get("Authorization") != "" {
		t.Errorf("upstream saw %s?%s api-key %q authorization %q", got.path, got.query, got.header.Get("Api-Key"), got.header.Get("Authorization"))
	}
	resp, body := f.do(t, "POST", PathEmbeddings, f.keys.llm, `{"model":"gpt","input":"hello"}`)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"embedding":[0.5]`) || up.request(1).path != "/openai/deployments/upstream-model/embeddings" {
		t.Errorf("embeddings: %d %s via %s", resp.StatusCode, body, up.request(1).path)
	}
	calls := f.calls(t, 2)
	if c := calls[resp.Header.Get(HeaderCallID)]; c.Endpoint != "embeddings" || c.Usage.PromptTokens != 3 {
		t.Errorf("embeddings call recorded as %+v", c)
	}
}

const toolRequest = `{"model":"gpt","max_tokens":300,"stop":"END","tool_choice":"required","messages":[
 {"role":"system","content":"You are a weather bot."},
 {"role":"user","content":[{"type":"text","text":"Weather in Paris?"}]},
 {"role":"assistant","content":null,"tool_calls":[{"id":"toolu_0","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
 {"role":"tool","tool_call_id":"toolu_0","content":"18C"},
 {"role":"user","content":"And tomorrow?"}],
 "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}`

func TestAnthropicTranslatesRequestAndResponse(t *testing.T) {
	up := newUpstream(t, reply(200, `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5",
		"content":[{"type":"text","text":"Checking."},{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris","day":"tomorrow"}}],
		"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":50,"output_tokens":20,"cache_read_input_tokens":10}}`))
	f := newFixture(t, singleRoute("anthropic", up.URL, ""), Options{})
	resp, body := f.do(t, "POST", PathChat, f.keys.llm, toolRequest)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	got := up.request(0)
	if got.path != "/v1/messages" || got.header.Get("X-Api-Key") != "test-key" || got.header.Get("Anthropic-Version") != "2023-06-01" {
		t.Errorf("upstream saw %s, x-api-key %q, version %q", got.path, got.header.Get("X-Api-Key"), got.header.Get("Anthropic-Version"))
	}
	want := `{"model":"upstream-model","system":"You are a weather bot.","messages":[` +
		`{"role":"user","content":[{"type":"text","text":"Weather in Paris?"}]},` +
		`{"role":"assistant","content":[{"type":"tool_use","id":"toolu_0","name":"get_weather","input":{"city":"Paris"}}]},` +
		`{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_0","content":"18C"},{"type":"text","text":"And tomorrow?"}]}],` +
		`"max_tokens":300,"stop_sequences":["END"],` +
		`"tools":[{"name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],` +
		`"tool_choice":{"type":"any"}}`
	if string(got.body) != want {
		t.Errorf("anthropic request\n%s\nwant\n%s", got.body, want)
	}
	var out openai.ChatResponse
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	m := out.Choices[0].Message
	if out.Object != "chat.completion" || out.Model != "claude-sonnet-4-5" || *out.Choices[0].FinishReason != "tool_calls" ||
		string(m.Content) != `"Checking."` || len(m.ToolCalls) != 1 || m.ToolCalls[0].ID != "toolu_1" ||
		m.ToolCalls[0].Function.Arguments != `{"city":"Paris","day":"tomorrow"}` ||
		out.Usage.PromptTokens != 60 || out.Usage.CompletionTokens != 20 || out.Usage.TotalTokens != 80 {
		t.Errorf("translated response %s", body)
	}
}

func anthropicEvent(name, data string) string { return "event: " + name + "\ndata: " + data }

func TestAnthropicStreamIsTranslatedToChunks(t *testing.T) {
	up := newUpstream(t, sse(
		anthropicEvent("message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}`),
		anthropicEvent("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`),
		anthropicEvent("ping", `{"type": "ping"}`),
		anthropicEvent("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me check"}}`),
		anthropicEvent("content_block_stop", `{"type":"content_block_stop","index":0}`),
		anthropicEvent("content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}}`),
		anthropicEvent("content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": "}}`),
		anthropicEvent("content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"Paris\"}"}}`),
		anthropicEvent("content_block_stop", `{"type":"content_block_stop","index":1}`),
		anthropicEvent("message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":40}}`),
		anthropicEvent("message_stop", `{"type":"message_stop"}`),
	))
	f := newFixture(t, singleRoute("anthropic", up.URL, ""), Options{})
	resp, body := f.do(t, "POST", PathChat, f.keys.llm, `{"model":"gpt","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Weather?"}]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if !strings.Contains(string(up.request(0).body), `"stream":true`) {
		t.Errorf("upstream request %s is not streaming", up.request(0).body)
	}
	data := readStream(t, body)
	if len(data) != 8 || data[len(data)-1] != "[DONE]" {
		t.Fatalf("got %d events:\n%s", len(data), strings.Join(data, "\n"))
	}
	var chunks []openai.ChatResponse
	for _, d := range data[:len(data)-1] {
		var c openai.ChatResponse
		if err := json.Unmarshal([]byte(d), &c); err != nil || c.Object != "chat.completion.chunk" || c.ID != "msg_1" || c.Model != "claude-sonnet-4-5" {
			t.Fatalf("chunk %s: %v", d, err)
		}
		chunks = append(chunks, c)
	}
	delta := func(i int) *openai.Message { return chunks[i].Choices[0].Delta }
	if delta(0).Role != "assistant" || string(delta(1).Content) != `"Let me check"` {
		t.Errorf("text chunks: %s / %s", data[0], data[1])
	}
	if tc := delta(2).ToolCalls; len(tc) != 1 || *tc[0].Index != 0 || tc[0].ID != "toolu_1" || tc[0].Function.Name != "get_weather" {
		t.Errorf("tool call start: %s", data[2])
	}
	if a, b := delta(3).ToolCalls[0].Function.Arguments, delta(4).ToolCalls[0].Function.Arguments; a+b != `{"city": "Paris"}` {
		t.Errorf("tool arguments %q + %q", a, b)
	}
	if fr := chunks[5].Choices[0].FinishReason; fr == nil || *fr != "tool_calls" {
		t.Errorf("finish chunk %s", data[5])
	}
	if u := chunks[6].Usage; len(chunks[6].Choices) != 0 || u == nil || u.PromptTokens != 25 || u.CompletionTokens != 40 || u.TotalTokens != 65 {
		t.Errorf("usage chunk %s", data[6])
	}
	if c := f.calls(t, 1)[resp.Header.Get(HeaderCallID)]; c.Usage.TotalTokens != 65 || c.ModelServed != "claude-sonnet-4-5" {
		t.Errorf("recorded %+v", c)
	}
}

func TestProviderErrorsInOpenAIFormat(t *testing.T) {
	cases := []struct {
		name, typ  string
		upstream   http.HandlerFunc
		wantStatus int
		wantText   string
		wantTries  int
	}{
		{"openai bad request is not retried", "openai", reply(400, `{"error":{"message":"Invalid 'messages'","type":"invalid_request_error","param":"messages","code":null}}`),
			400, "Invalid 'messages'", 1},
		{"anthropic bad request", "anthropic", reply(400, `{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too large"}}`),
			400, "max_tokens: too large", 1},
		{"anthropic 429 with Retry-After", "anthropic", reply(429, `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`, "Retry-After", "30"),
			429, "slow down", 1},
		{"openai 500 retried then 502", "openai", reply(500, `{"error":{"message":"boom","type":"server_error"}}`), 502, "boom", 2},
		{"anthropic overloaded", "anthropic", reply(529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`), 502, "Overloaded", 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := newUpstream(t, c.upstream)
			f := newFixture(t, singleRoute(c.typ, up.URL, ""), Options{})
			resp, body := f.do(t, "POST", PathChat, f.keys.llm, chatBody)
			var e errorBody
			if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != c.wantStatus || !strings.Contains(e.Error.Message, c.wantText) || e.Error.Type == "" {
				t.Errorf("status %d body %s", resp.StatusCode, body)
			}
			if up.count() != c.wantTries {
				t.Errorf("%d upstream requests, want %d", up.count(), c.wantTries)
			}
			if c.wantStatus == 429 && resp.Header.Get("Retry-After") != "30" {
				t.Errorf("Retry-After %q, want the provider's 30", resp.Header.Get("Retry-After"))
			}
			rec := f.calls(t, 1)[resp.Header.Get(HeaderCallID)]
			if rec.Status != "error" || rec.StatusCode != c.wantStatus || len(rec.Attempts) != c.wantTries || rec.Attempts[0].Status != "error" {
				t.Errorf("recorded %+v", rec)
			}
		})
	}
}

func TestProviderRejectingRoutersKeyIsNotEchoedToTheClient(t *testing.T) {
	// OpenAI's 401 quotes the key it was sent (masked, or whole when it is short): that is
	// router's provider key, and the client's own key is not at fault.
	up := newUpstream(t, reply(401, `{"error":{"message":"Incorrect API key provided: test-key. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`))
	f := newFixture(t, singleRoute("openai", up.URL, ""), Options{})
	resp, body := f.do(t, "POST", PathChat, f.keys.llm, chatBody)
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != http.StatusBadGateway || e.Error.Type != openai.TypeServer {
		t.Errorf("status %d body %s, want 502 server_error", resp.StatusCode, body)
	}
	if strings.Contains(string(body), "test-key") {
		t.Errorf("the provider key reached the client: %s", body)
	}
	rec := f.calls(t, 1)[resp.Header.Get(HeaderCallID)]
	if rec.Status != "error" || rec.StatusCode != http.StatusBadGateway || strings.Contains(rec.Error, "test-key") ||
		len(rec.Attempts) != 1 || rec.Attempts[0].StatusCode != 401 || strings.Contains(rec.Attempts[0].Error, "test-key") {
		t.Errorf("recorded %+v", rec)
	}
}

func TestAnthropicTreatsNullStopAndToolChoiceAsAbsent(t *testing.T) {
	// OpenAI's stop is nullable, and clients send null for fields they leave unset.
	up := newUpstream(t, reply(200, `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5",
		"content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}`))
	f := newFixture(t, singleRoute("anthropic", up.URL, ""), Options{})
	resp, body := f.do(t, "POST", PathChat, f.keys.llm, `{"model":"gpt","messages":[{"role":"user","content":"Hi"}],"stop":null,"tool_choice":null}`)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if sent := string(up.request(0).body); strings.Contains(sent, "stop_sequences") || strings.Contains(sent, "tool_choice") {
		t.Errorf("anthropic request %s", sent)
	}
	f.calls(t, 1)
}
