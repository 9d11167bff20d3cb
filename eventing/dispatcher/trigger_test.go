package dispatcher

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trustplane/trustplane/functions/runtime"
)

func TestResolveDestinations(t *testing.T) {
	subs, err := ParseSubscribers("persist=http://127.0.0.1:8082,https://guard.example/in=http://127.0.0.1:9000/x")
	if err != nil {
		t.Fatal(err)
	}
	dec := func(y string) *Manifests {
		m, err := DecodeManifests(context.Background(), "t.yaml", []byte(y))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	base := strings.Replace(validTrigger, "      name: persist\n", "      name: persist\n    uri: /batch\n", 1)
	m := dec(base)
	u, err := subs.Resolve("default", m.Triggers[0].Spec.Subscriber)
	if err != nil || u.String() != "http://127.0.0.1:8082/batch" {
		t.Fatalf("ref + relative uri = %v, %v", u, err)
	}
	withURI := strings.Replace(validTrigger, "    ref:\n      apiVersion: serving.knative.dev/v1\n      kind: Service\n      name: persist\n", "    uri: https://guard.example/in\n", 1)
	m = dec(withURI)
	u, err = subs.Resolve("default", m.Triggers[0].Spec.Subscriber)
	if err != nil || u.String() != "http://127.0.0.1:9000/x" {
		t.Fatalf("redirected absolute uri = %v, %v", u, err)
	}
	plain, _ := url.Parse("https://other.example/")
	m = dec(strings.Replace(withURI, "https://guard.example/in", plain.String(), 1))
	u, err = subs.Resolve("default", m.Triggers[0].Spec.Subscriber)
	if err != nil || u.String() != plain.String() {
		t.Fatalf("absolute uri = %v, %v", u, err)
	}
}

func TestBackoffAndRetryAfter(t *testing.T) {
	lin := delivery{policy: "linear", delay: 100 * time.Millisecond}
	exp := delivery{policy: "exponential", delay: 100 * time.Millisecond}
	for n, want := range map[int][2]time.Duration{1: {100 * time.Millisecond, 200 * time.Millisecond}, 3: {300 * time.Millisecond, 800 * time.Millisecond}} {
		if got := lin.backoff(n); got != want[0] {
			t.Errorf("linear backoff(%d) = %v, want %v", n, got, want[0])
		}
		if got := exp.backoff(n); got != want[1] {
			t.Errorf("exponential backoff(%d) = %v, want %v", n, got, want[1])
		}
	}
	if got := (delivery{}).backoff(4); got != 0 {
		t.Errorf("no backoffDelay: backoff = %v, want 0", got)
	}
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"": 0, "7": 7 * time.Second, "-3": 0, "soon": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
	} {
		if got := runtime.RetryAfter(http.Header{"Retry-After": {v}}, now); got != want {
			t.Errorf("Retry-After %q = %v, want %v", v, got, want)
		}
	}
	// A number of seconds too large for a Duration is the longest wait, which retryAfterMax
	// then caps, not a product that wrapped around to a short or negative wait.
	if got := runtime.RetryAfter(http.Header{"Retry-After": {"10000000000"}}, now); got < time.Hour {
		t.Errorf("Retry-After 10000000000 = %v, want the longest wait", got)
	}
}
