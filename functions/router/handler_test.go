package router

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/functions/router/openai"
	"github.com/trustplane/trustplane/functions/router/providers"
	"github.com/trustplane/trustplane/functions/router/routing"
	"github.com/trustplane/trustplane/functions/router/routing/routingtest"
	"github.com/trustplane/trustplane/kafka"
	"github.com/trustplane/trustplane/kafka/kafkatest"
)

func TestBadInputGetsOpenAIErrors(t *testing.T) {
	f := newFixture(t, fmt.Sprintf(routingtest.MockRoute, "  key: {}"), Options{MaxRequestBytes: 2048})
	cases := []struct {
		name, key, ctype, body string
		status                 int
		errType, code, text    string
		recorded               bool
	}{
		{"no key", "", "application/json", chatBody, 401, "invalid_request_error", "invalid_api_key", "missing Authorization", false},
		{"key without llm scope", f.keys.ingestOnly, "application/json", chatBody, 403, "permission_error", "insufficient_scope", "scope", false},
		{"malformed JSON", f.keys.llm, "application/json", `{"model":"gpt",`, 400, "invalid_request_error", "", "not a JSON object", true},
		{"wrong field type", f.keys.llm, "application/json", `{"model":"gpt","messages":"hi"}`, 400, "invalid_request_error", "", "does not match", true},
		{"no messages", f.keys.llm, "application/json", `{"model":"gpt","messages":[]}`, 400, "invalid_request_error", "", "messages", true},
		{"bad role", f.keys.llm, "application/json", `{"model":"gpt","messages":[{"role":"wizard","content":"x"}]}`, 400, "invalid_request_error", "", "role", true},
		{"unknown model", f.keys.llm, "application/json", `{"model":"gpt-9","messages":[{"role":"user","content":"x"}]}`, 404, "invalid_request_error", "model_not_found", `"gpt-9" does not exist`, true},
		{"oversize body", f.keys.llm, "application/json", `{"model":"gpt","messages":[{"role":"user","content":"` + strings.Repeat("x", 4096) + `"}]}`, 413, "invalid_request_error", "request_too_large", "2048 bytes", true},
		{"not JSON", f.keys.llm, "text/plain", chatBody, 415, "invalid_request_error", "", "Content-Type", true},
	}
	recorded, ids := 0, []string{}
	for _, c := range cases {
		req, _ := http.NewRequest("POST", f.srv.URL+PathChat, strings.NewReader(c.body))
		req.Header.Set("Content-Type", c.ctype)
		if c.key != "" {
			req.Header.Set("Authorization", "Bearer "+c.key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e errorBody
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		code := ""
		if e.Error.Code != nil {
			code = *e.Error.Code
		}
		if err != nil || resp.StatusCode != c.status || e.Error.Type != c.errType || code != c.code || !strings.Contains(e.Error.Message, c.text) {
			t.Errorf("%s: status %d, error %+v (code %q), decode %v", c.name, resp.StatusCode, e.Error, code, err)
		}
		if c.recorded {
			recorded++
			ids = append(ids, resp.Header.Get(HeaderCallID))
		} else if id := resp.Header.Get(HeaderCallID); id != "" {
			t.Errorf("%s: the answer names call %s, which is not recorded", c.name, id)
		}
	}
	// Every call made with a valid key is recorded, refused ones too, under the id its answer gave.
	calls := f.calls(t, recorded)
	for _, id := range ids {
		if c, ok := calls[id]; !ok || c.Status != "invalid" || c.StatusCode < 400 || c.Error == "" {
			t.Errorf("call %q recorded %+v", id, c)
		}
	}
}

func TestModelsAndEmbeddingsEndpoints(t *testing.T) {
	k := newKeys(t)
	_, srv := serve(t, k, routing.MockConfig, Options{})
	resp, body := do(t, srv.URL, "GET", PathModels, k.llm, "")
	var list modelList
	if err := json.Unmarshal(body, &list); err != nil || resp.StatusCode != 200 || list.Object != "list" || len(list.Data) != 4 || list.Data[0].ID != "claude-sonnet" {
		t.Errorf("models: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, srv.URL, "GET", PathModels, "", ""); resp.StatusCode != 401 {
		t.Errorf("models without a key: %d", resp.StatusCode)
	}
	resp, body = do(t, srv.URL, "POST", PathEmbeddings, k.llm, `{"model":"text-embedding-3-small","input":["a","b"]}`)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"object":"embedding"`) {
		t.Errorf("embeddings: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, srv.URL, "POST", PathEmbeddings, k.llm, `{"model":"text-embedding-3-small"}`); resp.StatusCode != 400 || !strings.Contains(string(body), "input is required") {
		t.Errorf("embeddings without input: %d %s", resp.StatusCode, body)
	}
}

func TestClientDisconnectMidStreamCancelsUpstreamAndIsRecorded(t *testing.T) {
	cancelled := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte(`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"first"},"finish_reason":null}]}` + "\n\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the rest never comes; the gateway must cancel this request
		close(cancelled)
	})
	f := newFixture(t, singleRoute("openai-compatible", up.URL, ""), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", f.srv.URL+PathChat, strings.NewReader(`{"model":"gpt","stream":true,"messages":[{"role":"user","content":"Hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+f.keys.llm)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, "first") {
		t.Fatalf("first chunk: %q %v", line, err)
	}
	callID := resp.Header.Get(HeaderCallID)
	cancel()
	resp.Body.Close()
	// The cancellation crosses two loopback connections (66 ms at worst in a million calls on
	// the 2-core build machine under load); 10 s is far beyond it.
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request was not cancelled")
	}
	c := f.calls(t, 1)[callID]
	if c.Status != "cancelled" || c.StatusCode != 499 || !c.Stream || c.Latency.TTFTMs <= 0 || !strings.Contains(string(c.Output), "first") {
		t.Errorf("recorded %+v output %s", c, c.Output)
	}
}

func TestKafkaDownKeepsServingBuffersAndCountsDrops(t *testing.T) {
	broker := kafkatest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic := kafka.Topic{Name: "router-down", Partitions: 1, ReplicationFactor: 1}
	if err := kafka.EnsureTopics(ctx, broker.Addrs(), topic); err != nil {
		t.Fatal(err)
	}
	p, err := kafka.NewAsyncProducer(broker.Addrs(), kafka.WithTopic(topic.Name), kafka.WithAckTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	rec := NewRecorder(p, 5, 1, slog.New(slog.DiscardHandler), nil)
	k := newKeys(t)
	_, srv := serve(t, k, fmt.Sprintf(routingtest.MockRoute, "  key: {}"), Options{Recorder: rec})

	if err := broker.StopBroker(0); err != nil {
		t.Fatal(err)
	}
	const calls = 30
	for i := 0; i < calls; i++ {
		if resp, body := do(t, srv.URL, "POST", PathChat, k.llm, chatBody); resp.StatusCode != 200 {
			t.Fatalf("call %d while Kafka is down: %d %s", i, resp.StatusCode, body)
		}
	}
	// A call is recorded just after its answer goes out: wait for the last one (microseconds;
	// 10 s is only reached by a machine stalled that long).
	var st Stats
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st = rec.Stats()
		if st.Dropped+int64(st.Buffered) >= calls-1 || time.Now().After(deadline) {
			break
		}
	}
	if st.Dropped < calls-5-1 || st.Buffered > 5 || st.Produced != 0 {
		t.Fatalf("%+v: the buffer holds 5 (and one batch in flight), the rest is dropped", st)
	}
	if err := broker.StartBroker(0); err != nil {
		t.Fatal(err)
	}
	// Once Kafka is back, everything that was buffered is produced: the producer retries every
	// 5 s at most, and the broker restarts in a few seconds; 60 s is several times both.
	deadline := time.Now().Add(60 * time.Second)
	for rec.Stats().Produced+st.Dropped < calls && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if produced := rec.Stats().Produced; produced+st.Dropped != calls {
		t.Errorf("produced %d + dropped %d != %d calls", produced, st.Dropped, calls)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := rec.Close(sctx); err != nil {
		t.Error(err)
	}
}

// A streamed call's bookkeeping runs after its answer; Drain waits for it, so that a shutdown
// (drain, then close the recorder) records every answered call.
func TestDrainRecordsStreamedCallsAnsweredBeforeShutdown(t *testing.T) {
	up := newUpstream(t, sse(`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}`,
		`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`, "data: [DONE]"))
	f := newFixture(t, singleRoute("openai-compatible", up.URL, ""), Options{})
	const calls = 5
	for range calls {
		if resp, body := f.do(t, "POST", PathChat, f.keys.llm, `{"model":"gpt","stream":true,"messages":[{"role":"user","content":"Hi"}]}`); resp.StatusCode != 200 || !strings.Contains(string(body), "[DONE]") {
			t.Fatalf("stream: %d %s", resp.StatusCode, body)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.gw.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.recorder.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if s := f.recorder.Stats(); s.Produced != calls || s.Dropped != 0 {
		t.Errorf("recorder after drain and close: %+v, want %d produced", s, calls)
	}
}

// Drain waits for every call in its bookkeeping, including ones that began while it waited (a
// handler still running after the shutdown's grace), and gives up when its context ends.
func TestDrainWaitsForCallsThatStartWhileItWaits(t *testing.T) {
	var g Gateway
	if err := g.Drain(context.Background()); err != nil {
		t.Fatalf("drain with nothing in flight: %v", err)
	}
	g.tails.add()
	drained := make(chan error, 1)
	go func() { drained <- g.Drain(context.Background()) }()
	for waiting := false; !waiting; {
		g.tails.mu.Lock()
		waiting = g.tails.waiter != nil
		g.tails.mu.Unlock()
		runtime.Gosched()
	}
	released := g.tails.idle() // what Drain waits on; done closes it before it returns
	g.tails.add()              // begins while Drain waits
	g.tails.done()
	select {
	case <-released:
		t.Fatal("Drain released with a call still in its bookkeeping")
	default:
	}
	g.tails.done()
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	// Counting from zero again after a drain is allowed.
	g.tails.add()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.Drain(ctx); err == nil {
		t.Fatal("Drain with a call in flight and an ended context returned nil")
	}
	g.tails.done()
	if err := g.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Wrong methods and unknown paths under /v1/ answer in OpenAI's error format.
func TestUnknownPathsAndMethodsAnswerInOpenAIsFormat(t *testing.T) {
	k := newKeys(t)
	_, srv := serve(t, k, routing.MockConfig, Options{})
	for _, c := range []struct {
		method, path string
		status       int
		allow, text  string
	}{
		{"GET", PathChat, 405, "POST", "use POST"},
		{"DELETE", PathModels, 405, "GET", "use GET"},
		{"POST", "/v1/completions", 404, "", "Invalid URL (POST /v1/completions)"},
	} {
		resp, body := do(t, srv.URL, c.method, c.path, k.llm, "{}")
		var e errorBody
		if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != c.status || resp.Header.Get("Allow") != c.allow ||
			e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, c.text) {
			t.Errorf("%s %s: %d allow %q %s", c.method, c.path, resp.StatusCode, resp.Header.Get("Allow"), body)
		}
	}
}

// A client that stalls while sending its body gets 408 after BodyTimeout (the call is recorded),
// and the deadline ends with the body: a stream that runs far longer is not cut.
func TestStalledBodyTimesOutButLongStreamsDoNot(t *testing.T) {
	slow := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, e := range []string{
			`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"slow "},"finish_reason":null}]}`,
			`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"answer"},"finish_reason":"stop"}]}`,
			"data: [DONE]",
		} {
			_, _ = io.WriteString(w, e+"\n\n")
			w.(http.Flusher).Flush()
			time.Sleep(300 * time.Millisecond) // each gap longer than the body timeout
		}
	}
	up := newUpstream(t, slow)
	// The stream's small body goes in the same write as its headers, so its 100 ms to arrive
	// are never used up; the stalled one's body never comes, so its 408 does not depend on time.
	f := newFixture(t, singleRoute("openai-compatible", up.URL, ""), Options{BodyTimeout: 100 * time.Millisecond})

	conn, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: router\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", PathChat, f.keys.llm)
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second)) // only keeps a regression from hanging
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "request_timeout") {
		t.Fatalf("stalled body: %d %s, want 408 request_timeout", resp.StatusCode, body)
	}

	stream, streamed := f.do(t, "POST", PathChat, f.keys.llm, `{"model":"gpt","stream":true,"messages":[{"role":"user","content":"Hi"}]}`)
	if stream.StatusCode != 200 || !strings.Contains(string(streamed), "answer") || !strings.Contains(string(streamed), "[DONE]") {
		t.Fatalf("stream longer than the body timeout: %d %s", stream.StatusCode, streamed)
	}
	calls := f.calls(t, 2)
	if c := calls[resp.Header.Get(HeaderCallID)]; c.StatusCode != http.StatusRequestTimeout {
		t.Errorf("stalled call recorded as %+v", c)
	}
	if c := calls[stream.Header.Get(HeaderCallID)]; c.Status != catalog.LLMCallSuccess {
		t.Errorf("stream recorded as %+v", c)
	}
}

// An upstream that stalls after its first chunk ends the stream once the target's timeout has
// passed without a chunk: the client gets an upstream_timeout error event, and the call is
// recorded.
func TestStreamStalledMidwayEndsAfterTheTargetTimeout(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"half "},"finish_reason":null}]}`+"\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // then nothing, until router gives up
	})
	// The timeout bounds the wait for the first chunk too: 1 s is 15 times the slowest of a
	// million loopback calls on the 2-core build machine under load (66 ms), so the first chunk
	// arriving late fails this test by accident far less than once in a million.
	routingYAML := strings.Replace(singleRoute("openai-compatible", up.URL, ""), "model: upstream-model}", "model: upstream-model, timeout: 1s}", 1)
	f := newFixture(t, routingYAML, Options{})
	resp, body := f.do(t, "POST", PathChat, f.keys.llm, `{"model":"gpt","stream":true,"messages":[{"role":"user","content":"Hi"}]}`)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "half") || !strings.Contains(string(body), "upstream_timeout") || strings.Contains(string(body), "[DONE]") {
		t.Fatalf("stalled stream: %d %s", resp.StatusCode, body)
	}
	c := f.calls(t, 1)[resp.Header.Get(HeaderCallID)]
	if c.Status != catalog.LLMCallError || c.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("recorded %+v", c)
	}
}

// A provider that never ends a line cannot make router hold it whole: past providers.MaxSSELine the stream
// ends with an error event, and the call is recorded with the reason.
func TestEndlessStreamLineIsCutOff(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"ok "},"finish_reason":null}]}`+"\n\n")
		_, _ = io.WriteString(w, "data: ")
		piece := []byte(strings.Repeat("x", 64<<10))
		for sent := 0; sent <= providers.MaxSSELine+len(piece) && r.Context().Err() == nil; sent += len(piece) {
			_, _ = w.Write(piece)
		}
	})
	f := newFixture(t, singleRoute("openai-compatible", up.URL, ""), Options{})
	resp, body := f.do(t, "POST", PathChat, f.keys.llm, `{"model":"gpt","stream":true,"messages":[{"role":"user","content":"Hi"}]}`)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "ok ") || strings.Contains(string(body), "[DONE]") || len(body) > 64<<10 {
		t.Fatalf("endless line: %d, %d bytes: %.300s", resp.StatusCode, len(body), body)
	}
	c := f.calls(t, 1)[resp.Header.Get(HeaderCallID)]
	if c.Status != catalog.LLMCallError || !strings.Contains(c.Error, "over 8388608 bytes") {
		t.Errorf("recorded %+v", c)
	}
}

// Streamed tool call pieces of several calls, interleaved, are put together per call, in order.
func TestStreamedCallsAssembleInterleavedPieces(t *testing.T) {
	var s streamedCalls
	idx := func(i int) *int { return &i }
	for i := 0; i < 3; i++ {
		s.add(openai.ToolCall{Index: idx(i), ID: fmt.Sprint("call_", i), Type: "function", Function: openai.FunctionCall{Name: fmt.Sprint("f", i)}})
	}
	for piece := 0; piece < 1000; piece++ {
		for i := 0; i < 3; i++ {
			s.add(openai.ToolCall{Index: idx(i), Function: openai.FunctionCall{Arguments: fmt.Sprint(i)}})
		}
	}
	s.add(openai.ToolCall{Index: idx(maxStreamToolCalls), Function: openai.FunctionCall{Name: "beyond the bound"}})
	calls := s.done()
	if len(calls) != 3 {
		t.Fatalf("%d calls, want 3", len(calls))
	}
	for i, c := range calls {
		if c.ID != fmt.Sprint("call_", i) || c.Function.Name != fmt.Sprint("f", i) || c.Function.Arguments != strings.Repeat(fmt.Sprint(i), 1000) {
			t.Errorf("call %d: %+v", i, c)
		}
	}
}
