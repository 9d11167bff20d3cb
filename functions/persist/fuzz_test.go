package persist

import (
	"bytes"
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/trustplane/trustplane/eventing/catalog"
)

// FuzzBinaryDelivery holds persist's direct reading of binary-mode deliveries to the
// CloudEvents SDK's reading of the same request: both accept or both reject, and what they
// accept becomes the same rows.
func FuzzBinaryDelivery(f *testing.F) {
	obs := `{"id":"o1","trace_id":"t1","type":"SPAN","start_time":"2026-11-29T10:00:00Z"}`
	f.Add("e1", "/app", catalog.TypeObservation, "2026-11-29T10:00:00Z", "tenantid", "acme", "application/json", "2026-11-29T10:00:01.5Z", []byte(obs))
	f.Add("e1", "/app", catalog.TypeTrace, "", "tenantid", "acme", "", "", []byte(`{"id":"t","timestamp":"2026-11-29T10:00:00Z"}`))
	f.Add("", "::", "x", "noon", "bad-name", "v", "text/plain;;", "yesterday", []byte(`{`))
	f.Add("e1", "/app", catalog.TypeScore, "2026-11-29T10:00:00+01:00", "Ext", " v ", "application/json; charset=utf-8", "1", []byte(`{"id":"s","trace_id":"t","name":"n","timestamp":"2026-11-29T10:00:00Z"}`))
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, id, source, typ, ceTime, extName, extValue, contentType, ingestTime string, body []byte) {
		req, err := http.NewRequest(http.MethodPost, "http://persist/", bytes.NewReader(body))
		if err != nil {
			return
		}
		for k, v := range map[string]string{"Ce-Specversion": "1.0", "Ce-Id": id, "Ce-Source": source, "Ce-Type": typ,
			"Ce-Time": ceTime, "Ce-Projectid": "web", "Ce-Ingesttime": ingestTime, "Content-Type": contentType} {
			if v = strings.Trim(v, " \t"); v != "" { // as the header arrives off the wire
				req.Header.Set(k, v)
			}
		}
		if extName != "" && !strings.ContainsAny(extName, "\r\n:") {
			req.Header.Set("Ce-"+extName, strings.Trim(extValue, " \t"))
		}
		// What a request can carry: headers the HTTP layer would refuse never reach persist.
		for k, vs := range req.Header {
			for _, v := range vs {
				if !validHeader(k, v) {
					return
				}
			}
		}

		d, derr := readBinary(req, new(bytes.Buffer))
		var fast, sdk rowsResult
		if derr == nil {
			fast.batch, fast.err = rowsOf(&d, now)
		} else {
			fast.err = derr
		}
		req.Body = nopCloser{bytes.NewReader(body)}
		e, serr := binding.ToEvent(context.Background(), cehttp.NewMessageFromHttpRequest(req))
		if serr == nil {
			sdk.batch, sdk.err = Rows(*e, now)
		} else {
			sdk.err = serr
		}
		if (fast.err == nil) != (sdk.err == nil) {
			t.Fatalf("direct reading error %v, SDK's %v", fast.err, sdk.err)
		}
		if fast.err == nil && !reflect.DeepEqual(fast.batch, sdk.batch) {
			t.Fatalf("rows differ:\ndirect %+v\nSDK    %+v", fast.batch, sdk.batch)
		}
	})
}

type rowsResult struct {
	batch any
	err   error
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// validHeader reports whether net/http would carry the header field.
func validHeader(k, v string) bool {
	if k == "" || strings.ContainsAny(v, "\r\n\x00") {
		return false
	}
	for _, c := range k {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune("\"(),/:;<=>?@[\\]{}", c) {
			return false
		}
	}
	return true
}

// benchReaderData is an LLM generation of about 600 bytes, as ingest sees them.
const benchReaderData = `{"id":"obs-1","trace_id":"trace-1","type":"GENERATION","name":"chat","start_time":"2026-11-29T10:00:00Z","end_time":"2026-11-29T10:00:01.2Z",` +
	`"model":"gpt-4o-mini","input":[{"role":"user","content":"What is the capital of France? Answer in one word, please."}],` +
	`"output":{"role":"assistant","content":"Paris."},"usage":{"prompt_tokens":21,"completion_tokens":2,"total_tokens":23},` +
	`"cost":{"input":0.00000315,"output":0.0000012,"total":0.00000435},"metadata":{"route":"/v1/chat/completions","region":"eu-west-1"}}`

// BenchmarkReadBinary is persist's direct reading of a binary-mode delivery against the SDK's
// HTTP binding, as FuzzBinaryDelivery compares them, on a 600-byte observation with the
// attributes ingest stamps. The rows made from either are the catalog's work, measured by
// BenchmarkUnmarshal in eventing/catalog.
// Run with: go test -run '^$' -bench BenchmarkReadBinary ./functions/persist/
func BenchmarkReadBinary(b *testing.B) {
	data := []byte(benchReaderData)
	body := bytes.NewReader(data)
	req, err := http.NewRequest(http.MethodPost, "http://persist/", body)
	if err != nil {
		b.Fatal(err)
	}
	for k, v := range map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "evt-1", "Ce-Source": "/app",
		"Ce-Type": catalog.TypeObservation, "Ce-Time": "2026-11-29T10:00:00Z", "Ce-Tenantid": "acme",
		"Ce-Projectid": "web", "Ce-Keyid": "k1", "Ce-Partitionkey": "trace-1",
		"Ce-Ingesttime": "2026-11-29T10:00:01.5Z", "Content-Type": "application/json"} {
		req.Header.Set(k, v)
	}
	req.ContentLength = int64(len(data))
	req.Body = nopCloser{body}
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		var buf bytes.Buffer
		for b.Loop() {
			body.Reset(data)
			buf.Reset() // as the handler's pool of bodies hands them out
			if d, err := readBinary(req, &buf); err != nil || len(d.data) != len(data) {
				b.Fatalf("%d bytes of data, error %v", len(d.data), err)
			}
		}
	})
	b.Run("library", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		ctx := context.Background()
		for b.Loop() {
			body.Reset(data)
			e, err := binding.ToEvent(ctx, cehttp.NewMessageFromHttpRequest(req))
			if err != nil || len(e.Data()) != len(data) {
				b.Fatalf("error %v", err)
			}
		}
	})
}
