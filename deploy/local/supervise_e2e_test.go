package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/trustplane/trustplane/eventing/catalog"
)

// poster posts trace events to ingest with the CloudEvents SDK, one after another, each until
// it is accepted (202), as a client that retries does; every event is its own trace.
type poster struct {
	t      *testing.T
	client cloudevents.Client
	mu     sync.Mutex
	posted []string      // accepted, in order
	stop   chan struct{} // finish the event being posted, then return
	abort  chan struct{} // return at once (the test failed)
	done   chan struct{}
}

func startPoster(t *testing.T, ingest, key string) *poster {
	t.Helper()
	c, err := cloudevents.NewClientHTTP(cehttp.WithTarget(ingest), cehttp.WithHeader("Authorization", "Bearer "+key))
	if err != nil {
		t.Fatal(err)
	}
	p := &poster{t: t, client: c, stop: make(chan struct{}), abort: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

func (p *poster) run() {
	defer close(p.done)
	for i := 0; ; i++ {
		select {
		case <-p.stop:
			return
		default:
		}
		id := fmt.Sprintf("recovery-%05d", i)
		e := cloudevents.NewEvent()
		e.SetID(id)
		e.SetSource("/recovery")
		e.SetType(catalog.TypeTrace)
		_ = e.SetData(cloudevents.ApplicationJSON, map[string]any{"id": id, "timestamp": time.Now().UTC().Format(time.RFC3339Nano), "name": "recovery"})
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			res := p.client.Send(ctx, e)
			cancel()
			var hr *cehttp.Result
			if cloudevents.ResultAs(res, &hr) && hr.StatusCode == http.StatusAccepted {
				break
			}
			select { // refused or 503 while a child restarts: try again
			case <-p.abort:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
		p.mu.Lock()
		p.posted = append(p.posted, id)
		p.mu.Unlock()
	}
}

func (p *poster) accepted() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.posted...)
}

// waitAccepted waits until n events in all have been accepted.
func (p *poster) waitAccepted(n int) {
	p.t.Helper()
	// A bound that only ends a hang: a restart takes seconds.
	for deadline := time.Now().Add(2 * time.Minute); len(p.accepted()) < n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			p.t.Fatalf("%d events accepted, want %d", len(p.accepted()), n)
		}
	}
}

// Each child of the local run (Kafka and ClickHouse included) killed with SIGKILL while events
// are posted is started again on its ports, and the plane recovers: every event accepted before,
// during and after is stored exactly once.
func TestEveryChildRecoversFromSIGKILL(t *testing.T) {
	var mu sync.Mutex
	pids := map[string]int{}
	r := startLocalRun(t, func(o *options) {
		o.started = func(name string, pid int) {
			mu.Lock()
			pids[name] = pid
			mu.Unlock()
		}
	})
	pid := func(name string) int {
		mu.Lock()
		defer mu.Unlock()
		return pids[name]
	}
	p := startPoster(t, "http://127.0.0.1:"+strconv.Itoa(r.o.ingestPort), r.key)
	defer func() {
		close(p.abort)
		<-p.done
	}()
	p.waitAccepted(10)

	children := []string{"kafka", "clickhouse", "auth", "persist", "dispatcher", "ingest", "router", "query", "batch"}
	for _, name := range children {
		old := pid(name)
		if old == 0 {
			t.Fatalf("no pid reported for %s", name)
		}
		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %s: %v", name, err)
		}
		for deadline := time.Now().Add(time.Minute); pid(name) == old; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s (pid %d) killed, not restarted", name, old)
			}
		}
		p.waitAccepted(len(p.accepted()) + 10)
	}
	close(p.stop)
	<-p.done
	posted := p.accepted()

	// Every restarted child serves again, on its port.
	for _, port := range []int{r.o.authPort, r.o.persistPort, r.o.dispatcherPort, r.o.ingestPort, r.o.routerPort} {
		waitReadyz(t, port)
	}
	if code, _, body := (plane{router: "http://127.0.0.1:" + strconv.Itoa(r.o.routerPort), key: r.key}).routerCall(t,
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"still there?"}]}`); code != http.StatusOK {
		t.Fatalf("router after the restarts: %d %s", code, body)
	}

	db, err := ch.Open(&ch.Options{Addr: []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(r.o.clickhousePort))}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stored := func() map[string]uint64 {
		rows, err := db.Query(context.Background(), "SELECT id, count() FROM trustplane.traces FINAL WHERE startsWith(id, 'recovery-') GROUP BY id")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]uint64{}
		for rows.Next() {
			var id string
			var n uint64
			if err := rows.Scan(&id, &n); err != nil {
				t.Fatal(err)
			}
			out[id] = n
		}
		return out
	}
	// The dispatcher retries what persist could not store while ClickHouse was down; a bound
	// that only ends a hang.
	var got map[string]uint64
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
		if got = stored(); len(got) >= len(posted) || time.Now().After(deadline) {
			break
		}
	}
	for _, id := range posted {
		if got[id] != 1 {
			t.Errorf("%s stored %d times, want once", id, got[id])
		}
	}
	if len(got) != len(posted) {
		t.Errorf("%d events stored, %d accepted", len(got), len(posted))
	}
	recs := logRecords(t, onlyJSON(r.logs.String()))
	for _, name := range children {
		if !hasRecord(recs, "exited; restarting", name) || !hasRecord(recs, "restarted", name) {
			t.Errorf("%s: its exit and restart are not both logged", name)
		}
	}
	t.Logf("%d events accepted and stored across %d kills", len(posted), len(children))
}

// onlyJSON keeps the runner's own log lines: the children write theirs, and ClickHouse's and
// Kafka's are not all JSON, to the same stream.
func onlyJSON(logs string) string {
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		if strings.HasPrefix(line, "{") && strings.Contains(line, `"child"`) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func waitReadyz(t *testing.T, port int) {
	t.Helper()
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/readyz"
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready: %v", url, err)
		}
	}
}
