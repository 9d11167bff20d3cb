package ingest

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/trustplane/trustplane/eventing/catalog"
)

var envelopeSeeds = []string{
	benchObservation(1),
	structured("e", catalog.TypeTrace, traceData),
	`{"data":{"id":"t"},"type":"t","id":"1","specversion":"1.0","source":"https://app.example/x?y=1","time":"2026-11-29T10:00:00.123+01:00","subject":"s","dataschema":"https://schemas.example/t.json","tenantid":"claimed","myext":"v"}`,
	`{"specversion":"1.0","id":"1","source":"/s","type":"t","data":"a string"}`,
	`{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"e30="}`,
	`{"specversion":"1.0","id":"\u0031","source":"/s","type":"t"}`,
	`{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":"x"}`,
	`{"specversion":"1.0","id":"1","id":"2","source":"/s","type":"t"}`,
	`{"specversion":"0.3","id":"1","source":"/s","type":"t"}`,
	`{"specversion":"1.0","id":"1","source":"/s","type":"t","Ext":"a","ext":"b"}`,
	`{"specversion":"1.0","id":"1","source":"/s","type":"t","time":"yesterday"}`,
	`{"specversion":"1.0","id":"1","source":"/s","type":"t","n":1}`,
}

// FuzzReadEnvelope holds the fast reader to the SDK's: whatever it reads, the SDK reads the
// same event from the same bytes.
func FuzzReadEnvelope(f *testing.F) {
	for _, s := range envelopeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		fast, ok := readEnvelope(raw)
		if !ok {
			return
		}
		var sdk cloudevents.Event
		if err := json.Unmarshal(raw, &sdk); err != nil {
			t.Fatalf("read %s, which the SDK rejects: %v", raw, err)
		}
		if !reflect.DeepEqual(fast.Context, sdk.Context) {
			t.Fatalf("context of %s:\nfast %#v\nsdk  %#v", raw, fast.Context, sdk.Context)
		}
		if !bytes.Equal(bytes.TrimSpace(fast.DataEncoded), bytes.TrimSpace(sdk.DataEncoded)) || fast.DataBase64 != sdk.DataBase64 {
			t.Fatalf("data of %s: fast %q, sdk %q", raw, fast.DataEncoded, sdk.DataEncoded)
		}
	})
}

// FuzzReadBatch holds the batch reader to encoding/json splitting the body into a
// []json.RawMessage, each element then read by decodeStructured.
func FuzzReadBatch(f *testing.F) {
	f.Add([]byte("[" + benchObservation(1) + "," + benchObservation(2) + "]"))
	for _, s := range []string{`[]`, `null`, ` [ 1 , "a" , {"b":[]} ] `, `[1,]`, `{}`, `[1] x`, `"a"`, ``, `[{"specversion":"1.0"`} {
		f.Add([]byte(s))
	}
	for _, s := range envelopeSeeds {
		f.Add([]byte("[" + s + " , " + s + "]"))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		const max = 5
		elems, err := readBatch(body, max)
		var want []json.RawMessage
		werr := json.Unmarshal(body, &want)
		if werr == nil && len(want) > max {
			if tooMany, ok := err.(tooManyEvents); !ok || tooMany.n != len(want) {
				t.Fatalf("%q: %d elements, limit %d: error %v", body, len(want), max, err)
			}
			return
		}
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: readBatch error %v, encoding/json error %v", body, err, werr)
		}
		if len(elems) != len(want) {
			t.Fatalf("%q: %d elements, encoding/json %d", body, len(elems), len(want))
		}
		for i, elem := range elems {
			if !bytes.Equal(elem.raw, bytes.TrimSpace(want[i])) {
				t.Fatalf("%q element %d: %q, encoding/json %q", body, i, elem.raw, want[i])
			}
			e, problems := decodeStructured(want[i])
			if !reflect.DeepEqual(elem.problems, problems) || !reflect.DeepEqual(elem.event.Context, e.Context) ||
				!bytes.Equal(elem.event.DataEncoded, e.DataEncoded) || elem.event.DataBase64 != e.DataBase64 {
				t.Fatalf("%q element %d read as %+v %v, decodeStructured %+v %v", body, i, elem.event, elem.problems, e, problems)
			}
		}
	})
}

// The events clients send take the fast path; unusual ones still decode, through the SDK.
func TestEnvelopeFastPathAndFallback(t *testing.T) {
	for _, raw := range envelopeSeeds[:3] {
		if _, ok := readEnvelope([]byte(raw)); !ok {
			t.Errorf("not read by the fast path: %s", raw)
		}
	}
	escaped := `{"specversion":"1.0","id":"\u0031","source":"/s","type":"t","data":{}}`
	if _, ok := readEnvelope([]byte(escaped)); ok {
		t.Errorf("escaped attribute taken by the fast path")
	}
	e, problems := decodeStructured([]byte(escaped))
	if problems != nil || e.ID() != "1" {
		t.Errorf("escaped id through the SDK: %q %v", e.ID(), problems)
	}
	if _, problems := decodeStructured([]byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","time":"yesterday"}`)); problems == nil {
		t.Error("a bad time was accepted")
	}
}

// BenchmarkReadEnvelope is the fast reader against the SDK's structured-mode reader that
// decodeStructured falls back to, on a 600-byte observation.
// Run with: go test -run '^$' -bench BenchmarkReadEnvelope ./functions/ingest/
func BenchmarkReadEnvelope(b *testing.B) {
	raw := []byte(benchObservation(1))
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if _, ok := readEnvelope(raw); !ok {
				b.Fatal("not read by the fast path")
			}
		}
	})
	b.Run("library", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if _, problems := decodeStructuredSlowly(raw); problems != nil {
				b.Fatal(problems)
			}
		}
	})
}

// BenchmarkReadBatch is the batch reader against encoding/json splitting a batch of 100
// observations and the SDK reading each element, as FuzzReadBatch compares them.
// Run with: go test -run '^$' -bench BenchmarkReadBatch ./functions/ingest/
func BenchmarkReadBatch(b *testing.B) {
	const n = 100
	events := make([]string, n)
	for i := range events {
		events[i] = benchObservation(i)
	}
	body := []byte("[" + strings.Join(events, ",") + "]")
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			elems, err := readBatch(body, n)
			if err != nil || len(elems) != n {
				b.Fatalf("%d events, error %v", len(elems), err)
			}
		}
	})
	b.Run("library", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var raws []json.RawMessage
			if err := json.Unmarshal(body, &raws); err != nil || len(raws) != n {
				b.Fatalf("%d events, error %v", len(raws), err)
			}
			for _, raw := range raws {
				if _, problems := decodeStructuredSlowly(raw); problems != nil {
					b.Fatal(problems)
				}
			}
		}
	})
}
