package dispatcher

import (
	"context"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
)

// readRecord is the CloudEvents SDK's reading of a record (binary or structured mode),
// validated; an error means the record is not a valid CloudEvent. As in the Kafka broker, the
// event carries the kafkaoffset, kafkapartition and kafkatopic extensions the binding adds.
func readRecord(ctx context.Context, msg *sarama.ConsumerMessage) (*cloudevents.Event, error) {
	ev, err := binding.ToEvent(ctx, kafka_sarama.NewMessageFromConsumerMessage(msg))
	if err == nil {
		err = ev.Validate()
	}
	if err != nil {
		return nil, err
	}
	return ev, nil
}
