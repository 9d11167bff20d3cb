package router

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
)

// BenchmarkChatThroughGateway is one non-streaming call through the gateway to an OpenAI
// upstream on loopback; make bench-router measures the overhead at fixed rates.
func BenchmarkChatThroughGateway(b *testing.B) {
	up := newUpstream(&testing.T{}, reply(200, openAICompletion))
	defer up.Close()
	k := newKeys(&testing.T{})
	_, srv := serve(&testing.T{}, k, singleRoute("openai-compatible", up.URL, ""), Options{})
	defer srv.Close()
	body := []byte(chatBody)
	postInParallel(b, srv.URL+PathChat, k.llm, body)
}

// BenchmarkStreamThroughGateway is one streamed call (seven chunks) through the gateway.
func BenchmarkStreamThroughGateway(b *testing.B) {
	var events []string
	for i := 0; i < 5; i++ {
		events = append(events, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"word "},"finish_reason":null}],"usage":null}`)
	}
	events = append(events, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}`, "data: [DONE]")
	up := newUpstream(&testing.T{}, sse(events...))
	var conns atomic.Int64
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	defer up.Close()
	k := newKeys(&testing.T{})
	_, srv := serve(&testing.T{}, k, singleRoute("openai-compatible", up.URL, ""), Options{})
	defer srv.Close()
	body := []byte(`{"model":"gpt","stream":true,"messages":[{"role":"user","content":"Hi"}]}`)
	postInParallel(b, srv.URL+PathChat, k.llm, body)
	b.ReportMetric(float64(conns.Load()), "upstream-conns")
}

// postInParallel posts body to url with key from parallel goroutines, b.N times in all; every
// answer must be 200.
func postInParallel(b *testing.B, url, key string, body []byte) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Error(resp.Status)
				return
			}
		}
	})
}
