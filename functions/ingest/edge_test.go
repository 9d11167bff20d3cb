package ingest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/trustplane/trustplane/eventing/catalog"
)

// rawRequest writes req as it is on a new connection and reads one response: it sends what
// http.Client would refuse or repair (stalled bodies, repeated headers, Expect without a body).
func rawRequest(t *testing.T, addr, req string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// Only a guard against a test that would hang forever on a server that never answers.
	if err := c.SetDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// head is the start of a request to f's server, authorized with key, up to its last header.
func (f fixture) head(key string, headers ...string) string {
	return "POST / HTTP/1.1\r\nHost: ingest\r\nAuthorization: Bearer " + key + "\r\n" + strings.Join(headers, "\r\n") + "\r\n"
}

func TestOversizeContentLengthIsRefusedBeforeTheBody(t *testing.T) {
	f := newFixture(t, defaultLimits())
	req := f.head(f.keys.ingest, "Content-Type: "+contentTypeCEStruct, "Expect: 100-continue",
		fmt.Sprintf("Content-Length: %d", defaultLimits().MaxRequestBytes+1)) + "\r\n"
	resp, body := rawRequest(t, f.srv.Listener.Addr().String(), req)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("Content-Type") != contentTypeProblem {
		t.Fatalf("status %d (%s), want 413 before the body is sent: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	readTopic(t, f.topic, 0)
}

// A body is never read as plain when the client says it is encoded in a coding ingest does not
// decode, even if its bytes happen to parse: it is refused, naming the codings ingest takes.
func TestUnsupportedEncodingsAreRefused(t *testing.T) {
	f := newFixture(t, defaultLimits())
	for _, coding := range []string{"br", "deflate", "identity, br", "gzip, gzip", "gzip, br"} {
		resp, body := f.post(t, f.keys.ingest, map[string]string{"Content-Type": contentTypeCEStruct, "Content-Encoding": coding},
			structured("enc-"+coding, catalog.TypeTrace, traceData))
		if resp.StatusCode != http.StatusUnsupportedMediaType || resp.Header.Get("Content-Type") != contentTypeProblem ||
			!strings.Contains(string(body), "Content-Encoding") || resp.Header.Get("Accept-Encoding") != "gzip" {
			t.Errorf("Content-Encoding %s: status %d (%s), Accept-Encoding %q: %s", coding, resp.StatusCode,
				resp.Header.Get("Content-Type"), resp.Header.Get("Accept-Encoding"), body)
		}
	}
	resp, body := f.post(t, f.keys.ingest, map[string]string{"Content-Type": contentTypeCEStruct, "Content-Encoding": "Identity"},
		structured("enc-identity", catalog.TypeTrace, traceData))
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("Content-Encoding identity: status %d: %s", resp.StatusCode, body)
	}
	readTopic(t, f.topic, 1)
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// gzip bodies are inflated in every CloudEvents mode, and in binary mode the headers stay as
// they are.
func TestGzipBodiesAreAcceptedInEveryMode(t *testing.T) {
	f := newFixture(t, defaultLimits())
	posts := []struct {
		coding string
		header map[string]string
		body   string
	}{
		{"gzip", map[string]string{"Content-Type": contentTypeCEStruct}, structured("gz-structured", catalog.TypeTrace, traceData)},
		{"GZIP", map[string]string{"Content-Type": contentTypeBatch}, "[" + structured("gz-batch", catalog.TypeTrace, traceData) + "]"},
		{"x-gzip", map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "gz-binary", "Ce-Source": "/t", "Ce-Type": catalog.TypeTrace,
			"Content-Type": contentTypeJSON}, traceData},
		{"identity, gzip", map[string]string{"Content-Type": contentTypeCEStruct}, structured("gz-listed", catalog.TypeTrace, traceData)},
	}
	for _, p := range posts {
		p.header["Content-Encoding"] = p.coding
		resp, body := f.post(t, f.keys.ingest, p.header, string(gzipped(t, []byte(p.body))))
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("Content-Encoding %s: status %d: %s", p.coding, resp.StatusCode, body)
		}
	}
	got := map[string]bool{}
	for _, e := range readTopic(t, f.topic, len(posts)) {
		got[e.ID()] = true
		if string(e.Data()) != traceData {
			t.Errorf("event %s: data %s, want %s", e.ID(), e.Data(), traceData)
		}
	}
	for _, id := range []string{"gz-structured", "gz-batch", "gz-binary", "gz-listed"} {
		if !got[id] {
			t.Errorf("event %s is not in the topic", id)
		}
	}
}

// A gzip body is bounded twice: on the wire by MAX_REQUEST_BYTES, and once inflated by the same
// limit. A bomb (a few KiB that inflate to gigabytes) is answered 413 after reading at most the
// limit; bytes that are not gzip are a 400; nothing is produced for either.
func TestGzipBodiesAreBounded(t *testing.T) {
	limits := defaultLimits()
	limits.MaxRequestBytes = 1 << 20
	f := newFixture(t, limits)
	ce := map[string]string{"Content-Type": contentTypeCEStruct, "Content-Encoding": "gzip"}

	// 64 MiB of zeros compress to about 64 KiB: well under the wire limit, 64 times over the
	// inflated one.
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 64 {
		_, _ = zw.Write(zeros)
	}
	_ = zw.Close()
	if int64(bomb.Len()) >= limits.MaxRequestBytes {
		t.Fatalf("the bomb is %d bytes compressed, not under the wire limit", bomb.Len())
	}
	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	resp, body := f.post(t, f.keys.ingest, ce, bomb.String())
	goruntime.ReadMemStats(&after)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "decompressed request body exceeds 1048576 bytes") {
		t.Fatalf("gzip bomb: status %d: %s", resp.StatusCode, body)
	}
	// The handler reads at most limit+1 inflated bytes (plus a buffer's growth): far less than
	// the 64 MiB the bomb holds. TotalAlloc counts every allocation, the test's own included.
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 16<<20 {
		t.Errorf("refusing the bomb allocated %d bytes", grown)
	}

	// Exactly the limit inflated is accepted, one byte more refused.
	padded := func(n int) string {
		e := structured("gz-edge", catalog.TypeTrace, traceData)
		return e + strings.Repeat(" ", n-len(e))
	}
	limits2 := defaultLimits()
	limits2.MaxRequestBytes = 4096
	g := newFixture(t, limits2)
	if resp, body := g.post(t, g.keys.ingest, ce, string(gzipped(t, []byte(padded(4096))))); resp.StatusCode != http.StatusAccepted {
		t.Errorf("inflated to exactly the limit: status %d: %s", resp.StatusCode, body)
	}
	if resp, body := g.post(t, g.keys.ingest, ce, string(gzipped(t, []byte(padded(4097))))); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("inflated one byte over the limit: status %d: %s", resp.StatusCode, body)
	}

	// Not gzip, a truncated stream, and trailing garbage after a member.
	whole := gzipped(t, []byte(structured("gz-bad", catalog.TypeTrace, traceData)))
	for name, b := range map[string][]byte{
		"plain":     []byte(structured("gz-bad", catalog.TypeTrace, traceData)),
		"truncated": whole[:len(whole)-6],
		"trailing":  append(append([]byte{}, whole...), "garbage"...),
	} {
		resp, body := f.post(t, f.keys.ingest, ce, string(b))
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "not valid gzip") {
			t.Errorf("%s: status %d: %s", name, resp.StatusCode, body)
		}
	}
	readTopic(t, f.topic, 0)
	readTopic(t, g.topic, 1)
}

// A repeated ce- header would leave the event's attribute to whichever copy a reader takes
// first (an id, the spec version): binary mode refuses it, in any spelling of the name.
func TestRepeatedCloudEventsHeadersAreRefused(t *testing.T) {
	f := newFixture(t, defaultLimits())
	event := func(extra ...string) string {
		headers := append([]string{"Content-Type: application/json", "Ce-Specversion: 1.0", "Ce-Source: /app",
			"Ce-Type: " + catalog.TypeTrace, fmt.Sprintf("Content-Length: %d", len(traceData))}, extra...)
		return f.head(f.keys.ingest, headers...) + "\r\n" + traceData
	}
	for name, req := range map[string]string{
		"id":          event("Ce-Id: a", "Ce-Id: b"),
		"specversion": event("Ce-Id: c", "ce-specversion: 0.3"),
		"tenantid":    event("Ce-Id: d", "ce-TENANTID: other", "ce-tenantid: another"),
	} {
		resp, body := rawRequest(t, f.srv.Listener.Addr().String(), req)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != contentTypeProblem ||
			!strings.Contains(body, `"pointer":"/`+name+`"`) {
			t.Errorf("repeated %s: status %d (%s): %s", name, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
	readTopic(t, f.topic, 0)
}

// A client that stalls mid-body is answered 408 once ClientTimeout passed, and gives back
// its turn: with one turn, the next request is served. A stalled client whose request is
// refused before its body is read (here: no valid key) is answered too, not held while the
// server waits for the rest of its body.
// oneTurnFixture serves one request at a time, with a short client timeout: a request that
// keeps its turn shows as the next one hanging. The requests meant to succeed send their small
// body in the same write as their headers and read their small answer at once, so none of
// them needs the 200 ms: they do not fail by timing, whatever the machine's load.
func oneTurnFixture(t *testing.T) fixture {
	limits := defaultLimits()
	limits.MaxConcurrentRequests = 1
	limits.ClientTimeout = 200 * time.Millisecond
	return newFixture(t, limits)
}

func TestStalledBodyTimesOutAndFreesItsTurn(t *testing.T) {
	f := oneTurnFixture(t)
	addr := f.srv.Listener.Addr().String()
	stalled := func(key string) string {
		return f.head(key, "Content-Type: "+contentTypeCEStruct, "Content-Length: 1000") + "\r\n{"
	}

	resp, body := rawRequest(t, addr, stalled(f.keys.ingest))
	if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get("Content-Type") != contentTypeProblem {
		t.Fatalf("stalled body: status %d (%s): %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, body = rawRequest(t, addr, stalled("tp_nosuchkey_secret"))
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("stalled body without a key: status %d: %s", resp.StatusCode, body)
	}
	r, b := f.post(t, f.keys.ingest, map[string]string{"Content-Type": contentTypeCEStruct}, structured("after-stall", catalog.TypeTrace, traceData))
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("after a stalled client: status %d: %s", r.StatusCode, b)
	}
	readTopic(t, f.topic, 1)
}

// Over HTTP/2 (TLS), a stalled body times out the same way: the deadline is the stream's.
func TestStalledBodyTimesOutOverHTTP2(t *testing.T) {
	f := oneTurnFixture(t)
	srv := httptest.NewUnstartedServer(f.srv.Config.Handler)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)

	body, stall := io.Pipe()
	t.Cleanup(func() { stall.Close() })
	go func() { _, _ = io.WriteString(stall, "{") }() // and nothing more
	req, err := http.NewRequest(http.MethodPost, srv.URL, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.keys.ingest)
	req.Header.Set("Content-Type", contentTypeCEStruct)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get("Content-Type") != contentTypeProblem {
		t.Fatalf("%s: status %d (%s): %s", resp.Proto, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}

	req, err = http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(structured("h2", catalog.TypeTrace, traceData)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.keys.ingest)
	req.Header.Set("Content-Type", "Application/CloudEvents+JSON; charset=utf-8")
	resp, err = srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("%s after a stalled stream: status %d: %s", resp.Proto, resp.StatusCode, b)
	}
	readTopic(t, f.topic, 1)
}

// A client that never reads its answer (a large one: a batch of rejected events echoes their
// ids) does not keep its turn: the answer is abandoned after ClientTimeout.
func TestUnreadAnswerFreesItsTurn(t *testing.T) {
	f := oneTurnFixture(t)

	events := make([]string, 20)
	for i := range events {
		events[i] = structured(fmt.Sprintf("%d-%s", i, strings.Repeat("x", 200<<10)), "no.such.type", traceData)
	}
	batch := "[" + strings.Join(events, ",") + "]"
	c, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	req := f.head(f.keys.ingest, "Content-Type: "+contentTypeBatch, fmt.Sprintf("Content-Length: %d", len(batch))) + "\r\n" + batch
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	// The answer (some 4 MB) is never read. The next request needs the only turn.
	r, b := f.post(t, f.keys.ingest, map[string]string{"Content-Type": contentTypeCEStruct}, structured("after-unread", catalog.TypeTrace, traceData))
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("after a client not reading its answer: status %d: %s", r.StatusCode, b)
	}
	readTopic(t, f.topic, 1)
}

// tenantid, projectid and keyid claimed by the event, in any spelling of the name and in every
// mode, are replaced by the key's.
func TestIdentityClaimsAreOverriddenInEveryMode(t *testing.T) {
	f := newFixture(t, defaultLimits())
	claims := `"TenantId":"evil","PROJECTID":"evil","keyid":"evil",`
	withClaims := func(id string) string {
		return strings.Replace(structured(id, catalog.TypeTrace, traceData), `{`, `{`+claims, 1)
	}
	if r, b := f.post(t, f.keys.ingest, map[string]string{"Content-Type": "Application/CloudEvents+JSON; charset=utf-8"}, withClaims("s")); r.StatusCode != http.StatusAccepted {
		t.Fatalf("structured: status %d: %s", r.StatusCode, b)
	}
	if r, b := f.post(t, f.keys.ingest, map[string]string{"Content-Type": contentTypeBatch}, "["+withClaims("b")+"]"); r.StatusCode != http.StatusAccepted {
		t.Fatalf("batch: status %d: %s", r.StatusCode, b)
	}
	req := f.head(f.keys.ingest, "Content-Type: Application/JSON; charset=utf-8", "Ce-Specversion: 1.0", "Ce-Id: bin", "Ce-Source: /app",
		"Ce-Type: "+catalog.TypeTrace, "ce-TENANTID: evil", "CE-ProjectId: evil", "ce-keyid: evil",
		fmt.Sprintf("Content-Length: %d", len(traceData))) + "\r\n" + traceData
	if r, b := rawRequest(t, f.srv.Listener.Addr().String(), req); r.StatusCode != http.StatusAccepted {
		t.Fatalf("binary: status %d: %s", r.StatusCode, b)
	}
	keyID := strings.Split(f.keys.ingest, "_")[1]
	for _, e := range readTopic(t, f.topic, 3) {
		ext := e.Extensions()
		if ext[catalog.ExtTenant] != "acme" || ext[catalog.ExtProject] != "proj" || ext[catalog.ExtKeyID] != keyID {
			t.Errorf("event %s: tenant %v, project %v, key id %v; want acme, proj, %s", e.ID(), ext[catalog.ExtTenant],
				ext[catalog.ExtProject], ext[catalog.ExtKeyID], keyID)
		}
		if e.DataContentType() != contentTypeJSON {
			t.Errorf("event %s: datacontenttype %q", e.ID(), e.DataContentType())
		}
	}
}
