package kafkatest

import (
	"strconv"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
)

// NewEvent returns a valid event, the i-th of a test, whose partitionkey is trace.
func NewEvent(i int, trace string) cloudevents.Event {
	e := cloudevents.New()
	e.SetID("evt-" + strconv.Itoa(i))
	e.SetSource("urn:trustplane:test")
	e.SetType("ai.trustplane.span.v1")
	e.SetSubject("trace/" + trace)
	e.SetTime(time.Date(2026, 11, 29, 12, 0, 0, i, time.UTC))
	e.SetExtension("partitionkey", trace)
	e.SetExtension("tenant", "t1")
	if err := e.SetData("application/json", map[string]any{"n": i, "trace": trace}); err != nil {
		panic(err)
	}
	return e
}
