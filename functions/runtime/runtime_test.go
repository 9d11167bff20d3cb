package runtime

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"
)

func TestLoadConfigNamesEveryBadVariable(t *testing.T) {
	t.Setenv("PORT", "70000")
	t.Setenv("LOG_LEVEL", "chatty")
	t.Setenv("TLS_CERT_FILE", "/cert.pem")
	t.Setenv("LISTEN_HOST", "localhost")
	var c Common
	err := LoadConfig(&c)
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	for _, want := range []string{"PORT", "LOG_LEVEL", "TLS_CERT_FILE and TLS_KEY_FILE", `LISTEN_HOST must be an IP address`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	t.Setenv("SHUTDOWN_TIMEOUT", "soon")
	if err := LoadConfig(&c); err == nil || !strings.Contains(err.Error(), "SHUTDOWN_TIMEOUT") {
		t.Errorf("unparsable duration: %v", err)
	}
}

// Variables that do not parse, or required ones that are missing, are all named at once, in a
// function's Config that embeds Common as every function's does.
func TestLoadConfigNamesEveryUnparsableVariable(t *testing.T) {
	var c struct {
		Common
		Brokers string `envconfig:"TEST_BROKERS" required:"true"`
		Batch   int    `envconfig:"TEST_BATCH" default:"10"`
	}
	t.Setenv("PORT", "eighty")
	t.Setenv("SHUTDOWN_TIMEOUT", "soon")
	t.Setenv("TEST_BATCH", "many")
	err := LoadConfig(&c)
	if err == nil {
		t.Fatal("unparsable configuration accepted")
	}
	for _, want := range []string{"PORT", "SHUTDOWN_TIMEOUT", "TEST_BROKERS", "TEST_BATCH"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "LOG_LEVEL") {
		t.Errorf("error %q names LOG_LEVEL, whose default is valid", err)
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	var c Common
	if err := LoadConfig(&c); err != nil {
		t.Fatal(err)
	}
	if c.Port != 8080 || c.LogLevel != "info" || c.ShutdownTimeout != 30*time.Second {
		t.Fatalf("defaults %+v", c)
	}
}

// Run binds LISTEN_HOST when it is set, and every interface when it is not.
func TestRunBindsListenHost(t *testing.T) {
	for _, c := range []struct{ host, want string }{{"127.0.0.1", "127.0.0.1"}, {"", "unspecified"}} {
		srv := NewServer("test", Common{ListenHost: c.host, ShutdownTimeout: 5 * time.Second}, slog.New(slog.DiscardHandler))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Run(ctx) }()
		host, _, err := net.SplitHostPort(srv.Addr())
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if c.want == "unspecified" && net.ParseIP(host).IsUnspecified() {
			host = c.want // :: or 0.0.0.0, whichever the host's stack binds
		}
		if err != nil || host != c.want {
			t.Errorf("LISTEN_HOST %q: bound %s (%v), want host %s", c.host, srv.Addr(), err, c.want)
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitReadyz polls /readyz until it answers code, and returns the body. Each check runs every
// millisecond here, so the answer changes soon after the dependency does.
func waitReadyz(t *testing.T, base string, code int) string {
	t.Helper()
	for {
		got, body := get(t, base+"/readyz")
		if got == code {
			return body
		}
		time.Sleep(time.Millisecond)
	}
}

func TestHealthReadinessAndMetrics(t *testing.T) {
	srv := NewServer("test", Common{ShutdownTimeout: 5 * time.Second}, slog.New(slog.DiscardHandler))
	srv.ReadyInterval = time.Millisecond
	var broken atomic.Bool
	srv.AddReadyCheck("kafka", func(context.Context) error {
		if broken.Load() {
			return errors.New("no broker reachable")
		}
		return nil
	})
	srv.Handle("/hello", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	cancel, done := serve(t, srv)
	base := "http://" + srv.Addr()

	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("healthz %d", code)
	}
	waitReadyz(t, base, 200)
	broken.Store(true)
	if body := waitReadyz(t, base, 503); !strings.Contains(body, "kafka: no broker reachable") {
		t.Errorf("readyz %q while kafka is down", body)
	}
	broken.Store(false)
	waitReadyz(t, base, 200)
	if code, _ := get(t, base+"/hello"); code != http.StatusTeapot {
		t.Errorf("hello %d", code)
	}
	if _, body := get(t, base+"/metrics"); !strings.Contains(body, `trustplane_http_requests_total{code="418",function="test",route="/hello"} 1`) {
		t.Errorf("metrics do not count the request:\n%s", body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// /readyz answers from the checks' latest results and never waits for a check: while a check
// is stuck (its dependency stalled), /readyz answers 503 naming it.
func TestReadinessDoesNotWaitForAStuckCheck(t *testing.T) {
	srv := NewServer("test", Common{ShutdownTimeout: 5 * time.Second}, slog.New(slog.DiscardHandler))
	srv.ReadyTimeout = time.Hour
	release := make(chan struct{})
	var returned atomic.Bool
	srv.AddReadyCheck("clickhouse", func(ctx context.Context) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		returned.Store(true)
		return nil
	})
	cancel, done := serve(t, srv)
	base := "http://" + srv.Addr()

	code, body := get(t, base+"/readyz")
	if returned.Load() {
		t.Fatalf("/readyz answered %d %q only once the stuck check had returned", code, body)
	}
	if code != 503 || body != "clickhouse: not checked yet\n" {
		t.Fatalf("readyz %d %q while the clickhouse check is stuck, want 503 naming it", code, body)
	}
	close(release)
	waitReadyz(t, base, 200)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A check that does not return within its timeout fails at once, and is not started again
// until it returns: one that ignores its context never runs twice at once.
func TestReadinessFailsACheckPastItsTimeout(t *testing.T) {
	srv := NewServer("test", Common{ShutdownTimeout: 5 * time.Second}, slog.New(slog.DiscardHandler))
	srv.ReadyInterval, srv.ReadyTimeout = time.Millisecond, time.Millisecond
	release := make(chan struct{})
	var runs, returned atomic.Int64
	srv.AddReadyCheck("clickhouse", func(context.Context) error {
		runs.Add(1)
		<-release // ignores its context, as a check on a stalled connection may
		returned.Add(1)
		return nil
	})
	cancel, done := serve(t, srv)
	base := "http://" + srv.Addr()
	for body := ""; body != "clickhouse: no answer within 1ms\n"; _, body = get(t, base+"/readyz") {
		time.Sleep(time.Millisecond)
	}
	if returned.Load() != 0 || runs.Load() != 1 {
		t.Fatalf("the stuck check returned %d times and ran %d times, want 0 and 1", returned.Load(), runs.Load())
	}
	close(release)
	waitReadyz(t, base, 200)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// On shutdown a request in flight finishes, then the shutdown hooks run, in reverse order.
func TestShutdownDrainsThenFlushes(t *testing.T) {
	srv := NewServer("test", Common{ShutdownTimeout: 10 * time.Second}, slog.New(slog.DiscardHandler))
	started := make(chan struct{})
	release := make(chan struct{})
	srv.Handle("/slow", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		<-release
		_, _ = io.WriteString(w, "done")
	}))
	var order []string
	srv.OnShutdown(func(context.Context) error { order = append(order, "close sink"); return nil })
	srv.OnShutdown(func(context.Context) error { order = append(order, "flush buffer"); return nil })
	cancel, done := serve(t, srv)
	answer := make(chan string, 1)
	go func() {
		_, body := get(t, "http://"+srv.Addr()+"/slow")
		answer <- body
	}()
	<-started
	cancel()
	select {
	case err := <-done:
		t.Fatalf("server stopped with a request in flight: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if body := <-answer; body != "done" {
		t.Fatalf("in-flight request got %q", body)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, ",") != "flush buffer,close sink" {
		t.Fatalf("shutdown hooks ran as %v", order)
	}
}

func TestServesHTTPSWithACertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(k)
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)

	srv := NewServer("test", Common{ShutdownTimeout: time.Second, TLSCertFile: certFile, TLSKeyFile: keyFile}, slog.New(slog.DiscardHandler))
	cancel, done := serve(t, srv)
	defer func() { cancel(); <-done }()

	pool := x509.NewCertPool()
	pool.AddCert(mustParse(t, der))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + srv.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("HTTPS healthz: %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
	if resp, err := http.Get("http://" + srv.Addr() + "/healthz"); err == nil && resp.StatusCode == 200 {
		t.Fatal("plain HTTP answered on the HTTPS port")
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// serve runs srv on a free port until cancel is called; done then gives Serve's result.
// A certificate that does not load ends Serve with the reason and closes the listener it was
// given, so the port is free again.
func TestServeWithoutCertificateClosesListener(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.pem")
	srv := NewServer("test", Common{ShutdownTimeout: time.Second, TLSCertFile: missing, TLSKeyFile: missing}, slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := srv.Serve(context.Background(), ln); err == nil || !strings.Contains(err.Error(), "load TLS certificate") {
		t.Fatalf("Serve with a missing certificate: %v", err)
	}
	// The deadline only keeps a regression from hanging the test: an open listener times out.
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(time.Second))
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("listener still open after Serve failed: %v", err)
	}
}

func serve(t *testing.T, srv *Server) (cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() { result <- srv.Serve(ctx, ln) }()
	return cancel, result
}

// A request that outlives the drain (a long stream) does not use up the hooks' time: they run
// with a live context, so buffers are still flushed, and all is over within SHUTDOWN_TIMEOUT.
func TestRequestOutlivingTheDrainLeavesTheHooksTheirTime(t *testing.T) {
	// The hook runs just after the drain's 1.5 s are up and finds 500 ms left: it fails by
	// accident only if the process stalls 500 ms at that moment, and the slowest of a million
	// loopback calls on the 2-core build machine under load took 66 ms: far below one in a
	// million.
	srv := NewServer("test", Common{ShutdownTimeout: 2 * time.Second}, slog.New(slog.DiscardHandler))
	started := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	srv.Handle("/stream", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		<-release // never ends on its own during the test
	}))
	hookErr := make(chan error, 1)
	srv.OnShutdown(func(ctx context.Context) error {
		hookErr <- ctx.Err()
		return nil
	})
	cancel, done := serve(t, srv)
	<-srv.ready
	go func() { _, _ = http.Get("http://" + srv.listener.Addr().String() + "/stream") }()
	<-started
	cancel()
	<-done
	if err := <-hookErr; err != nil {
		t.Fatalf("the hook's context had already ended when it ran: %v", err)
	}
}

// When serving fails, the shutdown hooks still run within SHUTDOWN_TIMEOUT: a hook that waits
// for its context must not hold the process forever.
func TestHooksAfterServeFailureHaveTheShutdownDeadline(t *testing.T) {
	srv := NewServer("test", Common{ShutdownTimeout: 10 * time.Second}, slog.New(slog.DiscardHandler))
	var bounded atomic.Bool
	srv.OnShutdown(func(ctx context.Context) error {
		_, ok := ctx.Deadline()
		bounded.Store(ok)
		return nil
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // Accept fails at once
	if err := srv.Serve(context.Background(), ln); err == nil {
		t.Fatal("Serve on a closed listener returned nil")
	}
	if !bounded.Load() {
		t.Fatal("shutdown hooks ran without the shutdown timeout's deadline")
	}
}

// ReadBody bounds a stalled body and refuses an oversized one; once the body is in, the
// deadline no longer applies (net/http clears it): the request's context outlives the timeout.
// A declared length is a claim: a client that declares megabytes, sends two bytes and stalls
// holds no more than preSizeMax of the server's memory.
func TestReadBodyTrustsADeclaredLengthOnlySoFar(t *testing.T) {
	stalled := errors.New("the client stalled")
	r := httptest.NewRequest(http.MethodPost, "/", io.MultiReader(strings.NewReader("ab"), iotest.ErrReader(stalled)))
	r.ContentLength = 4 << 20
	body, err := ReadBody(httptest.NewRecorder(), r, 5<<20, 0)
	if !errors.Is(err, stalled) || string(body) != "ab" {
		t.Fatalf("body %q, error %v", body, err)
	}
	if cap(body) > 2*preSizeMax { // the allocator rounds up to its size classes
		t.Errorf("%d bytes taken for a body of 2 that declared %d", cap(body), r.ContentLength)
	}
	// Past the bound the buffer grows with what arrives.
	r = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("x", 3*preSizeMax)))
	if body, err = ReadBody(httptest.NewRecorder(), r, 5<<20, 0); err != nil || len(body) != 3*preSizeMax || strings.Trim(string(body), "x") != "" {
		t.Errorf("a body of %d: %d bytes read, error %v", 3*preSizeMax, len(body), err)
	}
}

func TestReadBody(t *testing.T) {
	// Each whole body goes in the same write as its headers, so it is in before the deadline
	// whatever the machine's load; a stalled one never comes. No outcome depends on timing.
	const timeout = 100 * time.Millisecond
	results := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := ReadBody(w, r, 8, timeout)
		var tooLarge *http.MaxBytesError
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			results <- "timeout"
		case errors.As(err, &tooLarge):
			results <- "too large"
		case err != nil:
			results <- err.Error()
		default:
			time.Sleep(3 * timeout) // past the body's deadline
			results <- fmt.Sprintf("%s, context %v", body, r.Context().Err())
		}
	}))
	defer srv.Close()
	send := func(raw string) string {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, _ = io.WriteString(conn, raw)
		return <-results
	}
	head := "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
	if got := send(fmt.Sprintf(head, 5) + "ab"); got != "timeout" {
		t.Errorf("stalled body: %s", got)
	}
	if got := send(fmt.Sprintf(head, 9) + "123456789"); got != "too large" {
		t.Errorf("oversized body: %s", got)
	}
	if got := send(fmt.Sprintf(head, 5) + "hello"); got != "hello, context <nil>" {
		t.Errorf("whole body: %s", got)
	}
	// Without a declared length the body is read as it comes, and bounded all the same.
	chunked := "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	if got := send(chunked + "3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"); got != "hello, context <nil>" {
		t.Errorf("chunked body: %s", got)
	}
	if got := send(chunked + "5\r\nhello\r\n4\r\n5678\r\n0\r\n\r\n"); got != "too large" {
		t.Errorf("oversized chunked body: %s", got)
	}
}
