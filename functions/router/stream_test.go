package router

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/functions/router/openai"
)

// rawSSE answers with a text/event-stream body written exactly as given.
func rawSSE(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, body)
	}
}

const streamRequest = `{"model":"gpt","stream":true,"messages":[{"role":"user","content":"Hi"}]}`

// Servers frame events in every way the SSE spec allows; whatever the framing, the client
// receives each chunk as one valid JSON data line.
func TestSSEFramingCornerCasesReachTheClientAsValidChunks(t *testing.T) {
	chunk := `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}`
	long := strings.Replace(chunk, `"a"`, `"`+strings.Repeat("x", 100<<10)+`"`, 1)
	cases := map[string]string{
		"CRLF line endings":       "data: " + chunk + "\r\n\r\ndata: [DONE]\r\n\r\n",
		"data without a space":    "data:" + chunk + "\n\ndata:[DONE]\n\n",
		"data over several lines": "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\ndata: \"created\":1,\"model\":\"m\",\r\ndata: \"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":null}]}\n\ndata: [DONE]\n\n",
		"comments, event, id":     ": keep-alive\n\nevent: message\n: x\ndata: " + chunk + "\nid: 5\nretry: 100\n\n: ping\n\ndata: [DONE]",
		"line beyond the buffer":  "data: " + long + "\n\ndata: [DONE]\n\n",
		"[DONE] twice":            "data: " + chunk + "\n\ndata: [DONE]\n\ndata: [DONE]\n\n",
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			up := newUpstream(t, rawSSE(body))
			f := newFixture(t, singleRoute("openai-compatible", up.URL, ""), Options{})
			resp, got := f.do(t, "POST", PathChat, f.keys.llm, streamRequest)
			data := readStream(t, got)
			if resp.StatusCode != 200 || len(data) != 2 || data[1] != "[DONE]" {
				t.Fatalf("status %d, %d events: %.300q", resp.StatusCode, len(data), data)
			}
			var c openai.ChatResponse
			if err := json.Unmarshal([]byte(data[0]), &c); err != nil || len(c.Choices) != 1 || c.ID != "c" {
				t.Errorf("chunk %.300q: %v", data[0], err)
			}
			if rec := f.calls(t, 1)[resp.Header.Get(HeaderCallID)]; rec.Status != "success" {
				t.Errorf("recorded %+v", rec)
			}
		})
	}
}

// Router asks every provider for usage to count tokens, but like OpenAI it sends the usage
// chunk (no choices) only to a client that asked for it: clients reading choices[0] of every
// chunk would fail on it.
func TestUsageChunkReachesOnlyClientsThatAskedForIt(t *testing.T) {
	openAI := rawSSE("data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n" +
		"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":1,\"total_tokens\":8}}\n\ndata: [DONE]\n\n")
	anthropic := sse(
		anthropicEvent("message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude","usage":{"input_tokens":7,"output_tokens":1}}}`),
		anthropicEvent("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}`),
		anthropicEvent("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":1}}`),
		anthropicEvent("message_stop", `{"type":"message_stop"}`))
	for _, p := range []struct {
		typ string
		h   http.HandlerFunc
	}{{"openai-compatible", openAI}, {"anthropic", anthropic}} {
		for _, ask := range []bool{false, true} {
			up := newUpstream(t, p.h)
			f := newFixture(t, singleRoute(p.typ, up.URL, ""), Options{})
			req := streamRequest
			if ask {
				req = strings.Replace(req, `"stream":true`, `"stream":true,"stream_options":{"include_usage":true}`, 1)
			}
			resp, body := f.do(t, "POST", PathChat, f.keys.llm, req)
			usageChunks := 0
			for _, d := range readStream(t, body) {
				var c openai.ChatResponse
				if d != "[DONE]" && json.Unmarshal([]byte(d), &c) == nil && len(c.Choices) == 0 {
					usageChunks++
					if c.Usage == nil || c.Usage.TotalTokens != 8 {
						t.Errorf("%s: usage chunk %s", p.typ, d)
					}
				}
			}
			if want := map[bool]int{false: 0, true: 1}[ask]; resp.StatusCode != 200 || usageChunks != want {
				t.Errorf("%s, include_usage %v: status %d, %d usage chunks, want %d:\n%s", p.typ, ask, resp.StatusCode, usageChunks, want, body)
			}
			// Either way the call is counted with the provider's usage.
			if rec := f.calls(t, 1)[resp.Header.Get(HeaderCallID)]; rec.Status != "success" || rec.Usage.TotalTokens != 8 {
				t.Errorf("%s: recorded %+v", p.typ, rec)
			}
		}
	}
}

// A streamed answer that calls tools is captured with its tool calls, put together from their
// deltas, as a non-streamed one is.
func TestStreamedToolCallsAreCaptured(t *testing.T) {
	head := `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":`
	openAI := sse(
		"data: "+head+`{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}`,
		"data: "+head+`{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"finish_reason":null}]}`,
		"data: "+head+`{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null}]}`,
		"data: "+head+`{},"finish_reason":"tool_calls"}]}`,
		"data: [DONE]")
	anthropic := sse(
		anthropicEvent("message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude","usage":{"input_tokens":7,"output_tokens":1}}}`),
		anthropicEvent("ping", `{"type": "ping"}`),
		anthropicEvent("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"call_1","name":"get_weather","input":{}}}`),
		anthropicEvent("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"city\":"}}`),
		anthropicEvent("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"\"Paris\"}"}}`),
		anthropicEvent("content_block_stop", `{"type":"content_block_stop","index":0}`),
		anthropicEvent("message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}`),
		anthropicEvent("message_stop", `{"type":"message_stop"}`))
	for _, p := range []struct {
		typ string
		h   http.HandlerFunc
	}{{"openai-compatible", openAI}, {"anthropic", anthropic}} {
		up := newUpstream(t, p.h)
		f := newFixture(t, singleRoute(p.typ, up.URL, ""), Options{Capture: Capture{Mode: CaptureFull}})
		resp, body := f.do(t, "POST", PathChat, f.keys.llm, streamRequest)
		if resp.StatusCode != 200 || !strings.Contains(string(body), "[DONE]") {
			t.Fatalf("%s: status %d: %s", p.typ, resp.StatusCode, body)
		}
		rec := f.calls(t, 1)[resp.Header.Get(HeaderCallID)]
		var out openai.Message
		if err := json.Unmarshal(rec.Output, &out); err != nil || out.Role != "assistant" || len(out.ToolCalls) != 1 ||
			out.ToolCalls[0].ID != "call_1" || out.ToolCalls[0].Function.Name != "get_weather" || out.ToolCalls[0].Function.Arguments != `{"city":"Paris"}` {
			t.Errorf("%s: captured output %s: %v", p.typ, rec.Output, err)
		}
	}
}

// With n > 1 the chunks of the choices are interleaved; capture keeps the first choice, as it
// does for a non-streamed answer.
func TestStreamedChoicesBeyondTheFirstAreNotMixedIntoTheCapture(t *testing.T) {
	delta := func(i int, s string) string {
		return `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":` + string(rune('0'+i)) + `,"delta":{"content":"` + s + `"},"finish_reason":null}]}`
	}
	up := newUpstream(t, sse(delta(0, "Hel"), delta(1, "Wor"), delta(0, "lo"), delta(1, "ld"), "data: [DONE]"))
	f := newFixture(t, singleRoute("openai-compatible", up.URL, ""), Options{Capture: Capture{Mode: CaptureFull}})
	resp, body := f.do(t, "POST", PathChat, f.keys.llm, `{"model":"gpt","stream":true,"n":2,"messages":[{"role":"user","content":"Hi"}]}`)
	if data := readStream(t, body); resp.StatusCode != 200 || len(data) != 5 {
		t.Fatalf("status %d, every choice's chunks must reach the client: %s", resp.StatusCode, body)
	}
	if rec := f.calls(t, 1)[resp.Header.Get(HeaderCallID)]; string(rec.Output) != `{"role":"assistant","content":"Hello"}` {
		t.Errorf("captured output %s", rec.Output)
	}
}

// A provider ends its answer after the stream's last event, in a packet of its own. The client's
// stream ends at that last event, without waiting for it; router still reads the rest of the
// answer afterwards, so the provider's connection serves the next call.
func TestStreamEndsForTheClientAtTheLastEventAndKeepsTheConnection(t *testing.T) {
	openAILast := `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n"
	anthropicLast := anthropicEvent("message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude","usage":{"input_tokens":7,"output_tokens":1}}}`) + "\n\n" +
		anthropicEvent("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}`) + "\n\n" +
		anthropicEvent("message_stop", `{"type":"message_stop"}`) + "\n\n"
	for typ, last := range map[string]string{"openai-compatible": openAILast, "anthropic": anthropicLast} {
		t.Run(typ, func(t *testing.T) {
			release, held := make(chan struct{}), make(chan string, 2)
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = io.WriteString(w, last)
				w.(http.Flusher).Flush()
				select {
				case <-release:
					held <- r.RemoteAddr
				case <-r.Context().Done():
					held <- "cancelled"
				}
			}, func(w http.ResponseWriter, r *http.Request) {
				held <- r.RemoteAddr
				rawSSE(last)(w, r)
			})
			routingYAML := strings.Replace(singleRoute(typ, up.URL, ""), "model: upstream-model}", "model: upstream-model, timeout: 2s}", 1)
			f := newFixture(t, routingYAML, Options{})
			resp, body := f.do(t, "POST", PathChat, f.keys.llm, streamRequest)
			data := readStream(t, body)
			select {
			case got := <-held:
				t.Fatalf("the client's stream ended only after the provider's answer (%s)", got)
			default:
			}
			if resp.StatusCode != 200 || len(data) < 2 || data[len(data)-1] != "[DONE]" {
				t.Fatalf("status %d, events %q", resp.StatusCode, data)
			}
			close(release)
			first := <-held
			if c := f.calls(t, 1)[resp.Header.Get(HeaderCallID)]; c.Status != catalog.LLMCallSuccess {
				t.Errorf("recorded %+v", c)
			}
			if resp, _ := f.do(t, "POST", PathChat, f.keys.llm, streamRequest); resp.StatusCode != 200 {
				t.Fatalf("second call: %d", resp.StatusCode)
			}
			if second := <-held; second != first {
				t.Errorf("second call from %q, first from %q: the connection was not kept", second, first)
			}
		})
	}
}

// A provider that never ends its answer after the last event costs its connection, not the
// call's record: router stops waiting for the end (streamEndWait), well within the target's
// timeout, which here outlasts the test.
func TestStreamWhoseAnswerNeverEndsIsStillRecorded(t *testing.T) {
	cancelled := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}`+"\n\ndata: [DONE]\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(cancelled)
	})
	routingYAML := strings.Replace(singleRoute("openai-compatible", up.URL, ""), "model: upstream-model}", "model: upstream-model, timeout: 10m}", 1)
	f := newFixture(t, routingYAML, Options{})
	resp, body := f.do(t, "POST", PathChat, f.keys.llm, streamRequest)
	if data := readStream(t, body); resp.StatusCode != 200 || len(data) != 2 || data[1] != "[DONE]" {
		t.Fatalf("status %d, events %q", resp.StatusCode, data)
	}
	if c := f.calls(t, 1)[resp.Header.Get(HeaderCallID)]; c.Status != catalog.LLMCallSuccess || c.Usage.CompletionTokens == 0 {
		t.Errorf("recorded %+v", c)
	}
	<-cancelled // the upstream request was given up (a hang here fails the test at its timeout)
}
