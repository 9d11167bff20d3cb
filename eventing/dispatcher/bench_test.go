package dispatcher

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// BenchmarkDispatch measures the delivery path end to end: a dispatcher, in a child process
// of its own, taking b.N events from a 4-partition topic to a subscriber that acknowledges at
// once. Ordered: one request in flight per partition (4 at most); unordered: up to
// DISPATCHER_UNORDERED_IN_FLIGHT (100 by default) per partition. The timer runs from the first event produced
// (the dispatcher has already delivered a warm-up event) to the last one acknowledged. The
// child's CPU time per event and its peak resident memory (VmHWM) are the dispatcher's alone.
// BENCH_CPUPROFILE=file writes the child's CPU profile (its start and the warm-up event are a
// small part of it).
//
// The "held" case is the local run's shape, for memory: 12 partitions, unordered, 1 KiB
// events, and a subscriber that holds each request 20 ms (as persist does while it batches),
// so that about 1,200 deliveries are in flight at once.
func BenchmarkDispatch(b *testing.B) {
	for _, order := range []string{"ordered", "unordered"} {
		b.Run(order, func(b *testing.B) { benchmarkDispatch(b, order, 4, 0, 0) })
	}
	b.Run("held", func(b *testing.B) { benchmarkDispatch(b, "unordered", 12, 20*time.Millisecond, 1024) })
}

func benchmarkDispatch(b *testing.B, order string, partitions int32, hold time.Duration, payload int) {
	e := newEnv(b, partitions)
	var delivered atomic.Int64
	sub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(hold)
		delivered.Add(1)
	}))
	defer sub.Close()
	events := make([]cloudevents.Event, b.N)
	for i := range events {
		events[i] = newEvent(strconv.Itoa(i), "io.trustplane.telemetry.trace.v1", "trace-"+strconv.Itoa(i%64))
		if payload > 0 {
			if err := events[i].SetData("application/json", map[string]string{"id": strconv.Itoa(i), "pad": strings.Repeat("x", payload)}); err != nil {
				b.Fatal(err)
			}
		}
	}
	manifest := strings.Replace(triggerYAML("bench", telemetryFilter, "    retry: 1\n"), "delivery.order: ordered", "delivery.order: "+order, 1)
	child := startChild(b, e, manifest, sub.URL, "CHILD_CPUPROFILE="+os.Getenv("BENCH_CPUPROFILE"))
	produce(b, e.addrs, e.topic, newEvent("warm-up", "io.trustplane.telemetry.trace.v1", "w"))
	waitFor(b, "the warm-up event", func() bool { return delivered.Load() == 1 })
	delivered.Store(0)

	b.ResetTimer()
	start, cpuStart := time.Now(), childCPU(b, child)
	produce(b, e.addrs, e.topic, events...)
	waitFor(b, "every event delivered", func() bool { return delivered.Load() >= int64(b.N) })
	elapsed, cpu := time.Since(start), childCPU(b, child)-cpuStart
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "dispatcher-CPU-µs/event")
	b.ReportMetric(childPeakRSSMiB(b, child), "dispatcher-peak-RSS-MiB")
	b.ReportMetric(float64(partitions), "partitions")
	// SIGTERM lets the child write its CPU profile.
	if err := child.Process.Signal(syscall.SIGTERM); err != nil {
		b.Fatal(err)
	}
	_ = child.Wait()
}

// childCPU is the user and system CPU time a child has used (from /proc/PID/stat, in clock
// ticks of 10 ms).
func childCPU(b *testing.B, child *exec.Cmd) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name (which is in parentheses): utime and stime are the 12th
	// and 13th.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			b.Fatalf("/proc stat field %q: %v", f, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// childPeakRSSMiB is a child's peak resident set (VmHWM).
func childPeakRSSMiB(b *testing.B, child *exec.Cmd) float64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", child.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				b.Fatalf("VmHWM %q: %v", v, err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmHWM in the child's /proc status")
	return 0
}
