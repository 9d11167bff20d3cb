package dispatcher

import (
	"runtime"
	"testing"
	"weak"

	"github.com/IBM/sarama"
)

// A record that keeps failing holds the partition's commit point for as long as its retries
// last (the persist Trigger's: about 54 minutes) while the records after it are delivered. The
// tracker must not keep those records (each one holds its whole fetched batch) until then.
func TestOffsetTrackerLetsGoOfFinishedRecordsBehindAStuckOne(t *testing.T) {
	var tracker offsetTracker
	stuck := &sarama.ConsumerMessage{Topic: "t", Partition: 0, Offset: 0, Value: make([]byte, 1<<10)}
	tracker.start(stuck)
	var finished []weak.Pointer[sarama.ConsumerMessage]
	for off := int64(1); off <= 100; off++ {
		msg := &sarama.ConsumerMessage{Topic: "t", Partition: 0, Offset: off, Value: make([]byte, 1<<10)}
		tracker.start(msg)
		// Nothing is marked while offset 0 is unfinished, so no session is needed.
		tracker.finish(msg, nil)
		finished = append(finished, weak.Make(msg))
	}
	runtime.GC()
	held := 0
	for _, p := range finished {
		if p.Value() != nil {
			held++
		}
	}
	if held > 0 {
		t.Fatalf("the tracker still holds %d of 100 finished records behind the unfinished one", held)
	}
	runtime.KeepAlive(&tracker)
}
