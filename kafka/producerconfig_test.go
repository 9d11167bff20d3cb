package kafka

import (
	"strings"
	"testing"

	"github.com/kelseyhightower/envconfig"
)

func TestProducerConfigFromEnvironment(t *testing.T) {
	t.Setenv("KAFKA_BROKERS", "a:9092,b:9092")
	var cfg ProducerConfig
	if err := envconfig.Process("", &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.KafkaBrokers) != 2 || cfg.KafkaTopic != DefaultTopic {
		t.Fatalf("got %+v, want two brokers and topic %s", cfg, DefaultTopic)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestProducerConfigValidate(t *testing.T) {
	err := ProducerConfig{}.Validate()
	for _, want := range []string{"KAFKA_BROKERS", "KAFKA_TOPIC"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	if _, err := NewProducer(ProducerConfig{KafkaTopic: DefaultTopic}, nil); err == nil || !strings.Contains(err.Error(), "KAFKA_BROKERS") {
		t.Errorf("NewProducer without brokers: %v", err)
	}
}
