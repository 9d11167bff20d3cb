package dispatcher

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
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

// checkDelivered asserts that what a subscriber reads from the delivery request of a record
// is the event read from the record (with the record's position as extensions when it is in
// binary mode), and reports whether the record is a valid CloudEvent.
func checkDelivered(t *testing.T, msg *sarama.ConsumerMessage) (valid bool) {
	t.Helper()
	ev, err := readRecord(context.Background(), msg)
	if err != nil {
		return false
	}
	ext := ev.Extensions()
	binary := kafka_sarama.NewMessageFromConsumerMessage(msg).ReadEncoding() == binding.EncodingBinary
	if binary && (ext["kafkaoffset"] != "42" || ext["kafkapartition"] != "3" || ext["kafkatopic"] != "events") {
		t.Errorf("position extensions %v %v %v, want 42, 3, events", ext["kafkaoffset"], ext["kafkapartition"], ext["kafkatopic"])
	}
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(ev), req); err != nil {
		t.Fatal(err)
	}
	if req.Header.Get("Ce-Specversion") == "" {
		t.Errorf("delivery is not in binary mode: %v", req.Header)
	}
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != req.ContentLength && req.ContentLength != -1 {
			t.Errorf("body of %d bytes, Content-Length %d", len(b), req.ContentLength)
		}
		req.Body = io.NopCloser(strings.NewReader(string(b)))
	}
	got, err := binding.ToEvent(context.Background(), cehttp.NewMessageFromHttpRequest(req))
	if err != nil {
		t.Fatalf("the subscriber cannot read the delivery: %v", err)
	}
	// The context's text holds every attribute and extension, in a fixed order.
	if got.Context.String() != ev.Context.String() || string(got.Data()) != string(ev.Data()) {
		t.Errorf("the subscriber reads\n%s%q\nfrom a delivery of\n%s%q", got.Context, got.Data(), ev.Context, ev.Data())
	}
	return true
}

func TestRecordsAreDeliveredAsTheyWereWritten(t *testing.T) {
	base := []string{"ce_specversion: 1.0", "ce_id: e-1", "ce_source: urn:trustplane:ingest", "ce_type: io.trustplane.telemetry.trace.v1"}
	with := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }
	tests := []struct {
		name    string
		value   string
		headers []string
		valid   bool
	}{
		{"minimal", `{"a":1}`, base, true},
		{"all attributes", `{"a":1}`, with("ce_subject: trace/abc", "ce_time: 2026-11-29T12:00:00.5+01:00",
			"content-type: application/json; charset=utf-8", "ce_tenant: t1", "ce_partitionkey: abc"), true},
		{"header names in any case", `x`, []string{"CE_SPECVERSION: 1.0", "Ce_Id: e-1", "ce_SOURCE: /a/b", "ce_type: t", "Content-Type: text/plain", "CE_Tenant: t"}, true},
		{"no value", "", base, true},
		{"source normalised by parsing", "", with("ce_source: HTTPS://Example.com/a b"), true},
		{"duplicate extension, last wins", "", with("ce_tenant: t1", "ce_tenant: t2"), true},
		{"ignored non-ce header", "", with("traceparent: 00-abc", "ce-tenant: hyphen"), true},
		{"spaces around id are trimmed", "", with("ce_id:  e-2 "), true},
		{"blank subject", "", with("ce_subject:  "), true},
		{"zero time", "", with("ce_time: 0001-01-01T00:00:00Z"), true},
		{"bad time", "", with("ce_time: yesterday"), false},
		{"bad content type", "", with("content-type: ;;"), false},
		{"dataschema", "", with("ce_dataschema: https://example.com/schema"), true},
		{"datacontenttype header too", "", with("ce_datacontenttype: text/plain"), true},
		{"own kafkaoffset header", "", with("ce_kafkaoffset: 7"), true},
		{"upper-case extension is lowered", "", with("ce_TenantId: t"), true},
		{"bad extension name", "", with("ce_ten-ant: t"), false},
		{"empty extension name", "", with("ce_: t"), false},
		{"version 0.3", "", []string{"ce_specversion: 0.3", "ce_id: e-1", "ce_source: /s", "ce_type: t"}, true},
		{"missing id", "", []string{"ce_specversion: 1.0", "ce_source: /s", "ce_type: t"}, false},
		{"empty type", "", []string{"ce_specversion: 1.0", "ce_id: e", "ce_source: /s", "ce_type: "}, false},
		{"structured", `{"specversion":"1.0","id":"s-1","source":"/s","type":"t","data":{"a":1}}`, []string{"content-type: application/cloudevents+json"}, true},
		{"structured content type beats ce_ headers", `{"specversion":"1.0","id":"s-1","source":"/s","type":"t"}`, with("content-type: application/cloudevents+json; charset=utf-8"), true},
		{"not an event", "hello", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkDelivered(t, recordFrom(tc.value, tc.headers...)); got != tc.valid {
				t.Errorf("valid: %v, want %v", got, tc.valid)
			}
		})
	}
}

// FuzzReadRecord checks, for arbitrary headers, that a record read as a valid CloudEvent is
// delivered as the subscriber's SDK reads it back.
func FuzzReadRecord(f *testing.F) {
	f.Add("ce_tenant", "t1", "ce_time", "2026-11-29T12:00:00Z", "content-type", "application/json", []byte(`{}`))
	f.Add("ce_subject", " x", "ce_source", "a:b", "ce_id", "", []byte(nil))
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string, value []byte) {
		msg := recordFrom("", "ce_specversion: 1.0", "ce_id: e-1", "ce_source: /s", "ce_type: t")
		msg.Value = value
		for _, kv := range [][2]string{{k1, v1}, {k2, v2}, {k3, v3}} {
			msg.Headers = append(msg.Headers, &sarama.RecordHeader{Key: []byte(kv[0]), Value: []byte(kv[1])})
		}
		checkDelivered(t, msg)
	})
}
