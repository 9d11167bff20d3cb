package dispatcher

import (
	"strings"
	"testing"
	"time"

	"github.com/trustplane/trustplane/functions/runtime"
	"github.com/trustplane/trustplane/kafka"
)

func TestConfigDefaults(t *testing.T) {
	t.Setenv("KAFKA_BROKERS", " 127.0.0.1:9092, ,127.0.0.1:9093")
	var cfg Config
	if err := runtime.LoadConfig(&cfg); err != nil {
		t.Fatal(err)
	}
	s := cfg.settings(nil, nil, nil)
	if strings.Join(s.Brokers, ",") != "127.0.0.1:9092,127.0.0.1:9093" {
		t.Errorf("brokers = %q", s.Brokers)
	}
	// The topics are the ones the kafka package creates.
	if s.Topic != kafka.DefaultTopic || s.DeadLetterTopic != kafka.DefaultDeadLetterTopic {
		t.Errorf("topics = %q and %q, want %q and %q", s.Topic, s.DeadLetterTopic, kafka.DefaultTopic, kafka.DefaultDeadLetterTopic)
	}
	if s.GroupPrefix != "trustplane-trigger" || s.UnorderedInFlight != 100 || s.ShutdownGrace != 15*time.Second {
		t.Errorf("settings = %+v", s)
	}
	if cfg.Triggers != "eventing/config" {
		t.Errorf("triggers = %q", cfg.Triggers)
	}
}

func TestConfigValidateNamesEveryBadVariable(t *testing.T) {
	t.Setenv("KAFKA_BROKERS", " , ")
	t.Setenv("DISPATCHER_TRIGGERS", ",")
	t.Setenv("DISPATCHER_SUBSCRIBERS", "persist")
	t.Setenv("DISPATCHER_UNORDERED_IN_FLIGHT", "0")
	var cfg Config
	err := runtime.LoadConfig(&cfg)
	for _, name := range []string{"KAFKA_BROKERS", "DISPATCHER_TRIGGERS", "DISPATCHER_SUBSCRIBERS", "DISPATCHER_UNORDERED_IN_FLIGHT"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error = %v, want one naming %s", err, name)
		}
	}
}
