package ingest

import (
	"bytes"
	"encoding/json"
	"reflect"
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

// FuzzSplitBatch holds the batch splitter to encoding/json reading a []json.RawMessage.
func FuzzSplitBatch(f *testing.F) {
	f.Add([]byte("[" + benchObservation(1) + "," + benchObservation(2) + "]"))
	for _, s := range []string{`[]`, `null`, ` [ 1 , "a" , {"b":[]} ] `, `[1,]`, `{}`, `[1] x`, `"a"`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		raws, err := splitBatch(body)
		var want []json.RawMessage
		werr := json.Unmarshal(body, &want)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: splitBatch error %v, encoding/json error %v", body, err, werr)
		}
		if len(raws) != len(want) {
			t.Fatalf("%q: %d elements, encoding/json %d", body, len(raws), len(want))
		}
		for i := range raws {
			if !bytes.Equal(bytes.TrimSpace(raws[i]), bytes.TrimSpace(want[i])) {
				t.Fatalf("%q element %d: %q, encoding/json %q", body, i, raws[i], want[i])
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
