package router

import (
	"bytes"
	"io"
	"net/http"
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
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", srv.URL+PathChat, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+k.llm)
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
