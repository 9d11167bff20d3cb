// Command guardbench measures the guard function's asynchronous throughput: a guard process
// is sent Trigger deliveries (binary-mode CloudEvents, as the broker sends them) of realistic
// observations, from a fixed number of concurrent senders, and the events per second and the
// process's peak resident memory are reported. The reference, in the same run and process, is
// the same deliveries for a tenant whose policy inspects nothing: what receiving and decoding
// a delivery costs without the checks.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/internal/testsupport"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "guardbench:", err)
		os.Exit(1)
	}
}

func run() error {
	guardBin := flag.String("guard", "bin/guard", "the guard binary")
	events := flag.Int("events", 20000, "deliveries per phase")
	senders := flag.Int("senders", 32, "concurrent senders (deliveries in flight)")
	flag.Parse()

	dir, err := os.MkdirTemp("", "guardbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("rules: [{tenant: reference, sides: none}]\n"), 0o600); err != nil {
		return err
	}
	port, err := testsupport.FreePort()
	if err != nil {
		return err
	}
	cmd := exec.Command(*guardBin)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "LISTEN_HOST=127.0.0.1", "LOG_LEVEL=error", "GUARD_POLICY="+policy)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w (run make build first)", *guardBin, err)
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	if err := waitReady(url + "/readyz"); err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *senders * 2}}

	peak := int64(0)
	stop := make(chan struct{})
	var sampled sync.WaitGroup
	sampled.Add(1)
	go func() {
		defer sampled.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if r := vmRSS(cmd.Process.Pid); r > atomic.LoadInt64(&peak) {
				atomic.StoreInt64(&peak, r)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	size := len(observation(0))
	fmt.Printf("guard async throughput: %d deliveries per phase, %d in flight, observations of about %d bytes (1 in 10 with an e-mail address, 1 in 20 with an AWS key), on %d CPUs shared with the senders\n\n",
		*events, *senders, size, cpus())
	fmt.Println("| phase | events/s | findings replies | errors |")
	fmt.Println("|---|---|---|---|")
	if _, _, _, err := phase(client, url, "reference", 2000, *senders); err != nil { // warm up
		return err
	}
	for _, tenant := range []string{"reference", "bench", "reference", "bench"} {
		rate, replies, errs, err := phase(client, url, tenant, *events, *senders)
		if err != nil {
			return err
		}
		name := "checks (built-in policy, input and output)"
		if tenant == "reference" {
			name = "reference: delivery only (policy inspects nothing)"
		}
		fmt.Printf("| %s | %.0f | %d | %d |\n", name, rate, replies, errs)
	}
	close(stop)
	sampled.Wait()
	fmt.Printf("\nguard peak RSS: %.1f MiB\n", float64(atomic.LoadInt64(&peak))/(1<<20))
	return nil
}

// phase sends n deliveries for tenant from senders goroutines and returns the events per
// second, the replies that carried findings and the failed deliveries.
func phase(client *http.Client, url, tenant string, n, senders int) (float64, int64, int64, error) {
	var next, replies, errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(observation(i)))
				h := req.Header
				h.Set("Content-Type", "application/json")
				h.Set("Ce-Specversion", "1.0")
				h.Set("Ce-Id", tenant+"-"+strconv.Itoa(i))
				h.Set("Ce-Source", "/bench")
				h.Set("Ce-Type", catalog.TypeObservation)
				h.Set("Ce-Tenantid", tenant)
				h.Set("Ce-Projectid", "bench")
				h.Set("Ce-Ingesttime", "2026-11-29T10:00:00Z")
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs.Add(1)
				} else if len(body) > 0 {
					replies.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds(), replies.Load(), errs.Load(), nil
}

// observation is the i-th delivery's data: a generation with a conversation of about 1.5 KB
// of prose as input and an answer as output.
func observation(i int) string {
	var b bytes.Buffer
	user := "Could you summarise the quarterly report for the board? The numbers improved in every region, " +
		"costs went down by four percent and the new product line shipped on time. Keep it under two hundred words " +
		"and mention the hiring plan for next year, which adds twelve people to support and eight to engineering."
	switch {
	case i%20 == 7:
		user += " Use the key AKIAJ4Q2MZ7XK3P5RTLV for the upload."
	case i%10 == 3:
		user += " Send the draft to jane.doe@acme-corp.com when done."
	}
	fmt.Fprintf(&b, `{"id":"obs-%d","trace_id":"trace-%d","type":"GENERATION","start_time":"2026-11-29T10:00:00Z","model":"gpt-4o-mini",`, i, i)
	fmt.Fprintf(&b, `"input":[{"role":"system","content":"You are a concise assistant for financial reporting. Answer in plain English, avoid jargon, and never invent numbers that are not in the report."},`+
		`{"role":"user","content":%q},{"role":"assistant","content":"Sure, here is a first draft of the summary for the board."},{"role":"user","content":%q}],`, user, "Now make it more formal and add a closing sentence about the outlook for the next two quarters, please.")
	fmt.Fprintf(&b, `"output":{"role":"assistant","content":"The quarter closed with growth in every region and costs four percent lower than planned. The new product line shipped on schedule. Next year the company adds twenty people, twelve in support and eight in engineering. The outlook for the next two quarters remains positive."}}`)
	return b.String()
}

func cpus() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

func vmRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func waitReady(url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("guard at %s not ready", url)
}
