package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/trustplane/trustplane/eventing/catalog"
	tpkafka "github.com/trustplane/trustplane/kafka"
)

// BenchmarkEndToEnd posts telemetry over HTTPS to ingest, in batches of 100 events (one trace
// and 99 observations of it), at a fixed rate, with Kafka, ClickHouse, every function and the
// load generator on this machine. It reports:
//   - sustained events/s at full load: events accepted divided by the time from the first post
//     to the last row being queryable;
//   - freshness at half of that load: time from the 202 to all rows of a batch being queryable,
//     polled while the load runs (the oldest 200 pending batches every 100 ms, so each sample
//     is late by up to that plus the query's own time);
//   - freshness through query at half load: from ingest's 202 for a single trace to query
//     answering it (GET /v1/traces/{id}, polled every 10 ms);
//   - both freshnesses again at half of the events/s the full load sustained (calm-*);
//   - each function's peak RSS.
//
// Run with: go test -run '^$' -bench EndToEnd -benchtime 1x -timeout 30m ./deploy/local/
// (E2E_RATE and E2E_SECONDS change the full load and its duration.)
func BenchmarkEndToEnd(b *testing.B) {
	rate := envOr("E2E_RATE", 10000)
	seconds := envOr("E2E_SECONDS", 20)
	cert, key := selfSigned(b)
	p := startPlane(b, cert, key)
	p.client = &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: certPool(b, cert)},
		MaxIdleConnsPerHost: 64,
	}}

	for range b.N {
		full := p.load(b, "full", rate, seconds)
		b.ReportMetric(full.sustained, "sustained-events/s")
		b.ReportMetric(full.posted, "posted-events/s")
		// At half the offered load, and at half of what the full load sustained: the first
		// can exceed what a small host sustains, and then every delay only grows.
		p.freshnessAt(b, "", rate/2, seconds)
		p.freshnessAt(b, "calm-", int(full.sustained/2), seconds)
	}
	rows, inserts := p.persistInserts(b)
	b.ReportMetric(rows/inserts, "rows/insert")
	for name, pid := range p.pids {
		b.ReportMetric(peakRSS(b, pid), name+"-peak-RSS-MiB")
		b.ReportMetric(cpuSeconds(b, pid), name+"-CPU-s")
	}
	p.reportDependencyCPU(b)
	b.ReportMetric(0, "ns/op")
}

// reportDependencyCPU reports the CPU time of Kafka, ClickHouse and this process (the load
// generator and the poller), so that the whole machine's time is accounted for.
func (p plane) reportDependencyCPU(b *testing.B) {
	for name, dir := range p.depDirs {
		b.ReportMetric(cpuSeconds(b, pidWithArg(b, dir)), name+"-CPU-s")
	}
	b.ReportMetric(cpuSeconds(b, os.Getpid()), "load-generator-CPU-s")
}

// pidWithArg finds the process whose command line contains s.
func pidWithArg(b *testing.B, s string) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && bytes.Contains(cmdline, []byte(s)) {
			return pid
		}
	}
	b.Fatalf("no process has %q on its command line", s)
	return 0
}

// BenchmarkDeliveryPath measures persist's delivery path: events already in the broker topic
// (produced as ingest produces them), delivered by the dispatcher as Trigger deliveries over
// HTTP to persist (unordered, DISPATCHER_UNORDERED_IN_FLIGHT=100 per partition, 12 partitions),
// until every row is queryable in ClickHouse.
func BenchmarkDeliveryPath(b *testing.B) {
	const events = 50000
	p := startPlane(b)
	producer, err := tpkafka.NewAsyncProducer(p.brokers)
	if err != nil {
		b.Fatal(err)
	}
	defer producer.Close()
	now := time.Now().UTC()
	for n := range b.N {
		trace := fmt.Sprintf("delivery-%d-%d", now.UnixNano(), n)
		batch := make([]cloudevents.Event, events)
		for i := range batch {
			e := cloudevents.NewEvent()
			e.SetID(fmt.Sprintf("%s-%d", trace, i))
			e.SetSource("/bench")
			e.SetType(catalog.TypeObservation)
			_ = e.SetData(cloudevents.ApplicationJSON, []byte(fmt.Sprintf(
				`{"id":"%s-o%d","trace_id":"%s-%d","type":"GENERATION","start_time":"%s","model":"gpt-4o-mini","usage":{"total_tokens":16}}`,
				trace, i, trace, i%500, now.Format(time.RFC3339Nano))))
			e.SetExtension(catalog.ExtTenant, "demo")
			e.SetExtension(catalog.ExtProject, "demo")
			e.SetExtension(catalog.ExtPartitionKey, fmt.Sprintf("%s-%d", trace, i%500))
			batch[i] = e
		}
		start := time.Now()
		for i := 0; i < events; i += 1000 {
			for _, err := range producer.Send(context.Background(), batch[i:i+1000]) {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		produced := time.Since(start)
		deadline := time.Now().Add(5 * time.Minute)
		for {
			var n uint64
			if err := p.db.QueryRow(context.Background(), "SELECT count() FROM trustplane.observations WHERE trace_id LIKE ?", trace+"-%").Scan(&n); err != nil {
				b.Fatal(err)
			}
			if n >= events {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d rows stored", n, events)
			}
			time.Sleep(50 * time.Millisecond)
		}
		b.ReportMetric(float64(events)/time.Since(start).Seconds(), "events/s")
		b.Logf("%d events produced in %s, all stored after %s", events, produced.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	}
	rows, inserts := p.persistInserts(b)
	b.ReportMetric(rows/inserts, "rows/insert")
	b.ReportMetric(cpuSeconds(b, p.pids["dispatcher"]), "dispatcher-CPU-s")
	b.ReportMetric(cpuSeconds(b, p.pids["persist"]), "persist-CPU-s")
	p.reportDependencyCPU(b)
	b.ReportMetric(0, "ns/op")
}

type loadResult struct {
	sustained, posted float64
	fresh             []time.Duration
}

func (r loadResult) freshness(q float64) float64 {
	slices.Sort(r.fresh)
	return float64(r.fresh[int(q*float64(len(r.fresh)-1))].Microseconds()) / 1000
}

const batchEvents = 100

func quantile(ds []time.Duration, q float64) float64 {
	slices.Sort(ds)
	if len(ds) == 0 {
		return -1
	}
	return float64(ds[int(q*float64(len(ds)-1))].Microseconds()) / 1000
}

// freshnessAt runs a load of rate events/s while probing query, and reports, under names
// starting with prefix, the events/s offered and sustained and both freshnesses.
func (p plane) freshnessAt(b *testing.B, prefix string, rate, seconds int) {
	probe := p.probeQuery(b)
	r := p.load(b, prefix+"half", rate, seconds)
	viaQuery := probe()
	b.ReportMetric(float64(rate), prefix+"half-load-offered-events/s")
	b.ReportMetric(r.sustained, prefix+"half-load-sustained-events/s")
	b.ReportMetric(r.freshness(0.50), prefix+"freshness-p50-ms")
	b.ReportMetric(r.freshness(0.99), prefix+"freshness-p99-ms")
	b.ReportMetric(quantile(viaQuery, 0.50), prefix+"query-freshness-p50-ms")
	b.ReportMetric(quantile(viaQuery, 0.99), prefix+"query-freshness-p99-ms")
	b.ReportMetric(quantile(viaQuery, 1), prefix+"query-freshness-max-ms")
}

// probeQuery measures freshness through query while a load runs: one trace at a time, posted
// to ingest, then asked of query (GET /v1/traces/{id}, every 10 ms) until it answers 200; a
// sample is the time from ingest's 202 to that answer. The returned function stops the probe
// and returns the samples.
func (p plane) probeQuery(b *testing.B) func() []time.Duration {
	stop := make(chan struct{})
	done := make(chan []time.Duration)
	go func() {
		var samples []time.Duration
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- samples
				return
			case <-time.After(200 * time.Millisecond):
			}
			id := fmt.Sprintf("probe-%d-%d", time.Now().UnixNano(), i)
			now := time.Now().UTC().Format(time.RFC3339Nano)
			body := `{"specversion":"1.0","id":"` + id + `","source":"/bench/probe","type":"` + catalog.TypeTrace +
				`","datacontenttype":"application/json","data":{"id":"` + id + `","timestamp":"` + now + `","name":"probe"}}`
			req, _ := http.NewRequest(http.MethodPost, p.ingest, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+p.key)
			req.Header.Set("Content-Type", "application/cloudevents+json")
			resp, err := p.client.Do(req)
			if err != nil {
				continue
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				continue
			}
			accepted := time.Now()
			for deadline := accepted.Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				req, _ := http.NewRequest(http.MethodGet, p.query+"/v1/traces/"+id, nil)
				req.Header.Set("Authorization", "Bearer "+p.key)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					samples = append(samples, time.Since(accepted))
					break
				}
			}
		}
	}()
	return func() []time.Duration {
		close(stop)
		return <-done
	}
}

// load posts rate events/s for the given seconds (open loop: a post starts on schedule whether
// or not earlier ones finished, up to 256 in flight) and, at the same time, polls ClickHouse
// for the accepted batches until every one is queryable.
func (p plane) load(b *testing.B, run string, rate, seconds int) loadResult {
	posts := rate * seconds / batchEvents
	interval := time.Second / time.Duration(rate/batchEvents)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	var (
		mu       sync.Mutex
		pending  = map[string]time.Time{} // batch trace id -> when its 202 arrived
		accepted int
		failed   atomic.Int64
		retried  atomic.Int64
		wg       sync.WaitGroup
		slots    = make(chan struct{}, 256)
		posted   = make(chan struct{})
	)
	start := time.Now()
	var fresh []time.Duration
	polled := make(chan error, 1)
	go func() { polled <- p.poll(&mu, pending, &fresh, now, posted) }()
	for i := range posts {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			trace := fmt.Sprintf("%s-%d-%07d", run, start.UnixNano(), i) // zero-padded: see poll
			body := batchBody(trace, now)
			// A 503 says "not stored, retry after": a client does, re-sending the whole batch
			// (accepted events in it are de-duplicated).
			for attempt := 0; ; attempt++ {
				req, _ := http.NewRequest(http.MethodPost, p.ingest, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+p.key)
				req.Header.Set("Content-Type", "application/cloudevents-batch+json")
				resp, err := p.client.Do(req)
				if err != nil {
					failed.Add(1)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					break
				}
				if resp.StatusCode != http.StatusServiceUnavailable || attempt == 5 {
					failed.Add(1)
					return
				}
				retried.Add(1)
				wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
				time.Sleep(time.Duration(wait) * time.Second)
			}
			mu.Lock()
			pending[trace] = time.Now()
			accepted++
			mu.Unlock()
		}()
	}
	wg.Wait()
	postedFor := time.Since(start)
	close(posted)
	if f := failed.Load(); f > 0 {
		b.Errorf("%s: %d of %d posts failed", run, f, posts)
	}
	b.Logf("%s: %d posts of %d events in %s, %d retried after a 503", run, posts, batchEvents, postedFor.Round(time.Millisecond), retried.Load())
	if err := <-polled; err != nil {
		b.Fatalf("%s: %v", run, err)
	}
	total := float64(accepted * batchEvents)
	return loadResult{
		sustained: total / time.Since(start).Seconds(),
		posted:    total / postedFor.Seconds(),
		fresh:     fresh,
	}
}

// pollEvery is how often load asks ClickHouse about pending batches: each freshness sample is
// late by up to this plus the query's own time.
const pollEvery = 100 * time.Millisecond

// poll asks ClickHouse, every pollEvery, which of the oldest 200 pending batches have all their
// observations queryable, records each batch's time from 202 to queryable and drops it from
// pending, until posting has ended (posted closed) and nothing is pending. The query looks the
// rows up by a range of the primary key (tenant, project, day, id), so that measuring does not
// scan the table at the pipeline's expense.
func (p plane) poll(mu *sync.Mutex, pending map[string]time.Time, fresh *[]time.Duration, now string, posted <-chan struct{}) error {
	day, err := time.Parse(time.RFC3339Nano, now)
	if err != nil {
		return err
	}
	done := false
	deadline := time.Time{}
	for {
		select {
		case <-posted:
			if !done {
				done, deadline = true, time.Now().Add(5*time.Minute)
			}
		default:
		}
		mu.Lock()
		oldest := make([]string, 0, len(pending))
		for k := range pending {
			oldest = append(oldest, k)
		}
		slices.SortFunc(oldest, func(a, b string) int { return pending[a].Compare(pending[b]) })
		mu.Unlock()
		if done && len(oldest) == 0 {
			return nil
		}
		if done && time.Now().After(deadline) {
			return fmt.Errorf("%d accepted batches never became queryable", len(oldest))
		}
		oldest = oldest[:min(len(oldest), 200)]
		// A batch's observation ids are <trace>-o1 … <trace>-o99, and traces number their
		// batches with zero-padded digits, so the ids of the batches looked for all lie in one
		// range of the primary key's id: ClickHouse reads only the granules that hold it. The
		// ids are the bench's own (letters, digits and '-'), so they are written into the query
		// as they are.
		if len(oldest) > 0 {
			lo, hi := slices.Min(oldest), slices.Max(oldest)
			rows, err := p.db.Query(context.Background(),
				"SELECT trace_id FROM trustplane.observations WHERE tenant_id = 'demo' AND project_id = 'demo' AND toDate(start_time) = ? AND id >= ? AND id < ? GROUP BY trace_id HAVING uniqExact(id) = ?",
				day.Format("2006-01-02"), lo+"-o", hi+"-p", uint64(batchEvents-1))
			if err != nil {
				return err
			}
			seen := time.Now()
			mu.Lock()
			for rows.Next() {
				var trace string
				if err := rows.Scan(&trace); err != nil {
					mu.Unlock()
					rows.Close()
					return err
				}
				if at, ok := pending[trace]; ok {
					*fresh = append(*fresh, seen.Sub(at))
					delete(pending, trace)
				}
			}
			mu.Unlock()
			rows.Close()
		}
		time.Sleep(pollEvery)
	}
}

func batchBody(trace, now string) []byte {
	var sb strings.Builder
	sb.WriteString("[")
	sb.WriteString(ce(trace, catalog.TypeTrace, `{"id":"`+trace+`","timestamp":"`+now+`","name":"bench","user_id":"u-1"}`))
	for j := 1; j < batchEvents; j++ {
		sb.WriteString(",")
		sb.WriteString(ce(fmt.Sprintf("%s-o%d", trace, j), catalog.TypeObservation, fmt.Sprintf(
			`{"id":"%s-o%d","trace_id":"%s","type":"GENERATION","name":"chat","start_time":"%s","model":"gpt-4o-mini",`+
				`"input":[{"role":"user","content":"What is the capital of France?"}],"output":{"role":"assistant","content":"Paris."},`+
				`"usage":{"prompt_tokens":14,"completion_tokens":2,"total_tokens":16},"cost":{"total":0.0000033}}`, trace, j, trace, now)))
	}
	sb.WriteString("]")
	return []byte(sb.String())
}

// persistInserts reads persist's batch_rows histogram: rows written and inserts made.
func (p plane) persistInserts(b *testing.B) (rows, inserts float64) {
	m := p.persistMetrics(b)
	return m["trustplane_persist_batch_rows_sum"], m["trustplane_persist_batch_rows_count"]
}

func envOr(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// peakRSS reads a process's high-water resident set size (VmHWM) in MiB.
func peakRSS(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	b.Fatalf("no VmHWM for pid %d", pid)
	return 0
}

// cpuSeconds is the user and system CPU time a process used so far.
func cpuSeconds(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name (which is in parentheses and may hold spaces).
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // clock ticks; 100 per second on Linux
}

func selfSigned(b *testing.B) (certFile, keyFile string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ingest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		b.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		b.Fatal(err)
	}
	return certFile, keyFile
}

func certPool(b *testing.B, certFile string) *x509.CertPool {
	raw, err := os.ReadFile(certFile)
	if err != nil {
		b.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		b.Fatal("certificate not added")
	}
	return pool
}
