package kafkatest

import (
	"testing"

	"github.com/IBM/sarama"
)

func TestStartAnswersMetadata(t *testing.T) {
	b := Start(t)
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	client, err := sarama.NewClient(b.Addrs(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if got := len(client.Brokers()); got != 1 {
		t.Fatalf("brokers = %d, want 1", got)
	}
}
