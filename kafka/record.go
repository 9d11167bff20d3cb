package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cloudevents "github.com/cloudevents/sdk-go/v2/event"
)

// EventFromRecord decodes a record written in the CloudEvents Kafka binding
// (binary or structured mode) back into the event, and rejects records that
// are not valid CloudEvents with an error saying why. The event is exactly
// what the producer sent: unlike kafka_sarama.NewMessageFromConsumerMessage,
// no kafkaoffset/kafkapartition/kafkatopic extensions are added (the caller
// has the record for those).
func EventFromRecord(rec *sarama.ConsumerMessage) (*cloudevents.Event, error) {
	if rec == nil {
		return nil, errors.New("kafka: nil record")
	}
	headers := make(map[string][]byte, len(rec.Headers))
	var contentType string
	for _, h := range rec.Headers {
		if h == nil {
			continue
		}
		k := strings.ToLower(string(h.Key))
		if _, dup := headers[k]; dup {
			return nil, fmt.Errorf("kafka: record %s: header %q appears twice", where(rec), k)
		}
		if k == "content-type" {
			contentType = string(h.Value)
		}
		headers[k] = h.Value
	}
	msg := kafka_sarama.NewMessage(rec.Value, contentType, headers)
	if msg.ReadEncoding() == binding.EncodingUnknown {
		return nil, fmt.Errorf("kafka: record %s is not a CloudEvent: no ce_specversion header of a known version and no structured content type (got content-type %q)", where(rec), contentType)
	}
	ev, err := binding.ToEvent(context.Background(), msg)
	if err != nil {
		return nil, fmt.Errorf("kafka: record %s: decode CloudEvent: %w", where(rec), err)
	}
	if err := ev.Validate(); err != nil {
		return nil, fmt.Errorf("kafka: record %s: invalid CloudEvent: %w", where(rec), err)
	}
	return ev, nil
}

func where(rec *sarama.ConsumerMessage) string {
	return fmt.Sprintf("%s/%d@%d", rec.Topic, rec.Partition, rec.Offset)
}
