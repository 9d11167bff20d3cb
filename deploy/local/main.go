// Command local runs the whole trustplane data plane on one machine: an embedded Kafka-protocol
// broker (unless KAFKA_BROKERS is set), a local ClickHouse server (unless CLICKHOUSE_ADDR is
// set), and every function plus the trigger dispatcher as child processes, wired as the
// Kubernetes manifests wire them. Ctrl-C stops everything.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/trustplane/trustplane/clickhouse/localserver"
	"github.com/trustplane/trustplane/functions/auth"
	"github.com/trustplane/trustplane/kafka"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "local:", err)
		stop()
		os.Exit(1)
	}
}

type options struct {
	dir, bin, triggers                                string
	ingestPort, authPort, persistPort, dispatcherPort int
	routerPort                                        int
	publicHost                                        string // ingest's and router's address; the rest bind 127.0.0.1
	kafkaBrokers, clickhouseAddr                      string
	tlsCert, tlsKey                                   string        // ingest serves HTTPS with these when set
	ready                                             chan<- string // receives the demo key once everything is ready (tests)
	started                                           func(function string, pid int)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil)).With("component", "local")
	return start(ctx, o, logger, stdout, stderr)
}

// loopback is where everything but ingest and router listens: nothing else is meant to be
// reached from another machine (persist, for one, takes the tenant from its deliveries).
const loopback = "127.0.0.1"

func parseOptions(args []string, stderr io.Writer) (options, error) {
	o := options{}
	var envErrs []error
	envInt := func(name string, def int) int {
		v := os.Getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("%s=%q is not a port number", name, v))
			return def
		}
		return n
	}
	envStr := func(name, def string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.dir, "dir", ".run", "directory for local state: Kafka and ClickHouse data, keys, logs")
	fs.StringVar(&o.bin, "bin", "bin", "directory holding the function binaries (make build)")
	fs.StringVar(&o.triggers, "triggers", "eventing/config", "Trigger manifests the dispatcher follows")
	fs.IntVar(&o.ingestPort, "ingest-port", envInt("INGEST_PORT", 8080), "ingest's port (public)")
	fs.IntVar(&o.authPort, "auth-port", envInt("AUTH_PORT", 8081), "auth's port")
	fs.IntVar(&o.persistPort, "persist-port", envInt("PERSIST_PORT", 8082), "persist's port")
	fs.IntVar(&o.dispatcherPort, "dispatcher-port", envInt("DISPATCHER_PORT", 8083), "the dispatcher's port (health and metrics)")
	fs.IntVar(&o.routerPort, "router-port", envInt("ROUTER_PORT", 8084), "router's port (public OpenAI-compatible LLM gateway)")
	fs.StringVar(&o.publicHost, "public-host", envStr("PUBLIC_HOST", loopback),
		"address ingest and router listen on (0.0.0.0: every interface); auth, persist, the dispatcher, Kafka and ClickHouse always listen on 127.0.0.1")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "certificate file: ingest serves HTTPS (with -tls-key)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "private key file for -tls-cert")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if net.ParseIP(o.publicHost) == nil {
		envErrs = append(envErrs, fmt.Errorf("-public-host or PUBLIC_HOST must be an IP address such as 127.0.0.1 or 0.0.0.0, got %q", o.publicHost))
	}
	if err := errors.Join(envErrs...); err != nil {
		return o, err
	}
	o.kafkaBrokers = os.Getenv("KAFKA_BROKERS")
	o.clickhouseAddr = os.Getenv("CLICKHOUSE_ADDR")
	return o, nil
}

func start(ctx context.Context, o options, logger *slog.Logger, stdout, stderr io.Writer) error {
	// A taken port would otherwise show only as one function exiting after Kafka and ClickHouse
	// started, or worse, as another process answering that function's readiness check.
	if o.publicHost == "" {
		o.publicHost = loopback
	}
	if err := checkPorts([]namedPort{
		{"ingest", o.publicHost, o.ingestPort}, {"auth", loopback, o.authPort}, {"persist", loopback, o.persistPort},
		{"dispatcher", loopback, o.dispatcherPort}, {"router", o.publicHost, o.routerPort},
	}); err != nil {
		return err
	}
	for _, d := range []string{o.dir, filepath.Join(o.dir, "auth")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}

	brokers := o.kafkaBrokers
	if brokers == "" {
		emb, err := kafka.StartEmbedded(kafka.EmbeddedConfig{DataDir: filepath.Join(o.dir, "kafka"), Partitions: 12})
		if err != nil {
			return err
		}
		defer emb.Close()
		brokers = strings.Join(emb.Addrs(), ",")
		logger.Info("embedded Kafka-protocol broker started", "brokers", brokers)
	}
	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	n := len(strings.Split(brokers, ","))
	err := kafka.EnsureTopics(tctx, strings.Split(brokers, ","), kafka.EventsTopic().ForBrokers(n), kafka.DeadLetterTopic().ForBrokers(n))
	cancel()
	if err != nil {
		return err
	}

	chAddr := o.clickhouseAddr
	if chAddr == "" {
		srv, err := localserver.Start(ctx, localserver.Config{Dir: filepath.Join(o.dir, "clickhouse")})
		if err != nil {
			return err
		}
		defer srv.Stop()
		chAddr = srv.Addr()
		logger.Info("local ClickHouse server started", "addr", chAddr, "dir", filepath.Join(o.dir, "clickhouse"))
	}

	pepperFile := filepath.Join(o.dir, "auth", "pepper")
	keysFile := filepath.Join(o.dir, "auth", "keys.json")
	pepper, err := ensurePepper(pepperFile)
	if err != nil {
		return err
	}
	demoKey, rec, err := auth.AddKey(keysFile, pepper, auth.NewKey{
		Tenant: "demo", Project: "demo", Scopes: []auth.Scope{auth.ScopeIngest, auth.ScopeQuery, auth.ScopeLLM},
		Description: "demo key created by the local run",
	}, time.Now())
	if err != nil {
		return err
	}

	local := func(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }
	procs := []proc{
		{name: "auth", host: loopback, port: o.authPort, env: []string{"AUTH_KEYS_FILE=" + keysFile, "AUTH_PEPPER_FILE=" + pepperFile}},
		{name: "persist", host: loopback, port: o.persistPort, env: []string{"CLICKHOUSE_ADDR=" + chAddr}},
		{name: "dispatcher", host: loopback, port: o.dispatcherPort, env: []string{
			"KAFKA_BROKERS=" + brokers, "DISPATCHER_TRIGGERS=" + o.triggers,
			"DISPATCHER_SUBSCRIBERS=persist=" + local(o.persistPort),
		}},
		{name: "ingest", host: o.publicHost, port: o.ingestPort, env: []string{"KAFKA_BROKERS=" + brokers, "AUTH_URL=" + local(o.authPort),
			"TLS_CERT_FILE=" + o.tlsCert, "TLS_KEY_FILE=" + o.tlsKey}},
		// Without ROUTER_CONFIG in the environment, router serves its built-in mock models.
		{name: "router", host: o.publicHost, port: o.routerPort, env: []string{"KAFKA_BROKERS=" + brokers, "AUTH_URL=" + local(o.authPort)}},
	}
	ingestURL := local(o.ingestPort)
	if o.tlsCert != "" {
		ingestURL = "https://127.0.0.1:" + strconv.Itoa(o.ingestPort)
	}
	g := &group{logger: logger, exited: make(chan string, len(procs))}
	defer g.stop()
	for i := range procs {
		if err := g.start(ctx, o.bin, &procs[i], stderr); err != nil {
			return err
		}
		if o.started != nil {
			o.started(procs[i].name, procs[i].cmd.Process.Pid)
		}
		if err := waitReady(ctx, readyURL(procs[i], o), g.exited); err != nil {
			if ctx.Err() != nil { // Ctrl-C while starting: a stop, not a failure of this function
				logger.Info("stopping")
				return nil
			}
			return fmt.Errorf("%s did not become ready: %w", procs[i].name, err)
		}
	}
	fmt.Fprintf(stdout, `
trustplane is running.
  ingest      %s  (public telemetry endpoint)
  auth        %s
  persist     %s
  dispatcher  %s  (Kafka %s -> Triggers in %s)
  router      %s  (OpenAI-compatible LLM gateway; mock models unless ROUTER_CONFIG is set)
  ClickHouse  %s  (native protocol)

Demo API key (tenant demo, project demo; shown once, stored hashed in %s, id %s):
  %s

Send a trace:
  curl -i %s \
    -H 'Authorization: Bearer %s' \
    -H 'Content-Type: application/cloudevents+json' \
    -d '{"specversion":"1.0","id":"'$(date +%%s%%N)'","source":"/demo","type":"io.trustplane.telemetry.trace.v1","data":{"id":"trace-1","timestamp":"'$(date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ)'","name":"hello"}}'

Call an LLM through router (any OpenAI SDK works: base URL %s/v1, the key above):
  curl %s/v1/chat/completions \
    -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' \
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}'

Ctrl-C stops everything.
`, ingestURL, local(o.authPort), local(o.persistPort), local(o.dispatcherPort), brokers, o.triggers,
		local(o.routerPort), chAddr, keysFile, rec.ID, demoKey, ingestURL, demoKey,
		local(o.routerPort), local(o.routerPort), demoKey)
	if o.ready != nil {
		o.ready <- demoKey
	}
	select {
	case <-ctx.Done():
		logger.Info("stopping")
		return nil
	case name := <-g.exited:
		return fmt.Errorf("%s exited unexpectedly; see its log above", name)
	}
}

type namedPort struct {
	name, host string
	port       int
}

// checkPorts fails, naming the port and how to choose another, when a function's port is
// out of range, given to two functions, or already taken. Each is tried on the address its
// function will bind; every listener stays open until all are checked, so a port given twice
// is caught.
func checkPorts(ports []namedPort) error {
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	for _, p := range ports {
		how := fmt.Sprintf("-%s-port or %s_PORT", p.name, strings.ToUpper(p.name))
		if p.port < 1 || p.port > 65535 {
			return fmt.Errorf("%s port %d is not a TCP port; choose one with %s", p.name, p.port, how)
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(p.host, strconv.Itoa(p.port)))
		if err != nil {
			return fmt.Errorf("%s port %d is not free (another `make run`?): %w; stop what holds it or choose another port with %s", p.name, p.port, err, how)
		}
		held = append(held, ln)
	}
	return nil
}

// ensurePepper creates the local pepper file once (64 hex characters from crypto/rand) and
// loads it, so keys created by earlier runs keep verifying.
func ensurePepper(path string) (auth.Pepper, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return auth.Pepper{}, err
		}
		if err := os.WriteFile(path, []byte(fmt.Sprintf("%x", secret)), 0o600); err != nil {
			return auth.Pepper{}, err
		}
	} else if err != nil {
		return auth.Pepper{}, err
	}
	return auth.LoadPepper("", path)
}

type proc struct {
	name string
	host string // LISTEN_HOST
	port int
	env  []string
	cmd  *exec.Cmd
	done chan struct{}
}

// group runs the functions as child processes and stops them in reverse order of start, so
// ingest stops taking events before the dispatcher and persist drain.
type group struct {
	logger   *slog.Logger
	mu       sync.Mutex
	procs    []*proc
	stopping bool // set by stop: an exit after it is expected, not a failure
	exited   chan string
}

func (g *group) start(ctx context.Context, bin string, p *proc, stderr io.Writer) error {
	path := filepath.Join(bin, p.name)
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("%s: %w (run `make build` first)", p.name, err)
	}
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), append([]string{"LISTEN_HOST=" + p.host, "PORT=" + strconv.Itoa(p.port)}, p.env...)...)
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	// Its own process group keeps a terminal's Ctrl-C from reaching it before the ordered stop;
	// Pdeathsig stops it (gracefully) should this runner die without stopping it, as on SIGKILL,
	// instead of leaving it holding its port.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	g.mu.Lock()
	g.procs = append(g.procs, p)
	g.mu.Unlock()
	g.logger.Info("started", "function", p.name, "pid", cmd.Process.Pid, "addr", net.JoinHostPort(p.host, strconv.Itoa(p.port)))
	go func() {
		err := cmd.Wait()
		// done closes after the exit is judged, so whoever waits on it sees the judgement.
		defer close(p.done)
		g.mu.Lock()
		stopping := g.stopping
		g.mu.Unlock()
		if stopping || ctx.Err() != nil {
			return
		}
		g.logger.Error("exited", "function", p.name, "error", err)
		g.exited <- p.name
	}()
	return nil
}

func (g *group) stop() {
	g.mu.Lock()
	procs := g.procs
	g.procs = nil
	g.stopping = true
	g.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(40 * time.Second):
			g.logger.Warn("did not stop in time; killing", "function", p.name)
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		g.logger.Info("stopped", "function", p.name)
	}
}

// readyURL is where a function answers readiness; ingest answers over HTTPS when it has a
// certificate.
func readyURL(p proc, o options) string {
	if p.name == "ingest" && o.tlsCert != "" {
		return "https://127.0.0.1:" + strconv.Itoa(p.port) + "/readyz"
	}
	return "http://127.0.0.1:" + strconv.Itoa(p.port) + "/readyz"
}

func waitReady(ctx context.Context, url string, exited <-chan string) error {
	deadline := time.Now().Add(60 * time.Second)
	// Readiness is asked of our own child on loopback; its certificate may be self-signed.
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	var last error
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case name := <-exited:
			return fmt.Errorf("%s exited", name)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return last
}
