package dispatcher

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/trustplane/trustplane/functions/runtime"
)

const (
	// errorDataMax bounds knativeerrordata, as the Kafka broker does.
	errorDataMax = 1024
	// responseMax bounds how much of a subscriber's response is read (a reply event's size).
	responseMax = 8 << 20
	// errorHeaderPrefix marks response headers copied onto a dead-lettered event.
	errorHeaderPrefix = "kne-"
)

// trigger is one Trigger being dispatched: a consumer group delivering to one subscriber.
type trigger struct {
	d              *Dispatcher
	name, group    string
	filter         *Filter
	target         *url.URL
	delivery       delivery
	deadLetter     deadLetter
	deadLetterName string
	stats          triggerMetrics
	logs           outageLogs
	// unordered delivers up to Config.UnorderedInFlight events of a partition at once.
	unordered bool

	producer sarama.SyncProducer
	requests context.Context // cancelled ShutdownGrace after Run's context
	assigned atomic.Bool
}

func (t *trigger) joined() bool { return t.assigned.Load() }

// outageLogs are a trigger's lines for failures that repeat for every event while a
// subscriber or Kafka is down: each is logged once per runtime.RepeatInterval with a count
// (the metrics count every one), so that an outage is a few lines, not one per event and retry.
type outageLogs struct {
	retrying, deadLettered, dropped, writeRetry, consumer *runtime.RepeatedLog
}

func newOutageLogs(log *slog.Logger) outageLogs {
	every := runtime.RepeatInterval
	return outageLogs{
		retrying:     runtime.NewRepeatedLog(log, slog.LevelInfo, "delivery failed: retrying", every),
		deadLettered: runtime.NewRepeatedLog(log, slog.LevelWarn, "delivery failed: event sent to the dead-letter sink", every),
		dropped:      runtime.NewRepeatedLog(log, slog.LevelError, "delivery failed and the Trigger has no deadLetterSink: event dropped", every),
		writeRetry:   runtime.NewRepeatedLog(log, slog.LevelError, "write failed: will retry; offset not committed", every),
		consumer:     runtime.NewRepeatedLog(log, slog.LevelWarn, "consumer group error", every),
	}
}

func (t *trigger) consume(ctx context.Context, g sarama.ConsumerGroup) {
	for ctx.Err() == nil {
		if err := g.Consume(ctx, []string{t.d.cfg.Topic}, t); err != nil {
			if errors.Is(err, sarama.ErrClosedConsumerGroup) {
				return
			}
			t.d.log.Warn("consumer group session ended", "trigger", t.name, "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// Setup is called by sarama when the group has assigned this member its partitions.
func (t *trigger) Setup(s sarama.ConsumerGroupSession) error {
	t.assigned.Store(true)
	t.d.log.Info("consumer group joined", "trigger", t.name, "group", t.group, "claims", s.Claims())
	return nil
}

// Cleanup is called by sarama at the end of a session.
func (t *trigger) Cleanup(sarama.ConsumerGroupSession) error { return nil }

// ConsumeClaim delivers one partition in order: the next record is taken only once the
// previous one is done, and an offset is marked (committed) only once its record is done.
func (t *trigger) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	if t.unordered {
		return t.consumeUnordered(s, claim)
	}
	ctx := s.Context()
	for {
		select {
		case <-ctx.Done():
			return nil
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			if ctx.Err() != nil {
				return nil // stopping: leave the record for the next session
			}
			if !t.process(ctx, msg) {
				return nil
			}
			s.MarkMessage(msg, "")
		}
	}
}

// DefaultUnorderedInFlight bounds the deliveries of one partition running at once in unordered
// mode, unless Config says otherwise.
const DefaultUnorderedInFlight = 100

// consumeUnordered delivers up to Config.UnorderedInFlight records of the partition at once. Offsets
// still commit in order: an offset is marked only when it and every earlier record are done,
// so a record that never finishes holds the commit point (and is redelivered after a restart,
// with the records after it).
//
// Records go to workers that live for the session: one is started only when every running
// one is busy, so a partition never has more than UnorderedInFlight, and a worker's stack,
// once grown, is reused rather than grown again for every record.
func (t *trigger) consumeUnordered(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	ctx := s.Context()
	var (
		wg      sync.WaitGroup
		work    = make(chan *sarama.ConsumerMessage)
		workers = make(chan struct{}, t.d.cfg.UnorderedInFlight) // one token per worker started
		tracker offsetTracker
	)
	defer wg.Wait()
	defer close(work)
	worker := func(msg *sarama.ConsumerMessage) {
		defer wg.Done()
		for {
			if t.process(ctx, msg) {
				tracker.finish(msg, s)
			}
			var ok bool
			select {
			case <-ctx.Done():
				return
			case msg, ok = <-work:
				if !ok {
					return
				}
			}
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			tracker.start(msg)
			select {
			case work <- msg: // an idle worker took it
				continue
			default:
			}
			select {
			case <-ctx.Done():
				return nil
			case work <- msg:
			case workers <- struct{}{}:
				wg.Add(1)
				go worker(msg)
			}
		}
	}
}

// offsetTracker marks offsets in order while their records finish in any order. It keeps
// offsets, not records: a record that keeps failing holds the commit point for as long as its
// retries last while the records after it are delivered, and each record would keep its whole
// fetched batch in memory until then.
type offsetTracker struct {
	mu      sync.Mutex
	pending []trackedOffset // started and not yet marked, in offset order
}

type trackedOffset struct {
	offset int64
	done   bool
}

func (o *offsetTracker) start(msg *sarama.ConsumerMessage) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.pending = append(o.pending, trackedOffset{offset: msg.Offset})
}

func (o *offsetTracker) finish(msg *sarama.ConsumerMessage, s sarama.ConsumerGroupSession) {
	o.mu.Lock()
	defer o.mu.Unlock()
	i, found := slices.BinarySearchFunc(o.pending, msg.Offset, func(p trackedOffset, off int64) int { return cmp.Compare(p.offset, off) })
	if !found {
		return // not started here (a session's records are started before they finish)
	}
	o.pending[i].done = true
	n := 0
	for n < len(o.pending) && o.pending[n].done {
		n++
	}
	if n > 0 {
		// As MarkMessage does: the committed offset is the next one to read.
		s.MarkOffset(msg.Topic, msg.Partition, o.pending[n-1].offset+1, "")
		o.pending = o.pending[n:]
	}
}

// process handles one record and reports whether it is done (its offset may be committed).
// It is not done only when the dispatcher stops (or the partition is revoked) first.
func (t *trigger) process(ctx context.Context, msg *sarama.ConsumerMessage) bool {
	ev, err := readRecord(ctx, msg)
	if err != nil {
		attrs := t.recordAttrs(msg)
		t.d.log.Error("record is not a valid CloudEvent: copying it to the dead-letter topic", append(attrs, "error", err)...)
		if !t.retryUntilDone(ctx, attrs, "copy invalid record", func() error { return t.copyInvalid(msg, err) }) {
			return false
		}
		t.stats.invalid.Inc()
		return true
	}
	if !t.filter.Match(ev) {
		t.stats.filtered.Inc()
		return true
	}

	start := time.Now()
	res, done := t.deliver(ctx, msg, ev)
	if !done {
		return false
	}
	if res.ok() {
		if res.reply != nil {
			reply := res.reply
			if !t.retryUntilDone(ctx, t.eventAttrs(msg, ev), "produce reply", func() error {
				return t.d.produce(ctx, t.producer, t.d.cfg.Topic, reply, msg.Key)
			}) {
				return false
			}
			t.stats.replies.Inc()
		}
		t.stats.delivered.Inc()
		t.stats.latency.WithLabelValues("delivered").Observe(time.Since(start).Seconds())
		return true
	}

	attrs := t.eventAttrs(msg, ev)
	failure := append(attrs[:len(attrs):len(attrs)], "status", res.status, "error", res.err)
	if t.deadLetter == nil {
		// Knative's behaviour without a dead-letter sink.
		t.logs.dropped.Log(failure...)
		t.stats.dropped.Inc()
		return true
	}
	dead := t.deadLetterEvent(ev, res)
	if !t.retryUntilDone(ctx, attrs, "write to dead-letter sink", func() error {
		return t.deadLetter.send(ctx, t, dead, msg.Key)
	}) {
		return false
	}
	t.logs.deadLettered.Log(append(failure, "dead_letter", t.deadLetterName)...)
	t.stats.deadLettered.Inc()
	t.stats.latency.WithLabelValues("dead_lettered").Observe(time.Since(start).Seconds())
	return true
}

// recordAttrs and eventAttrs are the log attributes of one record; built only when something
// is logged, as they cost more than a delivery's other work.
func (t *trigger) recordAttrs(msg *sarama.ConsumerMessage) []any {
	return []any{"trigger", t.name, "partition", msg.Partition, "offset", msg.Offset}
}

func (t *trigger) eventAttrs(msg *sarama.ConsumerMessage, ev *cloudevents.Event) []any {
	return append(t.recordAttrs(msg), "event_id", ev.ID(), "event_type", ev.Type())
}

// retryUntilDone runs fn (a write to Kafka or to the dead-letter sink) until it succeeds;
// false means the dispatcher stopped first, and the record stays uncommitted. attrs name the
// record in the log.
func (t *trigger) retryUntilDone(ctx context.Context, attrs []any, what string, fn func() error) bool {
	wait := 100 * time.Millisecond
	for {
		err := fn()
		if err == nil {
			return true
		}
		t.logs.writeRetry.Log(append(attrs[:len(attrs):len(attrs)], "write", what, "error", err, "retry_in", wait.String())...)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(wait*2, 10*time.Second)
	}
}

// outcome is the result of delivering one event, after retries.
type outcome struct {
	status int // 0 when no response was received
	header http.Header
	body   []byte
	reply  *cloudevents.Event
	err    error
}

func (o outcome) ok() bool { return o.err == nil && o.status >= 200 && o.status < 300 }

// retryable mirrors the Kafka broker: no response at all (connection error, timeout), server
// errors, and 404, 408, 409, 429.
func (o outcome) retryable() bool {
	switch {
	case o.status == 0:
		return true
	case o.status >= 500, o.status == http.StatusNotFound, o.status == http.StatusRequestTimeout,
		o.status == http.StatusConflict, o.status == http.StatusTooManyRequests:
		return true
	}
	return false
}

// deliver sends the event with retries; done is false when the dispatcher stopped before an
// outcome.
func (t *trigger) deliver(ctx context.Context, msg *sarama.ConsumerMessage, ev *cloudevents.Event) (outcome, bool) {
	for n := 0; ; n++ {
		res := t.attempt(ev)
		if t.requests.Err() != nil {
			return res, false // the request was cut off by shutdown, not failed by the subscriber
		}
		if res.ok() || !res.retryable() || n >= t.delivery.retry {
			return res, true
		}
		wait := t.delivery.backoff(n + 1)
		if ra := retryAfter(res.header, time.Now()); ra > wait && t.delivery.retryAfterMax > 0 {
			wait = min(ra, t.delivery.retryAfterMax)
		}
		t.logs.retrying.Log(append(t.eventAttrs(msg, ev), "status", res.status, "error", res.err, "retry", n+1, "wait", wait.String())...)
		t.stats.retries.Inc()
		select {
		case <-ctx.Done():
			return res, false
		case <-time.After(wait):
		}
	}
}

// attempt POSTs the event once in binary mode and reads the response.
func (t *trigger) attempt(ev *cloudevents.Event) outcome {
	ctx, cancel := context.WithTimeout(t.requests, t.delivery.timeout)
	defer cancel()
	// The target was parsed once; the request shares it (nothing on the way changes it).
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "", nil)
	if err != nil {
		return outcome{err: err}
	}
	req.URL, req.Host = t.target, t.target.Host
	req.Header = make(http.Header, 12)
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(ev), req); err != nil {
		return outcome{err: fmt.Errorf("encode event: %w", err)}
	}
	req.Header["Prefer"] = []string{"reply"}
	resp, err := send(t.d.client, req, responseMax)
	if err != nil {
		return outcome{err: err}
	}
	res := outcome{status: resp.status, header: resp.header, body: resp.body}
	if !res.ok() {
		res.err = fmt.Errorf("subscriber answered %d", resp.status)
		return res
	}
	m := cehttp.NewMessageFromHttpResponse(&http.Response{
		StatusCode: resp.status, Header: resp.header, Body: io.NopCloser(bytes.NewReader(resp.body)),
	})
	if m.ReadEncoding() == binding.EncodingUnknown {
		return res // a plain acknowledgement, no reply
	}
	reply, err := binding.ToEvent(ctx, m)
	if err == nil {
		err = reply.Validate()
	}
	if err != nil {
		// The Kafka broker fails the delivery when the reply cannot be read; 502 says the
		// subscriber, not the dispatcher, sent something wrong (and it is not retried).
		res.status, res.err = http.StatusBadGateway, fmt.Errorf("invalid reply event: %w", err)
		return res
	}
	res.reply = reply
	return res
}

// retryAfter reads a Retry-After header (seconds or HTTP date); zero when absent or invalid.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		// Clamped before the multiplication, which would otherwise wrap around.
		return time.Duration(min(max(secs, 0), int(math.MaxInt64/time.Second))) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}

// deadLetterEvent is the original event with the Kafka broker's error extensions.
func (t *trigger) deadLetterEvent(ev *cloudevents.Event, res outcome) *cloudevents.Event {
	dead := ev.Clone()
	dead.SetExtension("knativeerrordest", t.target.String())
	if res.status == 0 {
		return &dead
	}
	for name, values := range res.header {
		lower := strings.ToLower(name)
		ext := strings.TrimPrefix(lower, errorHeaderPrefix)
		if strings.HasPrefix(lower, errorHeaderPrefix) && len(values) > 0 && validExtensionName(ext) {
			dead.SetExtension(ext, values[0])
		}
	}
	dead.SetExtension("knativeerrorcode", strconv.Itoa(res.status))
	if len(res.body) > 0 {
		data := res.body[:min(len(res.body), errorDataMax)]
		dead.SetExtension("knativeerrordata", base64.StdEncoding.EncodeToString(data))
	}
	return &dead
}

// copyInvalid copies a record that is not a CloudEvent to the dead-letter topic unchanged,
// plus a header saying why.
func (t *trigger) copyInvalid(msg *sarama.ConsumerMessage, reason error) error {
	pm := &sarama.ProducerMessage{Topic: t.d.cfg.DeadLetterTopic, Value: sarama.ByteEncoder(msg.Value)}
	if msg.Key != nil {
		pm.Key = sarama.ByteEncoder(msg.Key)
	}
	for _, h := range msg.Headers {
		pm.Headers = append(pm.Headers, *h)
	}
	pm.Headers = append(pm.Headers, sarama.RecordHeader{Key: []byte("trustplane-dispatch-error"), Value: []byte(reason.Error())})
	_, _, err := t.producer.SendMessage(pm)
	return err
}

// produce writes ev to topic in binary mode; the key is its partitionkey extension, else key.
func (d *Dispatcher) produce(ctx context.Context, p sarama.SyncProducer, topic string, ev *cloudevents.Event, key []byte) error {
	pm := &sarama.ProducerMessage{Topic: topic}
	if err := kafka_sarama.WriteProducerMessage(ctx, binding.ToMessage(ev), pm); err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	if pm.Key == nil && key != nil {
		pm.Key = sarama.ByteEncoder(key)
	}
	_, _, err := p.SendMessage(pm)
	return err
}

// deadLetter is where failed events go: the Kafka dead-letter topic or an HTTP endpoint.
type deadLetter interface {
	send(ctx context.Context, t *trigger, ev *cloudevents.Event, key []byte) error
}

type kafkaDeadLetter struct{ topic string }

func (k kafkaDeadLetter) send(ctx context.Context, t *trigger, ev *cloudevents.Event, key []byte) error {
	return t.d.produce(ctx, t.producer, k.topic, ev, key)
}

type httpDeadLetter struct{ url *url.URL }

func (h httpDeadLetter) send(ctx context.Context, t *trigger, ev *cloudevents.Event, _ []byte) error {
	rctx, cancel := context.WithTimeout(ctx, t.delivery.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, h.url.String(), nil)
	if err != nil {
		return err
	}
	if err := cehttp.WriteRequest(rctx, binding.ToMessage(ev), req); err != nil {
		return err
	}
	resp, err := t.d.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, responseMax))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("dead-letter sink %s answered %d", h.url, resp.StatusCode)
	}
	return nil
}

// validExtensionName is the CloudEvents rule: lower-case letters and digits only.
func validExtensionName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}
