package dispatcher

import (
	"context"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/IBM/sarama"
)

// recordFrom builds a consumed record from "key: value" header lines and a value.
func recordFrom(value string, headers ...string) *sarama.ConsumerMessage {
	msg := &sarama.ConsumerMessage{Topic: "events", Partition: 3, Offset: 42}
	if value != "" {
		msg.Value = []byte(value)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		msg.Headers = append(msg.Headers, &sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
	}
	return msg
}

// checkSameAsSDK asserts that the direct reading of a record, when it takes the record, gives
// what the CloudEvents SDK's decoding gives: validity, filter attributes, HTTP request.
func checkSameAsSDK(t *testing.T, msg *sarama.ConsumerMessage) (direct bool) {
	t.Helper()
	ev, sdkErr := decodeRecord(context.Background(), msg)
	in, err := readRecord(context.Background(), msg)
	if (err == nil) != (sdkErr == nil) {
		t.Fatalf("readRecord error %v, SDK error %v", err, sdkErr)
	}
	r, ok := in.(*binaryRecord)
	if err != nil || !ok {
		return false
	}
	names := []string{"specversion", "type", "source", "subject", "id", "time", "dataschema", "schemaurl",
		"datacontenttype", "datamediatype", "datacontentencoding", "kafkaoffset", "kafkapartition", "kafkatopic", "nosuchext"}
	for name := range ev.Extensions() {
		names = append(names, name)
	}
	for _, name := range names {
		got, gotOK := r.lookup(name)
		want, wantOK := lookupAttribute(ev, name)
		if got != want || gotOK != wantOK {
			t.Errorf("lookup(%q) = %#v, %v; the SDK's event says %#v, %v", name, got, gotOK, want, wantOK)
		}
	}
	fast, fromSDK := requestFor(t, r), requestFor(t, decodedEvent{ev})
	if !reflect.DeepEqual(fast.Header, fromSDK.Header) {
		t.Errorf("request headers\n%v\nthe SDK writes\n%v", fast.Header, fromSDK.Header)
	}
	if d, s := body(t, fast), body(t, fromSDK); d != s {
		t.Errorf("request body %q, the SDK writes %q", d, s)
	}
	return true
}

func requestFor(t *testing.T, in incoming) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.writeRequest(req); err != nil {
		t.Fatal(err)
	}
	return req
}

func body(t *testing.T, req *http.Request) string {
	t.Helper()
	if req.Body == nil {
		return ""
	}
	b, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != req.ContentLength && req.ContentLength != -1 {
		t.Errorf("body of %d bytes, Content-Length %d", len(b), req.ContentLength)
	}
	return string(b)
}

func TestRecordsReadDirectlyMatchTheSDK(t *testing.T) {
	base := []string{"ce_specversion: 1.0", "ce_id: e-1", "ce_source: urn:trustplane:ingest", "ce_type: io.trustplane.telemetry.trace.v1"}
	with := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }
	tests := []struct {
		name    string
		value   string
		headers []string
		direct  bool // read directly rather than by the SDK
	}{
		{"minimal", `{"a":1}`, base, true},
		{"all attributes", `{"a":1}`, with("ce_subject: trace/abc", "ce_time: 2026-11-29T12:00:00.5+01:00",
			"content-type: application/json; charset=utf-8", "ce_tenant: t1", "ce_partitionkey: abc"), true},
		{"header names in any case", `x`, []string{"CE_SPECVERSION: 1.0", "Ce_Id: e-1", "ce_SOURCE: /a/b", "ce_type: t", "Content-Type: text/plain", "CE_Tenant: t"}, true},
		{"no value", "", base, true},
		{"source normalised by parsing", "", with("ce_source: HTTPS://Example.com/a b"), true},
		{"duplicate extension, last wins", "", with("ce_tenant: t1", "ce_tenant: t2"), true},
		{"ignored non-ce header", "", with("traceparent: 00-abc", "ce-tenant: hyphen"), true},
		{"spaces around id are trimmed by the SDK", "", with("ce_id:  e-2 "), false},
		{"blank subject", "", with("ce_subject:  "), false},
		{"zero time", "", with("ce_time: 0001-01-01T00:00:00Z"), false},
		{"bad time", "", with("ce_time: yesterday"), false},
		{"bad content type", "", with("content-type: ;;"), false},
		{"dataschema", "", with("ce_dataschema: https://example.com/schema"), false},
		{"datacontenttype header too", "", with("ce_datacontenttype: text/plain"), false},
		{"own kafkaoffset header", "", with("ce_kafkaoffset: 7"), false},
		{"upper-case extension is lowered", "", with("ce_TenantId: t"), true},
		{"bad extension name", "", with("ce_ten-ant: t"), false},
		{"empty extension name", "", with("ce_: t"), false},
		{"version 0.3", "", []string{"ce_specversion: 0.3", "ce_id: e-1", "ce_source: /s", "ce_type: t"}, false},
		{"missing id", "", []string{"ce_specversion: 1.0", "ce_source: /s", "ce_type: t"}, false},
		{"empty type", "", []string{"ce_specversion: 1.0", "ce_id: e", "ce_source: /s", "ce_type: "}, false},
		{"structured", `{"specversion":"1.0","id":"s-1","source":"/s","type":"t","data":{"a":1}}`, []string{"content-type: application/cloudevents+json"}, false},
		{"structured content type beats ce_ headers", `{"specversion":"1.0","id":"s-1","source":"/s","type":"t"}`, with("content-type: application/cloudevents+json; charset=utf-8"), false},
		{"not an event", "hello", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkSameAsSDK(t, recordFrom(tc.value, tc.headers...)); got != tc.direct {
				t.Errorf("read directly: %v, want %v", got, tc.direct)
			}
		})
	}
}

// FuzzReadRecord checks, for arbitrary headers, that the direct reading and the SDK agree.
func FuzzReadRecord(f *testing.F) {
	f.Add("ce_tenant", "t1", "ce_time", "2026-11-29T12:00:00Z", "content-type", "application/json", []byte(`{}`))
	f.Add("ce_subject", " x", "ce_source", "a:b", "ce_id", "", []byte(nil))
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string, value []byte) {
		msg := recordFrom("", "ce_specversion: 1.0", "ce_id: e-1", "ce_source: /s", "ce_type: t")
		msg.Value = value
		for _, kv := range [][2]string{{k1, v1}, {k2, v2}, {k3, v3}} {
			msg.Headers = append(msg.Headers, &sarama.RecordHeader{Key: []byte(kv[0]), Value: []byte(kv[1])})
		}
		checkSameAsSDK(t, msg)
	})
}
