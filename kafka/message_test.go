package kafka

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// record is what a producer message holds, with its headers in a fixed order: the SDK writes
// extensions in map order.
type record struct {
	key, value string
	headers    []string
}

func recordOf(t testing.TB, m binding.Message) record {
	t.Helper()
	var msg sarama.ProducerMessage
	if err := kafka_sarama.WriteProducerMessage(context.Background(), m, &msg); err != nil {
		t.Fatal(err)
	}
	r := record{}
	if msg.Key != nil {
		k, _ := msg.Key.Encode()
		r.key = string(k)
	}
	if msg.Value != nil {
		v, _ := msg.Value.Encode()
		r.value = string(v)
	}
	for _, h := range msg.Headers {
		r.headers = append(r.headers, string(h.Key)+"="+string(h.Value))
	}
	slices.Sort(r.headers)
	return r
}

// sameRecord checks that messageOf(e) writes the record the SDK's own message writes.
func sameRecord(t testing.TB, e *cloudevents.Event) {
	t.Helper()
	want := recordOf(t, binding.ToMessage(e))
	got := recordOf(t, messageOf(e))
	if got.key != want.key || got.value != want.value || !slices.Equal(got.headers, want.headers) {
		t.Fatalf("record differs from the SDK's\n got: %q %q %q\nwant: %q %q %q", got.key, got.value, got.headers, want.key, want.value, want.headers)
	}
}

func TestMessageOfWritesTheSDKsRecord(t *testing.T) {
	full := cloudevents.New()
	full.SetID("e-1")
	full.SetSource("https://example.com/app?x=1#f")
	full.SetType("io.trustplane.trace.v1")
	full.SetSubject("subject")
	full.SetTime(time.Date(2026, 11, 30, 1, 2, 3, 456789000, time.FixedZone("x", 3600)))
	full.SetDataSchema("https://example.com/schema.json")
	full.SetExtension("partitionkey", "trace-1")
	full.SetExtension("tenantid", "t")
	full.SetExtension("count", 42)
	full.SetExtension("flag", true)
	full.SetExtension("ingesttime", time.Date(2026, 11, 30, 0, 0, 0, 1, time.UTC))
	full.SetExtension("ref", types.URIRef{})
	if err := full.SetData("application/json", map[string]any{"id": "trace-1"}); err != nil {
		t.Fatal(err)
	}

	minimal := cloudevents.New()
	minimal.SetID("e-2")
	minimal.SetSource("/relative")
	minimal.SetType("t")

	noData := full.Clone()
	noData.DataEncoded = nil
	emptySubject := minimal.Clone()
	emptySubject.SetSubject("")
	zeroTime := minimal.Clone()
	// As a structured event's "time":"0001-01-01T00:00:00Z" reads: the SDK writes no ce_time.
	zeroTime.Context.(*cloudevents.EventContextV1).Time = &types.Timestamp{}

	// Written into the map directly, as SetExtension (which lower-cases) would not: the SDK
	// finds the record's key regardless of case.
	mixedCase := minimal.Clone()
	mixedCase.Context.(*cloudevents.EventContextV1).Extensions = map[string]any{"PartitionKey": "k"}

	v03 := full.Clone()
	v03.SetSpecVersion(cloudevents.CloudEventsVersionV03)

	for name, e := range map[string]cloudevents.Event{
		"every attribute": full, "required only": minimal, "no data": noData,
		"blank subject": emptySubject, "zero time": zeroTime, "spec 0.3": v03, "key in mixed case": mixedCase,
	} {
		t.Run(name, func(t *testing.T) {
			if err := e.Validate(); err != nil {
				t.Fatalf("test event is invalid: %v", err)
			}
			sameRecord(t, &e)
		})
	}
	// The check itself can fail: a record without its key differs.
	if r := recordOf(t, messageOf(&full)); r.key != "trace-1" || !slices.Contains(r.headers, "ce_subject=subject") || !strings.Contains(r.value, "trace-1") {
		t.Fatalf("record of the full event: %+v", r)
	}
}

func FuzzMessageOf(f *testing.F) {
	f.Add("e-1", "/src", "type", "subj", "https://s/x", "partitionkey", "k", []byte(`{"a":1}`), int64(0))
	f.Add("e-1", "https://a/b?c#d", "t", "", "", "Ext", "", []byte(nil), int64(1e18))
	f.Fuzz(func(t *testing.T, id, source, typ, subject, schema, ext, extValue string, data []byte, unixNano int64) {
		e := cloudevents.New()
		e.SetID(id)
		e.SetSource(source)
		e.SetType(typ)
		if subject != "" {
			e.SetSubject(subject)
		}
		if schema != "" {
			e.SetDataSchema(schema)
		}
		if unixNano != 0 {
			e.SetTime(time.Unix(0, unixNano))
		}
		if ext != "" {
			e.SetExtension(ext, extValue) // an invalid name fails Validate below
		}
		if len(data) > 0 {
			e.DataEncoded = data
		}
		if e.Validate() != nil {
			return // the producer refuses these before writing them
		}
		sameRecord(t, &e)
	})
}

// benchMessageData is an LLM generation of about 600 bytes, as ingest sees them.
const benchMessageData = `{"id":"obs-1","trace_id":"trace-1","type":"GENERATION","name":"chat","start_time":"2026-11-29T10:00:00Z","end_time":"2026-11-29T10:00:01.2Z",` +
	`"model":"gpt-4o-mini","input":[{"role":"user","content":"What is the capital of France? Answer in one word, please."}],` +
	`"output":{"role":"assistant","content":"Paris."},"usage":{"prompt_tokens":21,"completion_tokens":2,"total_tokens":23},` +
	`"cost":{"input":0.00000315,"output":0.0000012,"total":0.00000435},"metadata":{"route":"/v1/chat/completions","region":"eu-west-1"}}`

// BenchmarkMessageOf is the binding message ingest and router produce with against the SDK's
// binding.ToMessage, each written into a producer message as the producer writes it, on a
// 600-byte observation with the attributes ingest stamps.
// Run with: go test -run '^$' -bench BenchmarkMessageOf ./kafka/
func BenchmarkMessageOf(b *testing.B) {
	e := cloudevents.New()
	e.SetID("evt-1")
	e.SetSource("/app")
	e.SetType("io.trustplane.telemetry.observation.v1")
	e.SetTime(time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC))
	for k, v := range map[string]string{"tenantid": "acme", "projectid": "web", "keyid": "k1",
		"partitionkey": "trace-1", "ingesttime": "2026-11-29T10:00:01.5Z"} {
		e.SetExtension(k, v)
	}
	e.SetDataContentType("application/json")
	e.DataEncoded = []byte(benchMessageData)
	if err := e.Validate(); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		message func(*cloudevents.Event) binding.Message
	}{{"fast", messageOf}, {"library", func(e *cloudevents.Event) binding.Message { return binding.ToMessage(e) }}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(e.DataEncoded)))
			var msg sarama.ProducerMessage
			for b.Loop() {
				msg = sarama.ProducerMessage{}
				if err := kafka_sarama.WriteProducerMessage(ctx, c.message(&e), &msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
