package dispatcher

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

func TestRestartResumesFromCommittedOffsets(t *testing.T) {
	e := newEnv(t, 1)
	var hang sync.Map // id -> true while the subscriber hangs on it
	hang.Store("evt-06", true)
	sub := newSubscriber(t, func(w http.ResponseWriter, r *http.Request, ev *cloudevents.Event, _ int) {
		if _, ok := hang.Load(ev.ID()); ok {
			<-r.Context().Done() // never answers: the dispatcher gives up when it stops
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	manifest := triggerYAML("persist", telemetryFilter, "    retry: 3\n")
	var events []cloudevents.Event
	for i := 1; i <= 10; i++ {
		events = append(events, newEvent(fmt.Sprintf("evt-%02d", i), "io.trustplane.telemetry.trace.v1", "k"))
	}
	produce(t, e.addrs, e.topic, events...)

	// First run: stopped while evt-06 is in flight, with no grace for it.
	first := startDispatcher(t, e, manifest, sub.URL, func(c *settings) { c.ShutdownGrace = 0 })
	waitFor(t, "evt-06 to be in flight", func() bool { return sub.attemptsOf("evt-06") == 1 })
	first.stop()
	if got := sub.deliveredIDs(); strings.Join(got, ",") != "evt-01,evt-02,evt-03,evt-04,evt-05" {
		t.Fatalf("first run delivered %v", got)
	}

	// Second run, same consumer group: resumes at evt-06, which was never acknowledged.
	hang.Delete("evt-06")
	startDispatcher(t, e, manifest, sub.URL, nil)
	waitFor(t, "the remaining events", func() bool { return len(sub.deliveredIDs()) >= 10 })
	got := sub.deliveredIDs()
	want := make([]string, 10)
	for i := range want {
		want[i] = fmt.Sprintf("evt-%02d", i+1)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("delivered %v, want each of %v once, in order", got, want)
	}
	if n := sub.attemptsOf("evt-06"); n != 2 {
		t.Fatalf("evt-06 attempted %d times, want 2 (cut off, then redelivered)", n)
	}
}

func TestCrashRedeliversUnacknowledgedEvents(t *testing.T) {
	e := newEnv(t, 1)
	var hang atomic.Bool
	hang.Store(true)
	sub := newSubscriber(t, func(w http.ResponseWriter, r *http.Request, ev *cloudevents.Event, _ int) {
		if ev.ID() == "evt-06" && hang.Load() {
			<-r.Context().Done() // the dispatcher dies while waiting for this answer
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	manifest := triggerYAML("persist", telemetryFilter, "    retry: 3\n")
	var events []cloudevents.Event
	for i := 1; i <= 10; i++ {
		events = append(events, newEvent(fmt.Sprintf("evt-%02d", i), "io.trustplane.telemetry.trace.v1", "k"))
	}
	produce(t, e.addrs, e.topic, events...)

	child := startChild(t, e, manifest, sub.URL)
	kill := func() {
		_ = syscall.Kill(-child.Process.Pid, syscall.SIGKILL)
		_ = child.Wait()
	}
	waitFor(t, "evt-06 to be in flight in the child", func() bool { return sub.attemptsOf("evt-06") == 1 })
	kill()
	firstRun := len(sub.deliveredIDs())

	hang.Store(false)
	startDispatcher(t, e, manifest, sub.URL, nil)
	waitFor(t, "evt-10 after the restart", func() bool {
		ids := sub.deliveredIDs()
		return len(ids) > firstRun && ids[len(ids)-1] == "evt-10"
	})
	// At-least-once: whatever was not committed before the crash is delivered again, in order;
	// nothing is skipped. So the deliveries are the first run (evt-01..05), then a replay
	// starting at or before evt-06 and running to evt-10.
	ids := sub.deliveredIDs()
	if strings.Join(ids[:firstRun], ",") != "evt-01,evt-02,evt-03,evt-04,evt-05" {
		t.Fatalf("before the crash: %v", ids[:firstRun])
	}
	replay := ids[firstRun:]
	first, _ := strconv.Atoi(strings.TrimPrefix(replay[0], "evt-"))
	if first > 6 {
		t.Fatalf("after the crash delivery resumed at %s: evt-06 was skipped (%v)", replay[0], ids)
	}
	for i, id := range replay {
		if want := fmt.Sprintf("evt-%02d", first+i); id != want {
			t.Fatalf("after the crash: %v, want an in-order replay from evt-%02d to evt-10", replay, first)
		}
	}
	if n := sub.attemptsOf("evt-06"); n != 2 {
		t.Fatalf("evt-06 attempted %d times, want 2", n)
	}
}

func TestDeadLetterSinkFailureKeepsTheOffset(t *testing.T) {
	e := newEnv(t, 1)
	sub := newSubscriber(t, func(w http.ResponseWriter, _ *http.Request, ev *cloudevents.Event, _ int) {
		if ev.ID() == "poison" {
			w.WriteHeader(http.StatusUnprocessableEntity)
		}
	})
	var dlsUp atomic.Bool
	dls := newSubscriber(t, func(w http.ResponseWriter, _ *http.Request, _ *cloudevents.Event, _ int) {
		if !dlsUp.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	manifest := strings.Replace(triggerYAML("persist", telemetryFilter, "    retry: 1\n"),
		"      ref: {apiVersion: eventing.kafka.knative.dev/v1alpha1, kind: KafkaSink, name: dlq}",
		"      uri: "+dls.URL, 1)
	produce(t, e.addrs, e.topic,
		newEvent("first", "io.trustplane.telemetry.trace.v1", "k"),
		newEvent("poison", "io.trustplane.telemetry.trace.v1", "k"),
		newEvent("last", "io.trustplane.telemetry.trace.v1", "k"))

	// The dead-letter sink is down: the dispatcher keeps the poison event, commits nothing
	// past it, and does not move on to the next event.
	first := startDispatcher(t, e, manifest, sub.URL, nil)
	waitFor(t, "the dead-letter sink to be tried twice", func() bool { return dls.attemptsOf("poison") >= 2 })
	first.stop()
	if got := sub.deliveredIDs(); strings.Join(got, ",") != "first" {
		t.Fatalf("delivered %v while the dead-letter sink was down, want only [first]", got)
	}
	if committed := committedOffset(t, e); committed != 1 {
		t.Fatalf("committed offset = %d, want 1 (just past first, not past poison)", committed)
	}

	// Once the sink is back, the poison event reaches it and delivery goes on.
	dlsUp.Store(true)
	startDispatcher(t, e, manifest, sub.URL, nil)
	waitFor(t, "the last event", func() bool { return len(sub.deliveredIDs()) == 2 })
	if got := sub.deliveredIDs(); got[1] != "last" {
		t.Fatalf("delivered %v", got)
	}
	dls.mu.Lock()
	defer dls.mu.Unlock()
	if len(dls.delivered) != 1 || dls.delivered[0].ID() != "poison" || dls.delivered[0].Extensions()["knativeerrorcode"] != "422" {
		t.Fatalf("dead-letter sink received %v", dls.delivered)
	}
}

func TestUnorderedDeliveryCommitsInOrder(t *testing.T) {
	e := newEnv(t, 1)
	var hang atomic.Bool
	hang.Store(true)
	sub := newSubscriber(t, func(w http.ResponseWriter, r *http.Request, ev *cloudevents.Event, _ int) {
		if ev.ID() == "evt-03" && hang.Load() {
			<-r.Context().Done()
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	manifest := strings.Replace(triggerYAML("persist", telemetryFilter, "    retry: 1\n"),
		"delivery.order: ordered", "delivery.order: unordered", 1)
	var events []cloudevents.Event
	for i := 0; i < 10; i++ {
		events = append(events, newEvent(fmt.Sprintf("evt-%02d", i), "io.trustplane.telemetry.trace.v1", "k"))
	}
	produce(t, e.addrs, e.topic, events...)

	// evt-03 never answers, yet the events after it on the same partition are delivered.
	first := startDispatcher(t, e, manifest, sub.URL, func(c *settings) { c.ShutdownGrace = 0 })
	waitFor(t, "every event but evt-03", func() bool { return len(sub.deliveredIDs()) == 9 })
	for _, id := range sub.deliveredIDs() {
		if id == "evt-03" {
			t.Fatal("evt-03 was delivered")
		}
	}
	first.stop()

	// The commit point stayed at evt-03.
	if committed := committedOffset(t, e); committed != 3 {
		t.Fatalf("committed offset = %d, want 3 (evt-03 unfinished)", committed)
	}

	// After a restart evt-03 is delivered (and the ones after it again: at-least-once).
	hang.Store(false)
	startDispatcher(t, e, manifest, sub.URL, nil)
	waitFor(t, "evt-03 after the restart", func() bool {
		for _, id := range sub.deliveredIDs() {
			if id == "evt-03" {
				return true
			}
		}
		return false
	})
}
