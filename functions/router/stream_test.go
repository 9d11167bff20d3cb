package router

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
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
			var c ChatResponse
			if err := json.Unmarshal([]byte(data[0]), &c); err != nil || len(c.Choices) != 1 || c.ID != "c" {
				t.Errorf("chunk %.300q: %v", data[0], err)
			}
			if rec := f.calls(t, 1)[resp.Header.Get(HeaderCallID)]; rec.Status != "success" {
				t.Errorf("recorded %+v", rec)
			}
		})
	}
}
