package dispatcher

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/rickb777/date/period"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

// DefaultTimeout is the per-request timeout when a delivery spec sets none; the Kafka broker's
// data plane uses the same ten minutes.
const DefaultTimeout = 10 * time.Minute

// defaultRetryAfterMax bounds a subscriber's Retry-After when the delivery spec has no
// retryAfterMax, so that a bad header cannot stall a partition for hours.
const defaultRetryAfterMax = time.Minute

// Subscribers maps a subscriber to the local base URL it listens on: a Knative Service by
// name ("persist") or by "namespace/name", or an absolute URI by its text (to redirect it).
type Subscribers map[string]*url.URL

// ParseSubscribers reads "name=url,name=url" (the DISPATCHER_SUBSCRIBERS format).
func ParseSubscribers(s string) (Subscribers, error) {
	subs := Subscribers{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, raw, ok := strings.Cut(item, "=")
		name, raw = strings.TrimSpace(name), strings.TrimSpace(raw)
		if !ok || name == "" || raw == "" {
			return nil, fmt.Errorf("subscriber %q: want name=http://host:port", item)
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("subscriber %q: %q is not an absolute http(s) URL", name, raw)
		}
		if _, dup := subs[name]; dup {
			return nil, fmt.Errorf("subscriber %q given twice", name)
		}
		subs[name] = u
	}
	return subs, nil
}

// Resolve turns a Destination into a URL, as Knative's addressable resolver would in a
// cluster: a ref is looked up by namespace/name then name, and a relative uri is resolved
// against it; an absolute uri is used as is unless the map redirects it.
func (s Subscribers) Resolve(namespace string, d duckv1.Destination) (*url.URL, error) {
	if d.Ref == nil {
		if d.URI == nil || !d.URI.URL().IsAbs() {
			return nil, errors.New("destination has neither ref nor absolute uri")
		}
		if u, ok := s[d.URI.String()]; ok {
			return u, nil
		}
		return d.URI.URL(), nil
	}
	ns := d.Ref.Namespace
	if ns == "" {
		ns = namespace
	}
	base, ok := s[ns+"/"+d.Ref.Name]
	if !ok {
		base, ok = s[d.Ref.Name]
	}
	if !ok {
		return nil, fmt.Errorf("%s %s/%s has no local URL: add %s=http://127.0.0.1:PORT to DISPATCHER_SUBSCRIBERS",
			d.Ref.Kind, ns, d.Ref.Name, d.Ref.Name)
	}
	if d.URI != nil {
		return base.ResolveReference(d.URI.URL()), nil
	}
	return base, nil
}

// delivery is a Trigger's delivery spec in the form the dispatcher uses.
type delivery struct {
	retry         int
	policy        eventingduckv1.BackoffPolicyType
	delay         time.Duration
	timeout       time.Duration
	retryAfterMax time.Duration
	deadLetter    *duckv1.Destination
}

func newDelivery(spec *eventingduckv1.DeliverySpec) (delivery, error) {
	d := delivery{policy: eventingduckv1.BackoffPolicyExponential, timeout: DefaultTimeout, retryAfterMax: defaultRetryAfterMax}
	if spec == nil {
		return d, nil
	}
	if spec.Retry != nil {
		d.retry = int(*spec.Retry)
	}
	if spec.BackoffPolicy != nil {
		d.policy = *spec.BackoffPolicy
	}
	var err error
	if d.delay, err = isoDuration(spec.BackoffDelay, 0); err != nil {
		return d, fmt.Errorf("backoffDelay: %w", err)
	}
	if d.timeout, err = isoDuration(spec.Timeout, DefaultTimeout); err != nil {
		return d, fmt.Errorf("timeout: %w", err)
	}
	// An explicit retryAfterMax of zero turns Retry-After off, as in Knative.
	if d.retryAfterMax, err = isoDuration(spec.RetryAfterMax, 0); spec.RetryAfterMax == nil {
		d.retryAfterMax = defaultRetryAfterMax
	} else if err != nil {
		return d, fmt.Errorf("retryAfterMax: %w", err)
	}
	d.deadLetter = spec.DeadLetterSink
	return d, nil
}

func isoDuration(s *string, def time.Duration) (time.Duration, error) {
	if s == nil {
		return def, nil
	}
	p, err := period.Parse(*s)
	if err != nil {
		return 0, fmt.Errorf("%q is not an ISO-8601 duration: %w", *s, err)
	}
	d := p.DurationApprox()
	if d <= 0 && def > 0 {
		return def, nil
	}
	return d, nil
}

// backoff is the wait before retry n (1-based), as the Kafka broker computes it: linear
// delay*n, exponential delay*2^n, and no wait without a backoffDelay.
func (d delivery) backoff(n int) time.Duration {
	if d.delay <= 0 {
		return 0
	}
	if d.policy == eventingduckv1.BackoffPolicyLinear {
		return d.delay * time.Duration(n)
	}
	f := float64(d.delay) * math.Pow(2, float64(n))
	if f > float64(math.MaxInt64) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(f)
}

// deliverySpecFor picks the Trigger's delivery spec, or its Broker's when it has none, as the
// Kafka broker's control plane does.
func deliverySpecFor(t *eventingv1.Trigger, brokers []*eventingv1.Broker) *eventingduckv1.DeliverySpec {
	if t.Spec.Delivery != nil {
		return t.Spec.Delivery
	}
	for _, b := range brokers {
		if b.Namespace == t.Namespace && b.Name == t.Spec.Broker {
			return b.Spec.Delivery
		}
	}
	return nil
}
