package ingest

import (
	"errors"
	"fmt"
	"time"

	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/functions/runtime"
	"github.com/trustplane/trustplane/kafka"
)

// Config is ingest's configuration, read from the environment. Its defaults are the tags.
type Config struct {
	runtime.Common
	authclient.ClientConfig
	kafka.ProducerConfig
	Limits

	// RetryAfter is what a 503 tells clients to wait before retrying.
	RetryAfter time.Duration `envconfig:"RETRY_AFTER" default:"2s"`
	// PricesFile holds the model prices (a `prices:` map, such as router's routing file) that
	// price the generations mapped from OTLP spans. Empty: generations carry no cost.
	PricesFile string `envconfig:"PRICES_FILE"`
}

// Validate checks the configuration.
func (c Config) Validate() error {
	errs := []error{c.Common.Validate(), c.ClientConfig.Validate(), c.ProducerConfig.Validate()}
	if c.MaxConcurrentRequests < 1 {
		errs = append(errs, fmt.Errorf("MAX_CONCURRENT_REQUESTS must be at least 1, got %d", c.MaxConcurrentRequests))
	}
	if c.ClientTimeout < time.Second {
		errs = append(errs, fmt.Errorf("CLIENT_TIMEOUT must be at least 1s, got %s", c.ClientTimeout))
	}
	if c.RetryAfter < time.Second {
		errs = append(errs, fmt.Errorf("RETRY_AFTER must be at least 1s, got %s", c.RetryAfter))
	}
	errs = append(errs, c.Limits.Validate())
	return errors.Join(errs...)
}

// Limits bound what one request may carry.
type Limits struct {
	// MaxEventBytes bounds one event: its JSON in structured and batch mode, its body plus
	// ce- headers in binary mode.
	MaxEventBytes int64 `envconfig:"MAX_EVENT_BYTES" default:"262144"`
	// MaxRequestBytes bounds a request body.
	MaxRequestBytes int64 `envconfig:"MAX_REQUEST_BYTES" default:"5242880"`
	// MaxBatchEvents bounds the events of one batch.
	MaxBatchEvents int `envconfig:"MAX_BATCH_EVENTS" default:"1000"`
	// MaxBatchSpans bounds the spans of one OTLP export. Each span becomes an event held
	// until Kafka acknowledged it, so it bounds memory as MaxBatchEvents does; it is higher,
	// since SDKs and collectors batch spans by the thousand (the SDKs' default is 512).
	MaxBatchSpans int `envconfig:"MAX_BATCH_SPANS" default:"10000"`
	// MaxConcurrentRequests bounds the requests whose bodies are read and processed at once;
	// others wait their turn before their body is read. It bounds memory: a batch holds its
	// body, its decoded events and their Kafka records until Kafka acknowledged them. 0 (in
	// tests) means no bound.
	MaxConcurrentRequests int `envconfig:"MAX_CONCURRENT_REQUESTS" default:"32"`
	// ClientTimeout bounds the time a request's body takes to arrive once its turn came (and
	// the time an early answer waits for the rest of a body), and the time the client takes to
	// read an answer given during its turn, so that a client that stalls cannot hold one of
	// MAX_CONCURRENT_REQUESTS (or a connection) forever. 0 (in tests) means no bound.
	ClientTimeout time.Duration `envconfig:"CLIENT_TIMEOUT" default:"30s"`
}

// MaxEventBytesLimit is the largest MAX_EVENT_BYTES whose events Kafka always takes: past the
// producer's message size an event is refused, and answered 503 ("retry later") on every retry
// instead of 413. A record holds the event's data and attributes (at most the event's size) plus
// what ingest stamps on it (tenant, project, key id, ingest time, and the partition key, an id of
// at most 128 bytes, as header and record key); 64 KiB is ample room for those and the framing.
var MaxEventBytesLimit = int64(kafka.NewConfig("").Producer.MaxMessageBytes - 64<<10)

// Validate checks the limits are usable.
func (l Limits) Validate() error {
	var errs []error
	if l.MaxEventBytes < 1024 {
		errs = append(errs, fmt.Errorf("MAX_EVENT_BYTES must be at least 1024, got %d", l.MaxEventBytes))
	}
	if l.MaxEventBytes > MaxEventBytesLimit {
		errs = append(errs, fmt.Errorf("MAX_EVENT_BYTES must be at most %d (what a Kafka message always carries), got %d", MaxEventBytesLimit, l.MaxEventBytes))
	}
	if l.MaxRequestBytes < l.MaxEventBytes {
		errs = append(errs, fmt.Errorf("MAX_REQUEST_BYTES (%d) must be at least MAX_EVENT_BYTES (%d)", l.MaxRequestBytes, l.MaxEventBytes))
	}
	if l.MaxBatchEvents < 1 {
		errs = append(errs, fmt.Errorf("MAX_BATCH_EVENTS must be at least 1, got %d", l.MaxBatchEvents))
	}
	if l.MaxBatchSpans < 1 {
		errs = append(errs, fmt.Errorf("MAX_BATCH_SPANS must be at least 1, got %d", l.MaxBatchSpans))
	}
	return errors.Join(errs...)
}
