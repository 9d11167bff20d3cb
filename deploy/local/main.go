// Command local runs the whole trustplane data plane on one machine: an embedded Kafka-protocol
// broker (unless KAFKA_BROKERS is set), a local ClickHouse server (unless CLICKHOUSE_ADDR is
// set), and every function plus the trigger dispatcher, each a child process wired as the
// Kubernetes manifests wire them and restarted when it exits. Everything but ingest and router
// listens on 127.0.0.1 only. Ctrl-C stops everything.
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
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/trustplane/trustplane/clickhouse/localserver"
	"github.com/trustplane/trustplane/functions/auth"
	"github.com/trustplane/trustplane/internal/testsupport"
	"github.com/trustplane/trustplane/kafka"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "local:", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, nil)).With("component", "local")
	return start(ctx, o, logger, stdout, stderr)
}

func start(ctx context.Context, o options, logger *slog.Logger, stdout, stderr io.Writer) error {
	if o.publicHost == "" {
		o.publicHost = loopback
	}
	embeddedKafka, localClickHouse := o.kafkaBrokers == "", o.clickhouseAddr == ""
	// Kafka and ClickHouse keep their ports across restarts: the functions were given them.
	for _, p := range []struct {
		use  bool
		port *int
	}{{embeddedKafka, &o.kafkaPort}, {localClickHouse, &o.clickhousePort}, {localClickHouse, &o.clickhouseHTTPPort}, {localClickHouse, &o.clickhouseInterserverPort}} {
		if p.use && *p.port == 0 {
			port, err := testsupport.FreePort()
			if err != nil {
				return err
			}
			*p.port = port
		}
	}
	// A taken port would otherwise show only as one child failing after others started, or
	// worse, as another process answering that child's readiness check.
	ports := []namedPort{
		{"ingest", o.publicHost, o.ingestPort}, {"auth", loopback, o.authPort}, {"persist", loopback, o.persistPort},
		{"dispatcher", loopback, o.dispatcherPort}, {"router", o.publicHost, o.routerPort}, {"guard", loopback, o.guardPort},
		{"query", o.publicHost, o.queryPort}, {"batch", loopback, o.batchPort},
	}
	if embeddedKafka {
		ports = append(ports, namedPort{"kafka", loopback, o.kafkaPort})
	}
	if localClickHouse {
		ports = append(ports, namedPort{"clickhouse", loopback, o.clickhousePort}, namedPort{"clickhouse-http", loopback, o.clickhouseHTTPPort},
			namedPort{"clickhouse-interserver", loopback, o.clickhouseInterserverPort})
	}
	if err := checkPorts(ports); err != nil {
		return err
	}
	for _, d := range []string{o.dir, filepath.Join(o.dir, "auth")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}

	sup := newSupervisor(logger, o.started)
	defer sup.stop()
	// Ctrl-C while starting is a stop like any other, not a failure of the child being waited for.
	stopped := func(err error) error {
		if ctx.Err() != nil {
			logger.Info("stopping")
			return nil
		}
		return err
	}

	brokers := o.kafkaBrokers
	if embeddedKafka {
		brokers = net.JoinHostPort(loopback, strconv.Itoa(o.kafkaPort))
	}
	brokerList := strings.Split(brokers, ",")
	n := len(brokerList)
	// Creating the topics is Kafka's readiness check: it needs the broker to answer, and
	// leaves the topics as the manifests declare them on a broker of this run or of its own.
	ensureTopics := func(ctx context.Context) error {
		return kafka.EnsureTopics(ctx, brokerList, kafka.EventsTopic().ForBrokers(n), kafka.DeadLetterTopic().ForBrokers(n))
	}
	if embeddedKafka {
		err := sup.start(ctx, child{name: "kafka", addr: brokers, ready: ensureTopics, start: func(context.Context) (instance, error) {
			return startProcess(filepath.Join(o.bin, "embedded-kafka"), []string{"-port", strconv.Itoa(o.kafkaPort),
				"-data-dir", filepath.Join(o.dir, "kafka"), "-partitions", "12"}, nil, stderr)
		}})
		if err != nil {
			return stopped(err)
		}
	} else {
		tctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := ensureTopics(tctx)
		cancel()
		if err != nil {
			return stopped(err)
		}
	}

	chAddr := o.clickhouseAddr
	if localClickHouse {
		chDir := filepath.Join(o.dir, "clickhouse")
		chAddr = net.JoinHostPort(loopback, strconv.Itoa(o.clickhousePort))
		cfg := localserver.Config{Dir: chDir, TCPPort: o.clickhousePort, HTTPPort: o.clickhouseHTTPPort, InterserverPort: o.clickhouseInterserverPort}
		err := sup.start(ctx, child{name: "clickhouse", addr: chAddr,
			start: func(ctx context.Context) (instance, error) {
				srv, err := localserver.Start(ctx, cfg)
				if err != nil {
					return nil, err
				}
				return clickhouse{srv}, nil
			},
			ready: func(ctx context.Context) error { return localserver.Ping(ctx, chAddr) },
		})
		if err != nil {
			return stopped(err)
		}
	}

	pepperFile := filepath.Join(o.dir, "auth", "pepper")
	keysFile := filepath.Join(o.dir, "auth", "keys.json")
	pepper, err := ensurePepper(pepperFile)
	if err != nil {
		return err
	}
	demo, err := ensureDemoKey(keysFile, filepath.Join(o.dir, "auth", "demo-key"), pepper, time.Now())
	if err != nil {
		return err
	}

	local := func(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }
	ingestURL := local(o.ingestPort)
	if o.tlsCert != "" {
		ingestURL = "https://127.0.0.1:" + strconv.Itoa(o.ingestPort)
	}
	functions := []function{
		{name: "auth", host: loopback, port: o.authPort, env: []string{"AUTH_KEYS_FILE=" + keysFile, "AUTH_PEPPER_FILE=" + pepperFile}},
		{name: "persist", host: loopback, port: o.persistPort, env: []string{"CLICKHOUSE_ADDR=" + chAddr}},
		{name: "guard", host: loopback, port: o.guardPort},
		{name: "dispatcher", host: loopback, port: o.dispatcherPort, env: []string{
			"KAFKA_BROKERS=" + brokers, "DISPATCHER_TRIGGERS=" + o.triggers,
			"DISPATCHER_SUBSCRIBERS=persist=" + local(o.persistPort) + ",guard=" + local(o.guardPort),
		}},
		{name: "ingest", host: o.publicHost, port: o.ingestPort, tls: o.tlsCert != "", env: []string{"KAFKA_BROKERS=" + brokers, "AUTH_URL=" + local(o.authPort),
			"TLS_CERT_FILE=" + o.tlsCert, "TLS_KEY_FILE=" + o.tlsKey}},
		// Without ROUTER_CONFIG in the environment, router serves its built-in mock models.
		{name: "router", host: o.publicHost, port: o.routerPort, env: []string{"KAFKA_BROKERS=" + brokers, "AUTH_URL=" + local(o.authPort)}},
		// query reads as the local server's read-only user; persist has applied the schema.
		{name: "query", host: o.publicHost, port: o.queryPort, env: []string{"CLICKHOUSE_ADDR=" + chAddr, "CLICKHOUSE_USER=query", "AUTH_URL=" + local(o.authPort)}},
		// batch takes BATCH_RETENTION from the runner's environment.
		{name: "batch", host: loopback, port: o.batchPort, env: []string{"CLICKHOUSE_ADDR=" + chAddr}},
	}
	for _, f := range functions {
		if err := sup.start(ctx, f.child(o.bin, stderr)); err != nil {
			return stopped(err)
		}
	}
	// What the PingSources do in a cluster: their events to batch, on their schedules.
	pings, err := loadPingSources(o.pingSources)
	if err != nil {
		return err
	}
	for _, p := range pings {
		go p.run(ctx, local(o.batchPort), logger)
	}
	portsFile := filepath.Join(o.dir, "ports")
	if err := writePorts(portsFile, o, embeddedKafka, localClickHouse); err != nil {
		return err
	}
	// The file says what is running: a stopped run leaves none behind.
	defer os.Remove(portsFile)
	writeBanner(stdout, banner{
		ingest: ingestURL, auth: local(o.authPort), persist: local(o.persistPort), dispatcher: local(o.dispatcherPort),
		router: local(o.routerPort), guard: local(o.guardPort), query: local(o.queryPort), batch: local(o.batchPort), brokers: brokers, triggers: o.triggers, clickhouse: chAddr,
		exposed: o.publicHost != loopback, keysFile: keysFile, keyPath: filepath.Join(o.dir, "auth", "demo-key"), demo: demo,
		portsFile: portsFile,
	})
	if o.ready != nil {
		o.ready <- demo.key
	}
	<-ctx.Done()
	logger.Info("stopping")
	return nil
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
		how := fmt.Sprintf("-%s-port or %s", p.name, flagEnv[p.name+"-port"])
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

// function is one of the plane's functions, a child process answering /readyz on its port.
type function struct {
	name string
	host string // LISTEN_HOST
	port int
	tls  bool // ingest with -tls-cert answers over HTTPS
	env  []string
}

func (f function) child(bin string, out io.Writer) child {
	addr := net.JoinHostPort(f.host, strconv.Itoa(f.port))
	scheme := "http"
	if f.tls {
		scheme = "https"
	}
	readyURL := scheme + "://" + net.JoinHostPort(loopback, strconv.Itoa(f.port)) + "/readyz"
	// Readiness is asked of our own child on loopback; its certificate may be self-signed.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	env := append([]string{"LISTEN_HOST=" + f.host, "PORT=" + strconv.Itoa(f.port)}, f.env...)
	return child{
		name: f.name, addr: addr,
		start: func(context.Context) (instance, error) {
			return startProcess(filepath.Join(bin, f.name), nil, env, out)
		},
		ready: func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, readyURL, nil)
			if err != nil {
				return err
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
			}
			return nil
		},
	}
}

// clickhouse is the local ClickHouse server as an instance.
type clickhouse struct{ srv *localserver.Server }

func (c clickhouse) Pid() int              { return c.srv.Pid() }
func (c clickhouse) Done() <-chan struct{} { return c.srv.Done() }
func (c clickhouse) Stop()                 { _ = c.srv.Stop() }

func (c clickhouse) Err() error {
	return fmt.Errorf("clickhouse-server ended; its logs are in %s", filepath.Join(c.srv.Config().Dir, "log"))
}
