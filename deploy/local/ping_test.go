package main

import (
	"path/filepath"
	"testing"
	"time"
)

// TestPingSourcesOfTheManifests reads batch's PingSource as the local run does and checks its
// schedule: hourly at minute 17, UTC.
func TestPingSourcesOfTheManifests(t *testing.T) {
	pings, err := loadPingSources(filepath.Join("..", "base", "functions", "batch.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pings) != 1 || pings[0].name != "batch-retention" {
		t.Fatalf("%+v", pings)
	}
	from := time.Date(2026, 12, 3, 10, 20, 0, 0, time.UTC)
	if next := pings[0].schedule.Next(from); !next.Equal(time.Date(2026, 12, 3, 11, 17, 0, 0, time.UTC)) {
		t.Fatalf("next run after %s: %s", from, next)
	}
	if pings[0].data != `{"job":"retention"}` {
		t.Fatalf("data %q", pings[0].data)
	}
}
