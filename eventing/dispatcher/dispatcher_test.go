package dispatcher

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/trustplane/trustplane/functions/runtime"
	"github.com/trustplane/trustplane/kafka"
)

func TestNewChecksSubscribersAndDelivery(t *testing.T) {
	t.Setenv("KAFKA_BROKERS", "127.0.0.1:1")
	t.Setenv("DISPATCHER_TRIGGERS", "../config")
	var cfg Config
	if err := runtime.LoadConfig(&cfg); err != nil {
		t.Fatal(err)
	}
	_, err := New(context.Background(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "Trigger trustplane/persist") ||
		!strings.Contains(err.Error(), "persist=http://127.0.0.1:PORT to DISPATCHER_SUBSCRIBERS") {
		t.Fatalf("error = %v, want one saying how to map the persist Service", err)
	}
	m, err := LoadManifests(context.Background(), "../config")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newDispatcher(settings{Subscribers: Subscribers{}, UnorderedInFlight: 1}, m); err == nil {
		t.Fatal("no brokers: no error")
	}

	subs, err := ParseSubscribers("persist=http://127.0.0.1:8082, trustplane/guard=http://127.0.0.1:8083/")
	if err != nil {
		t.Fatal(err)
	}
	d, err := newDispatcher(cfg.settings(subs, nil, nil), m)
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := d.Target("trustplane/persist"); !ok || u.String() != "http://127.0.0.1:8082" {
		t.Fatalf("persist target = %v", u)
	}
	tr := d.triggers[0]
	// persist's Trigger: 80 retries, linear from 1 s.
	if tr.delivery.retry != 80 || tr.delivery.timeout != 30*time.Second || tr.deadLetter != (kafkaDeadLetter{topic: kafka.DefaultDeadLetterTopic}) {
		t.Fatalf("delivery = %+v, dead letter %v", tr.delivery, tr.deadLetter)
	}
	if got := []time.Duration{tr.delivery.backoff(1), tr.delivery.backoff(80)}; got[0] != time.Second || got[1] != 80*time.Second {
		t.Fatalf("linear backoff before retries 1 and 80 = %v, want 1s and 80s", got)
	}

	for _, bad := range []string{"persist", "persist=", "=http://x", "persist=ftp://x", "persist=/relative", "a=http://x,a=http://y"} {
		if _, err := ParseSubscribers(bad); err == nil {
			t.Errorf("ParseSubscribers(%q): no error", bad)
		}
	}
}
