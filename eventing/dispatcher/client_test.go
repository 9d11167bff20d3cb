package dispatcher

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func deliveryRequest(t *testing.T, ctx context.Context, target string, body string) *http.Request {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL, req.Host = u, u.Host
	req.Header = http.Header{"Ce-Id": {"e-1"}}
	b := []byte(body)
	req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	return req
}

func TestClientKeepsOneConnectionForSequentialRequests(t *testing.T) {
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Kne-Echo", r.Header.Get("Ce-Id"))
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write(b)
	}))
	c := newHTTPClient()
	defer c.CloseIdleConnections()
	for i := 0; i < 50; i++ {
		body := "event " + strconv.Itoa(i)
		res, err := send(c, deliveryRequest(t, context.Background(), srv.URL, body), responseMax)
		if err != nil {
			t.Fatal(err)
		}
		if res.status != http.StatusAccepted || string(res.body) != body || res.header.Get("Kne-Echo") != "e-1" {
			t.Fatalf("response %d %q %v, want 202 echoing %q", res.status, res.body, res.header, body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 50 sequential requests, want 1", n)
	}
}

// A subscriber that closes an idle connection without saying so: the next request on it
// fails before any answer and is sent again on a new connection.
func TestClientReplacesAConnectionClosedWhileIdle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var served atomic.Int32
	closed := make(chan struct{}, 3) // a token each time the server has closed a connection
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				// One request per connection, without Connection: close.
				defer func() { conn.Close(); closed <- struct{}{} }()
				req, err := http.ReadRequest(bufio.NewReader(conn))
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				served.Add(1)
				_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	target := "http://" + ln.Addr().String()
	c := newHTTPClient()
	defer c.CloseIdleConnections()
	for i := 0; i < 3; i++ {
		res, err := send(c, deliveryRequest(t, context.Background(), target, "x"), responseMax)
		if err != nil || res.status != http.StatusOK || string(res.body) != "ok" {
			t.Fatalf("request %d: %v %d %q", i, err, res.status, res.body)
		}
		<-closed // the connection the client keeps idle is closed before the next request
	}
	if n := served.Load(); n != 3 {
		t.Errorf("server answered %d requests, want 3", n)
	}
}

func TestClientStopsAtTheContextDeadlineAndDropsTheConnection(t *testing.T) {
	release := make(chan struct{})
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Slow") != "" {
			<-release
		}
	}))
	defer close(release)
	c := newHTTPClient()
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req := deliveryRequest(t, ctx, srv.URL, "x")
	req.Header.Set("Slow", "1")
	if _, err := send(c, req, responseMax); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want the context's deadline", err)
	}
	if res, err := send(c, deliveryRequest(t, context.Background(), srv.URL, "x"), responseMax); err != nil || res.status != http.StatusOK {
		t.Fatalf("next request: %v %d", err, res.status)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (the timed-out one is not reused)", n)
	}
}

func TestClientCutsALongBodyAndDropsTheConnection(t *testing.T) {
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("a", 100))
	}))
	c := newHTTPClient()
	defer c.CloseIdleConnections()
	for _, limit := range []int64{10, 10, 100, 100} {
		res, err := send(c, deliveryRequest(t, context.Background(), srv.URL, ""), limit)
		if err != nil || len(res.body) != int(limit) {
			t.Fatalf("limit %d: %v, %d bytes", limit, err, len(res.body))
		}
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3 (two cut bodies, then one connection kept)", n)
	}
}

// countingServer serves h on a test server that counts the connections made to it.
func countingServer(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int32) {
	conns := new(atomic.Int32)
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, conns
}
