package kafka

import (
	"strings"
	"testing"

	"github.com/IBM/sarama"
)

func rec(value string, headers ...string) *sarama.ConsumerMessage {
	m := &sarama.ConsumerMessage{Topic: "t", Value: []byte(value)}
	for i := 0; i+1 < len(headers); i += 2 {
		m.Headers = append(m.Headers, &sarama.RecordHeader{Key: []byte(headers[i]), Value: []byte(headers[i+1])})
	}
	return m
}

func TestEventFromRecordDecodesBothModes(t *testing.T) {
	binary := rec(`{"n":1}`,
		"ce_specversion", "1.0", "ce_id", "1", "ce_source", "urn:x", "ce_type", "t.v1",
		"ce_partitionkey", "trace-1", "content-type", "application/json")
	structured := rec(`{"specversion":"1.0","id":"1","source":"urn:x","type":"t.v1","partitionkey":"trace-1","datacontenttype":"application/json","data":{"n":1}}`,
		"content-type", "application/cloudevents+json")
	for name, r := range map[string]*sarama.ConsumerMessage{"binary": binary, "structured": structured} {
		t.Run(name, func(t *testing.T) {
			ev, err := EventFromRecord(r)
			if err != nil {
				t.Fatal(err)
			}
			if ev.ID() != "1" || ev.Source() != "urn:x" || ev.Type() != "t.v1" || string(ev.Data()) != `{"n":1}` {
				t.Errorf("decoded %s", ev)
			}
			if ev.Extensions()["partitionkey"] != "trace-1" {
				t.Errorf("partitionkey = %v", ev.Extensions()["partitionkey"])
			}
			for _, synthetic := range []string{"kafkaoffset", "kafkapartition", "kafkatopic"} {
				if _, ok := ev.Extensions()[synthetic]; ok {
					t.Errorf("extension %s added", synthetic)
				}
			}
		})
	}
}

func TestEventFromRecordRejectsGarbage(t *testing.T) {
	cases := map[string]struct {
		rec  *sarama.ConsumerMessage
		want string
	}{
		"nil":                 {nil, "nil record"},
		"plain bytes":         {rec("hello"), "not a CloudEvent"},
		"unknown specversion": {rec("", "ce_specversion", "0.1", "ce_id", "1"), "not a CloudEvent"},
		"binary without id":   {rec("", "ce_specversion", "1.0", "ce_source", "urn:x", "ce_type", "t"), "id"},
		"binary bad time":     {rec("", "ce_specversion", "1.0", "ce_id", "1", "ce_source", "urn:x", "ce_type", "t", "ce_time", "yesterday"), "decode"},
		"structured not json": {rec("{", "content-type", "application/cloudevents+json"), "decode"},
		"structured no type":  {rec(`{"specversion":"1.0","id":"1","source":"urn:x"}`, "content-type", "application/cloudevents+json"), "type"},
		"duplicate header":    {rec("", "ce_specversion", "1.0", "ce_id", "1", "CE_ID", "2", "ce_source", "urn:x", "ce_type", "t"), "appears twice"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			ev, err := EventFromRecord(c.rec)
			if err == nil {
				t.Fatalf("accepted %v", ev)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
		})
	}
}

// FuzzEventFromRecord checks that no record makes EventFromRecord panic, and
// that whatever it accepts is a valid event.
func FuzzEventFromRecord(f *testing.F) {
	f.Add([]byte(`{"n":1}`), "ce_specversion", "1.0", "ce_id", "1", "ce_source", "urn:x", "ce_type", "t")
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"urn:x","type":"t"}`), "content-type", "application/cloudevents+json", "x", "y", "a", "b", "c", "d")
	f.Add([]byte(`[{"specversion":"1.0"}]`), "content-type", "application/cloudevents-batch+json", "", "", "", "", "", "")
	f.Add([]byte{0xff, 0x00}, "ce_specversion", "1.0", "ce_time", "2026-13-01", "ce_source", "%", "ce_type", "")
	f.Fuzz(func(t *testing.T, value []byte, k1, v1, k2, v2, k3, v3, k4, v4 string) {
		ev, err := EventFromRecord(rec(string(value), k1, v1, k2, v2, k3, v3, k4, v4))
		if err != nil {
			return
		}
		if verr := ev.Validate(); verr != nil {
			t.Fatalf("accepted an invalid event: %v", verr)
		}
	})
}
