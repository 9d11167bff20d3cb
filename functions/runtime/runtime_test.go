package runtime

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestLoadConfigNamesEveryBadVariable(t *testing.T) {
	t.Setenv("PORT", "70000")
	t.Setenv("LOG_LEVEL", "chatty")
	t.Setenv("TLS_CERT_FILE", "/cert.pem")
	var c Common
	err := LoadConfig(&c)
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	for _, want := range []string{"PORT", "LOG_LEVEL", "TLS_CERT_FILE and TLS_KEY_FILE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	t.Setenv("SHUTDOWN_TIMEOUT", "soon")
	if err := LoadConfig(&c); err == nil || !strings.Contains(err.Error(), "SHUTDOWN_TIMEOUT") {
		t.Errorf("unparsable duration: %v", err)
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

func TestHealthReadinessAndMetrics(t *testing.T) {
	srv := NewServer("test", Common{ShutdownTimeout: 5 * time.Second}, slog.New(slog.DiscardHandler))
	var broken atomic.Bool
	srv.AddReadyCheck("kafka", func(context.Context) error {
		if broken.Load() {
			return errors.New("no broker reachable")
		}
		return nil
	})
	srv.Handle("/hello", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	base := "http://" + srv.Addr()

	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("healthz %d", code)
	}
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Errorf("readyz %d while dependencies are up", code)
	}
	broken.Store(true)
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "kafka: no broker reachable") {
		t.Errorf("readyz %d %q while kafka is down", code, body)
	}
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
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
