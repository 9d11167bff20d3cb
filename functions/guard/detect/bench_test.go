package detect

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trustplane/trustplane/functions/guard/detect/internal/synth"
)

// benchPrompt is a realistic prompt of about size bytes: a chat request with prose (in three
// languages, with words the secret rules key on: password, token, secret), a code snippet and a
// log excerpt, holding an e-mail address and a phone number every 1.2 KB and no attack.
func benchPrompt(size int) string {
	g := synth.New(7)
	parts := []string{
		"You are a helpful assistant for the support team. Summarize the customer's message below and propose a reply in a friendly tone. ",
		"The customer wrote on 2024-03-12: my order arrived damaged and the box was open. I have attached photos. Please contact me at " + g.Email() + " or call " + g.Phone() + ". ",
		"```go\nfunc (s *Server) handle(w http.ResponseWriter, r *http.Request) {\n\tctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)\n\tdefer cancel()\n\tif err := s.store.Put(ctx, key, value); err != nil {\n\t\thttp.Error(w, err.Error(), 500)\n\t}\n}\n```\n",
		"2024-03-12T10:15:32Z INFO request_id=7f3a2c1e method=POST path=/api/v1/orders status=201 duration_ms=42 bytes=1832\n",
		"To reset your password open the settings page; the API token expires after 30 days and the secret manager rotates it. ",
		"Les clients demandent souvent un remboursement rapide; nous répondons en moins de 24 heures. Der Kunde möchte eine Rückerstattung. ",
	}
	var b strings.Builder
	for i := 0; b.Len() < size; i++ {
		b.WriteString(parts[i%len(parts)])
	}
	return b.String()[:size]
}

func benchmarkScan(b *testing.B, sc *Scanner, size int) {
	text := benchPrompt(size)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		sc.Scan(text)
	}
	cpu := cpuTime() - cpu0
	b.StopTimer()
	// MB/s above is per wall-clock second, which a busy machine stretches; cpu-MB/s is per
	// second of this process's CPU time (run with -cpu 1, so one core).
	if cpu > 0 {
		b.ReportMetric(float64(len(text))*float64(b.N)/cpu.Seconds()/1e6, "cpu-MB/s")
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	}
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkScan measures every detector together (Default) and each family alone, on 1 KiB
// and 32 KiB prompts, single-threaded: MB/s is per core.
func BenchmarkScan(b *testing.B) {
	families := []struct {
		name string
		sc   *Scanner
	}{
		{"all", Default(Options{HashKey: []byte("bench")})},
		{"pii", NewScanner(Options{}, Email{}, Numbers{}, IBAN{}, IPv6{})},
		{"secrets", NewScanner(Options{}, Secrets{})},
		{"injection", NewScanner(Options{}, Injection{})},
	}
	for _, f := range families {
		for _, size := range []int{1 << 10, 32 << 10} {
			b.Run(f.name+"/"+map[int]string{1 << 10: "1KiB", 32 << 10: "32KiB"}[size], func(b *testing.B) {
				benchmarkScan(b, f.sc, size)
			})
		}
	}
}

// BenchmarkSecretsWithoutPrefilter is the reference for the secrets row: every rule's
// expression over the whole text, as without the keyword prefilter.
func BenchmarkSecretsWithoutPrefilter(b *testing.B) {
	for _, size := range []int{1 << 10, 32 << 10} {
		b.Run(map[int]string{1 << 10: "1KiB", 32 << 10: "32KiB"}[size], func(b *testing.B) {
			text := benchPrompt(size)
			b.SetBytes(int64(len(text)))
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				for _, r := range secretRules {
					r.re.FindAllStringSubmatchIndex(text, -1)
				}
			}
			cpu := cpuTime() - cpu0
			if cpu > 0 {
				b.ReportMetric(float64(len(text))*float64(b.N)/cpu.Seconds()/1e6, "cpu-MB/s")
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
			}
		})
	}
}
