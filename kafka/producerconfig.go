package kafka

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// ProducerConfig is the environment of a function that produces events to the broker topic.
// Embed it (anonymously, so the variable names stay KAFKA_*) in the function's config and call
// its Validate from the function's Validate.
type ProducerConfig struct {
	KafkaBrokers []string `envconfig:"KAFKA_BROKERS" required:"true"`
	KafkaTopic   string   `envconfig:"KAFKA_TOPIC" default:"trustplane-events"`
}

// Validate checks the settings.
func (c ProducerConfig) Validate() error {
	var errs []error
	if len(c.KafkaBrokers) == 0 {
		errs = append(errs, errors.New("KAFKA_BROKERS must name at least one broker"))
	}
	if c.KafkaTopic == "" {
		errs = append(errs, errors.New("KAFKA_TOPIC must not be empty"))
	}
	return errors.Join(errs...)
}

// NewProducer builds the producer cfg describes, its metrics registered with reg (nil: not
// registered). opts come after the configured topic and registerer, so they may override them.
func NewProducer(cfg ProducerConfig, reg prometheus.Registerer, opts ...Option) (*AsyncProducer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	all := []Option{WithTopic(cfg.KafkaTopic)}
	if reg != nil {
		all = append(all, WithRegisterer(reg))
	}
	return NewAsyncProducer(cfg.KafkaBrokers, append(all, opts...)...)
}
