package runtime

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/trustplane/trustplane/internal/testsupport"
)

// A failure repeated a thousand times is three lines: the first at once, then one per interval
// with the count, the latest occurrence's details; a quiet interval ends the run, and the next
// failure is logged at once again.
func TestRepeatedLogLogsOncePerInterval(t *testing.T) {
	var out testsupport.Log
	r := NewRepeatedLog(out.Logger(), slog.LevelError, "insert failed", time.Minute)
	var ends []func() // the intervals' ends, run by the test instead of a clock
	r.after = func(d time.Duration, f func()) {
		if d != time.Minute {
			t.Errorf("interval %s, want 1m", d)
		}
		ends = append(ends, f)
	}
	var wg sync.WaitGroup
	for i := range 600 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Log("attempt", i)
		}()
	}
	wg.Wait()
	if lines := out.Lines(); len(lines) != 1 || lines[0]["msg"] != "insert failed" || lines[0]["repeated"] != nil {
		t.Fatalf("after 600 failures in one interval: %v, want the first one only", lines)
	}
	ends[0]() // the first interval ends: 599 more
	for i := range 400 {
		r.Log("attempt", 600+i)
	}
	ends[1]() // the second: 400 more, the last of them attempt 999
	ends[2]() // a quiet interval: the run ends, nothing is logged
	lines := out.Lines()
	if len(lines) != 3 {
		t.Fatalf("%d lines for 1000 failures over three intervals, want 3: %v", len(lines), lines)
	}
	if lines[1]["repeated"] != 599.0 || lines[1]["interval"] != "1m0s" {
		t.Errorf("first interval's line %v, want repeated 599", lines[1])
	}
	if lines[2]["repeated"] != 400.0 || lines[2]["attempt"] != 999.0 || lines[2]["level"] != "ERROR" {
		t.Errorf("second interval's line %v, want repeated 400 with the latest failure's attributes", lines[2])
	}
	if len(ends) != 3 {
		t.Fatalf("%d intervals started, want 3 (none after the quiet one)", len(ends))
	}
	r.Log("attempt", 1000)
	if lines := out.Lines(); len(lines) != 4 || lines[3]["attempt"] != 1000.0 || lines[3]["repeated"] != nil {
		t.Fatalf("a failure after the run ended was not logged at once: %v", lines)
	}
}

// Below the logger's level nothing is counted or scheduled.
func TestRepeatedLogBelowTheLevelIsSilent(t *testing.T) {
	var out testsupport.Log
	r := NewRepeatedLog(slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn})), slog.LevelInfo, "retrying", time.Minute)
	r.after = func(time.Duration, func()) { t.Error("an interval started for a line below the level") }
	r.Log("n", 1)
	if lines := out.Lines(); len(lines) != 0 {
		t.Fatalf("lines %v", lines)
	}
}
