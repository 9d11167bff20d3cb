// Package runtime is the plumbing every trustplane function shares: configuration from the
// environment, JSON logs, the HTTP server with health, readiness and metrics endpoints, and a
// graceful shutdown that drains in-flight requests before flushing buffers.
package runtime

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// Common is the configuration every function reads from its environment.
type Common struct {
	Port int `envconfig:"PORT" default:"8080"`
	// ListenHost is the address the server binds; empty means every interface, as a pod
	// needs. The one-machine run binds functions that must not be reachable from other
	// machines to 127.0.0.1.
	ListenHost      string        `envconfig:"LISTEN_HOST"`
	LogLevel        string        `envconfig:"LOG_LEVEL" default:"info"`
	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"30s"`
	// TLSCertFile and TLSKeyFile make the function serve HTTPS itself. Usually TLS ends at the
	// cluster's ingress and both stay empty.
	TLSCertFile string `envconfig:"TLS_CERT_FILE"`
	TLSKeyFile  string `envconfig:"TLS_KEY_FILE"`
}

// Validate checks the shared settings.
func (c Common) Validate() error {
	var errs []error
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("PORT must be between 0 and 65535, got %d", c.Port))
	}
	if c.ListenHost != "" && net.ParseIP(c.ListenHost) == nil {
		errs = append(errs, fmt.Errorf("LISTEN_HOST must be an IP address (127.0.0.1, ::1, 0.0.0.0) or empty for every interface, got %q", c.ListenHost))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("SHUTDOWN_TIMEOUT must be positive, got %s", c.ShutdownTimeout))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("TLS_CERT_FILE and TLS_KEY_FILE must be set together"))
	}
	return errors.Join(errs...)
}

// Validator is implemented by configuration structs that check themselves after loading.
type Validator interface{ Validate() error }

// LoadConfig fills cfg from the environment and validates it, so that a function refuses to
// start with a message naming every bad variable rather than failing later.
func LoadConfig(cfg any) error {
	if err := envconfig.Process("", cfg); err != nil {
		if all := fieldErrors(cfg); len(all) > 0 {
			err = errors.Join(all...)
		}
		return fmt.Errorf("config: %w", err)
	}
	if v, ok := cfg.(Validator); ok {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	return nil
}

// fieldErrors loads each field of the struct cfg points to on its own, so that every variable
// that is missing or does not parse is named: envconfig stops at the first. Embedded structs
// without a tag (Common in every function's Config) are walked, as envconfig does.
func fieldErrors(cfg any) []error {
	var errs []error
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct && f.Tag.Get("envconfig") == "" {
				walk(f.Type)
				continue
			}
			if !f.IsExported() || f.Tag.Get("ignored") == "true" {
				continue
			}
			one := reflect.New(reflect.StructOf([]reflect.StructField{{Name: f.Name, Type: f.Type, Tag: f.Tag}}))
			if err := envconfig.Process("", one.Interface()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if t := reflect.TypeOf(cfg); t != nil && t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct {
		walk(t.Elem())
	}
	return errs
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("LOG_LEVEL must be one of debug, info, warn, error, got %q", s)
	}
	return l, nil
}

// NewLogger returns a JSON logger tagged with the function's name.
func NewLogger(function, level string, w io.Writer) *slog.Logger {
	l, err := parseLevel(level)
	if err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})).With("function", function)
}

// Server is a function's HTTP server: its own routes plus /healthz, /readyz and /metrics.
type Server struct {
	name     string
	cfg      Common
	Logger   *slog.Logger
	Registry *prometheus.Registry

	// ReadyInterval and ReadyTimeout are how often each ready check runs and how long one
	// may take; set them before Serve.
	ReadyInterval, ReadyTimeout time.Duration

	mux      *http.ServeMux
	mu       sync.Mutex
	checks   map[string]ReadyCheck
	states   map[string]error // each check's latest result, which /readyz answers from
	checking context.Context  // while serving: the checks' loops run until it ends
	shutdown []func(context.Context) error
	draining atomic.Bool
	inflight *prometheus.GaugeVec
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	listener net.Listener
	ready    chan struct{}
	// gatherers are served on /metrics: the server's own registry, then the function's.
	gatherers prometheus.Gatherers
}

// NewServer builds a server for the named function.
func NewServer(name string, cfg Common, logger *slog.Logger) *Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Server{
		name: name, cfg: cfg, Logger: logger, Registry: reg,
		ReadyInterval: DefaultReadyInterval, ReadyTimeout: DefaultReadyTimeout,
		mux:       http.NewServeMux(),
		checks:    map[string]ReadyCheck{},
		states:    map[string]error{},
		gatherers: prometheus.Gatherers{reg},
		ready:     make(chan struct{}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "trustplane", Name: "http_requests_in_flight", Help: "Requests being served.",
		}, []string{"function", "route"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "trustplane", Name: "http_requests_total", Help: "Requests served, by route and status code.",
		}, []string{"function", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "trustplane", Name: "http_request_duration_seconds", Help: "Time to answer a request.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"function", "route"}),
	}
	reg.MustRegister(s.inflight, s.requests, s.duration)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
	})
	s.mux.HandleFunc("GET /readyz", s.serveReady)
	// Read at each scrape: Serve adds the function's own gatherer after NewServer.
	gather := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return s.gatherers.Gather() })
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(gather, promhttp.HandlerOpts{Registry: reg}))
	return s
}

// Handle routes pattern to h, counting and timing its requests.
func (s *Server) Handle(pattern string, h http.Handler) {
	route := pattern
	inflight := s.inflight.WithLabelValues(s.name, route)
	duration := s.duration.WithLabelValues(s.name, route)
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		inflight.Inc()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		defer func() {
			inflight.Dec()
			duration.Observe(time.Since(start).Seconds())
			s.requests.WithLabelValues(s.name, route, fmt.Sprint(rec.code)).Inc()
		}()
		h.ServeHTTP(rec, r)
	}))
}

// OnShutdown registers fn to run after the HTTP server has drained; hooks run in reverse order
// of registration, so a buffer registered after its sink is flushed before the sink closes.
func (s *Server) OnShutdown(fn func(context.Context) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutdown = append(s.shutdown, fn)
}

// Addr is the address the server listens on, once Run has started listening.
func (s *Server) Addr() string {
	<-s.ready
	return s.listener.Addr().String()
}

// Run serves until ctx is cancelled, then stops accepting, drains in-flight requests, and runs
// the shutdown hooks, all within the configured shutdown timeout.
func (s *Server) Run(ctx context.Context) error {
	addr := net.JoinHostPort(s.cfg.ListenHost, strconv.Itoa(s.cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.listener = ln
	close(s.ready)
	stopChecks := s.startChecks()
	defer stopChecks()
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
	}
	tlsOn := s.cfg.TLSCertFile != ""
	if tlsOn {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
		if err != nil {
			ln.Close()
			return fmt.Errorf("load TLS certificate: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	errc := make(chan error, 1)
	go func() {
		var err error
		if tlsOn {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
		close(errc)
	}()
	s.Logger.Info("serving", "addr", ln.Addr().String(), "tls", tlsOn)

	select {
	case err := <-errc:
		// Serving failed: nothing to drain, but the hooks still flush within the timeout.
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		return errors.Join(err, s.runShutdown(sctx))
	case <-ctx.Done():
	}
	s.draining.Store(true)
	s.Logger.Info("shutting down: draining in-flight requests", "timeout", s.cfg.ShutdownTimeout.String())
	// Draining may take three quarters of SHUTDOWN_TIMEOUT; the hooks, which flush what the
	// requests left in buffers, get the rest (at least a quarter) on a context of their own. A
	// request still running when the drain's share is up (a long stream) must not leave them an
	// expired context, which would throw away everything they had to flush.
	deadline := time.Now().Add(s.cfg.ShutdownTimeout)
	dctx, cancelDrain := context.WithDeadline(context.Background(), deadline.Add(-s.cfg.ShutdownTimeout/4))
	err := srv.Shutdown(dctx)
	cancelDrain()
	if err != nil {
		s.Logger.Warn("requests still running at the drain's deadline are cut off", "error", err)
	}
	hctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	err = errors.Join(err, s.runShutdown(hctx))
	s.Logger.Info("stopped", "error", err)
	return err
}

func (s *Server) runShutdown(ctx context.Context) error {
	s.mu.Lock()
	hooks := s.shutdown
	s.shutdown = nil
	s.mu.Unlock()
	var errs []error
	for i := len(hooks) - 1; i >= 0; i-- {
		errs = append(errs, hooks[i](ctx))
	}
	return errors.Join(errs...)
}

// Main runs a function until SIGTERM or SIGINT and exits with a non-zero status on failure. It is
// the only place that calls os.Exit.
func Main(function string, run func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", function, err)
		stop()
		os.Exit(1)
	}
}

type statusRecorder struct {
	http.ResponseWriter
	code    int
	written bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.written {
		r.code, r.written = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.written = true
	return r.ResponseWriter.Write(b)
}

// Flush lets streaming handlers flush through the recorder.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// preSizeMax bounds the buffer ReadBody takes on a body's declared length alone: a batch of a
// hundred ordinary events fits.
const preSizeMax = 128 << 10

// ReadBody reads r's body, at most limit bytes (beyond it, an *http.MaxBytesError), giving it
// timeout from now to arrive (past it, an error matching os.ErrDeadlineExceeded; 0 means no
// bound). The server bounds reading headers, not bodies: without this a client that stalls
// mid-body holds its connection and goroutine for good. Once the body has ended, net/http
// clears the deadline itself (it goes on reading the connection to notice the client going
// away), so a request may then last as long as it needs. After an error the deadline stays:
// before answering, net/http reads what is left of a small body, which must not wait for a
// client that stalls.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64, timeout time.Duration) ([]byte, error) {
	if timeout > 0 {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
	}
	// A declared length sizes the buffer, so that an ordinary body is read without the copies
	// of growing it step by step (io.ReadAll's). Only up to preSizeMax, though: the memory is
	// taken before any byte arrives, and a client that declares megabytes and stalls must not
	// hold more than that.
	var b bytes.Buffer
	if r.ContentLength > 0 {
		b.Grow(int(min(r.ContentLength, limit, preSizeMax)) + bytes.MinRead)
	}
	_, err := b.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	return b.Bytes(), err
}
