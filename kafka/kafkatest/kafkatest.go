// Package kafkatest starts real Apache Kafka brokers (KRaft mode, no
// ZooKeeper) for tests: one combined broker+controller, or a cluster of n
// nodes that are each broker and controller with an n-voter quorum. The
// brokers run from the jars `make kafka-jars` puts in .cache/kafka, as child
// processes on free ports in a temporary directory, and are killed (whole
// process group) on cleanup.
package kafkatest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/trustplane/trustplane/internal/testsupport"
)

// KafkaVersion is the Apache Kafka release the harness runs; it must match
// KAFKA_VERSION in kafka/kafka.mk.
const KafkaVersion = "4.1.1"

// LibsEnv names the environment variable that overrides where the broker
// jars are.
const LibsEnv = "TRUSTPLANE_KAFKA_LIBS"

// StartTimeout bounds how long starting (or restarting) a node may take.
const StartTimeout = 90 * time.Second

// defaultJVMOptions keep each broker small and quick to start: a small heap,
// the serial collector, and only the fast JIT tier.
var defaultJVMOptions = []string{
	"-Xms64m", "-Xmx384m",
	"-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
	"-Djava.awt.headless=true",
}

// Option changes the brokers' settings.
type Option func(*settings)

type settings struct {
	props   map[string]string
	jvmOpts []string
}

// WithProperty sets (or overrides) a server.properties entry on every node.
func WithProperty(key, value string) Option {
	return func(s *settings) { s.props[key] = value }
}

// WithJVMOptions replaces the JVM options (heap, GC, JIT).
func WithJVMOptions(opts ...string) Option {
	return func(s *settings) { s.jvmOpts = opts }
}

// Broker is a running single node or cluster.
type Broker struct {
	libs      string
	java      string
	dir       string
	clusterID string
	jvmOpts   []string
	nodes     []*node
	startup   time.Duration

	mu sync.Mutex // guards the process fields of nodes
}

type node struct {
	id             int
	port, ctrlPort int
	dir            string
	cmd            *exec.Cmd
	exited         chan struct{}
}

// Start starts a single-node broker for the test and stops it on cleanup.
// The test fails if the broker cannot start (for example when the jars are
// missing: run `make kafka-jars`).
func Start(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	return startForTest(t, 1, opts)
}

// StartCluster starts an n-node cluster (n brokers, n controller voters) for
// the test, with default.replication.factor and the internal topics'
// replication at min(n, 3) and min.insync.replicas 2 (for n >= 2).
func StartCluster(t testing.TB, n int, opts ...Option) *Broker {
	t.Helper()
	return startForTest(t, n, opts)
}

func startForTest(t testing.TB, n int, opts []Option) *Broker {
	t.Helper()
	b, err := start(t.TempDir(), n, opts)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	t.Cleanup(b.Close)
	t.Logf("kafkatest: Apache Kafka %s, %d node(s) at %s, started in %s", KafkaVersion, n, strings.Join(b.Addrs(), ","), b.StartupTime().Round(time.Millisecond))
	return b
}

// StartMain starts a single-node broker without a testing.TB, for TestMain.
// The returned function stops the broker and removes its files.
func StartMain(opts ...Option) (*Broker, func(), error) {
	dir, err := os.MkdirTemp("", "kafkatest-")
	if err != nil {
		return nil, nil, err
	}
	b, err := start(dir, 1, opts)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("kafkatest: %w", err)
	}
	fmt.Fprintf(os.Stderr, "kafkatest: Apache Kafka %s at %s started in %s\n", KafkaVersion, strings.Join(b.Addrs(), ","), b.StartupTime().Round(time.Millisecond))
	stop := func() {
		b.Close()
		os.RemoveAll(dir)
	}
	return b, stop, nil
}

// RunMain is a package's whole TestMain when every test shares one broker: it starts a
// single-node broker, stores its addresses in *brokers, runs the tests and stops the broker.
// It returns the exit code for os.Exit; if the broker cannot start it prints why and returns 1.
//
//	func TestMain(m *testing.M) { os.Exit(kafkatest.RunMain(m, &brokers)) }
func RunMain(m *testing.M, brokers *[]string) int {
	b, stop, err := StartMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	*brokers = b.Addrs()
	return m.Run()
}

// Shared is one single-node broker for a package's tests, started by the first test that asks
// for it, so tests that need none (unit tests, fuzzing) start none. Stop it in TestMain:
//
//	var shared kafkatest.Shared
//	func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }
type Shared struct {
	once   sync.Once
	broker *Broker
	stop   func()
	err    error
}

// Broker returns the shared broker, starting it on the first call. The test fails if it
// cannot start.
func (s *Shared) Broker(t testing.TB) *Broker {
	t.Helper()
	s.once.Do(func() { s.broker, s.stop, s.err = StartMain() })
	if s.err != nil {
		t.Fatalf("cannot start Apache Kafka: %v", s.err)
	}
	return s.broker
}

// Run runs the tests, then stops the broker if a test started it, and returns m.Run's code.
func (s *Shared) Run(m *testing.M) int {
	code := m.Run()
	if s.stop != nil {
		s.stop()
	}
	return code
}

// Addrs returns the bootstrap addresses of all nodes, stopped ones included.
func (b *Broker) Addrs() []string {
	addrs := make([]string, len(b.nodes))
	for i, n := range b.nodes {
		addrs[i] = hostPort(n.port)
	}
	return addrs
}

// StartupTime is how long the first start took, from formatting the storage
// to every node answering metadata.
func (b *Broker) StartupTime() time.Duration { return b.startup }

// Dir is the directory holding the nodes' configuration and data.
func (b *Broker) Dir() string { return b.dir }

// Nodes returns how many nodes the cluster has.
func (b *Broker) Nodes() int { return len(b.nodes) }

// StopBroker kills node i (0-based) at once, as a crash would, and waits
// until the process is gone. Its data stays for StartBroker.
func (b *Broker) StopBroker(i int) error {
	if i < 0 || i >= len(b.nodes) {
		return fmt.Errorf("kafkatest: no node %d (have %d)", i, len(b.nodes))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.kill(b.nodes[i])
	return nil
}

// StartBroker starts node i again after StopBroker and waits until it
// answers metadata.
func (b *Broker) StartBroker(i int) error {
	if i < 0 || i >= len(b.nodes) {
		return fmt.Errorf("kafkatest: no node %d (have %d)", i, len(b.nodes))
	}
	b.mu.Lock()
	n := b.nodes[i]
	if n.cmd != nil {
		b.mu.Unlock()
		return fmt.Errorf("kafkatest: node %d is running", i)
	}
	err := b.launch(n)
	b.mu.Unlock()
	if err != nil {
		return err
	}
	return b.waitReady(n, time.Now().Add(StartTimeout))
}

// Close kills every node.
func (b *Broker) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, n := range b.nodes {
		b.kill(n)
	}
}

func (b *Broker) kill(n *node) {
	if n.cmd == nil {
		return
	}
	// The broker runs in its own process group; kill all of it.
	_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	<-n.exited
	n.cmd = nil
}

func start(dir string, n int, opts []Option) (*Broker, error) {
	if n < 1 {
		return nil, fmt.Errorf("need at least one node, got %d", n)
	}
	began := time.Now()
	libs, err := LibsDir()
	if err != nil {
		return nil, err
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, errors.New("java not found on PATH: install a Java 17+ runtime (apt-get install openjdk-17-jre-headless)")
	}
	s := settings{props: map[string]string{}, jvmOpts: defaultJVMOptions}
	for _, o := range opts {
		o(&s)
	}
	b := &Broker{libs: libs, java: java, dir: dir, clusterID: newClusterID(), jvmOpts: s.jvmOpts}

	ports, err := testsupport.FreePorts(2 * n)
	if err != nil {
		return nil, err
	}
	var voters []string
	for i := 0; i < n; i++ {
		nd := &node{id: i + 1, port: ports[2*i], ctrlPort: ports[2*i+1], dir: filepath.Join(dir, "node-"+strconv.Itoa(i+1))}
		b.nodes = append(b.nodes, nd)
		voters = append(voters, fmt.Sprintf("%d@%s", nd.id, hostPort(nd.ctrlPort)))
	}
	if err := os.WriteFile(filepath.Join(dir, "log4j2.properties"), []byte(log4jConfig), 0o644); err != nil {
		return nil, err
	}
	for _, nd := range b.nodes {
		props := properties(nd, n, strings.Join(voters, ","))
		for k, v := range s.props {
			props[k] = v
		}
		if err := os.MkdirAll(nd.dir, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(nd.dir, "server.properties"), renderProperties(props), 0o644); err != nil {
			return nil, err
		}
	}

	// Format every node's storage, in parallel: each is a JVM start.
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, nd := range b.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.format(nd)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	b.mu.Lock()
	for _, nd := range b.nodes {
		if err := b.launch(nd); err != nil {
			b.mu.Unlock()
			b.Close()
			return nil, err
		}
	}
	b.mu.Unlock()
	deadline := time.Now().Add(StartTimeout)
	for _, nd := range b.nodes {
		if err := b.waitReady(nd, deadline); err != nil {
			b.Close()
			return nil, err
		}
	}
	b.startup = time.Since(began)
	return b, nil
}

func properties(nd *node, n int, voters string) map[string]string {
	rf := strconv.Itoa(min(n, 3))
	minISR := "1"
	if n >= 2 {
		minISR = "2"
	}
	return map[string]string{
		"process.roles":                  "broker,controller",
		"node.id":                        strconv.Itoa(nd.id),
		"controller.quorum.voters":       voters,
		"listeners":                      fmt.Sprintf("PLAINTEXT://%s,CONTROLLER://%s", hostPort(nd.port), hostPort(nd.ctrlPort)),
		"advertised.listeners":           "PLAINTEXT://" + hostPort(nd.port),
		"controller.listener.names":      "CONTROLLER",
		"inter.broker.listener.name":     "PLAINTEXT",
		"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"log.dirs":                       filepath.Join(nd.dir, "data"),

		"num.partitions":                                   "1",
		"auto.create.topics.enable":                        "true",
		"default.replication.factor":                       rf,
		"min.insync.replicas":                              minISR,
		"offsets.topic.replication.factor":                 rf,
		"offsets.topic.num.partitions":                     "4",
		"transaction.state.log.replication.factor":         rf,
		"transaction.state.log.min.isr":                    minISR,
		"transaction.state.log.num.partitions":             "4",
		"share.coordinator.state.topic.replication.factor": rf,
		"share.coordinator.state.topic.min.isr":            minISR,
		"group.initial.rebalance.delay.ms":                 "0",
		"num.network.threads":                              "2",
		"num.io.threads":                                   "2",

		// Notice a killed node within seconds (defaults: 9 s session,
		// 30 s replica lag), so a cluster test does not wait long for the
		// ISR to shrink and writes with acks=all to resume.
		"broker.heartbeat.interval.ms": "500",
		"broker.session.timeout.ms":    "3000",
		"replica.lag.time.max.ms":      "5000",
	}
}

func renderProperties(props map[string]string) []byte {
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	for _, k := range keys {
		fmt.Fprintf(&buf, "%s=%s\n", k, props[k])
	}
	return buf.Bytes()
}

const log4jConfig = `status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
`

func (b *Broker) javaCmd(nd *node, mainClass string, args ...string) *exec.Cmd {
	full := append([]string{}, b.jvmOpts...)
	full = append(full,
		"-Dlog4j2.configurationFile="+filepath.Join(b.dir, "log4j2.properties"),
		// The JVM unpacks native libraries (lz4-java's) into its temporary directory and leaves
		// them there when killed: in the node's directory, they go with it.
		"-Djava.io.tmpdir="+nd.dir,
		"-cp", filepath.Join(b.libs, "*"),
		mainClass)
	full = append(full, args...)
	cmd := exec.Command(b.java, full...)
	cmd.Dir = nd.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd
}

func (b *Broker) format(nd *node) error {
	cmd := b.javaCmd(nd, "kafka.tools.StorageTool", "format",
		"--cluster-id="+b.clusterID, // one argument: an id may start with "-"
		"--config", filepath.Join(nd.dir, "server.properties"),
		"--ignore-formatted")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("format storage of node %d: %v\n%s", nd.id, err, out)
	}
	return nil
}

// launch starts the node's process; b.mu must be held.
func (b *Broker) launch(nd *node) error {
	logPath := filepath.Join(nd.dir, "broker.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := b.javaCmd(nd, "kafka.Kafka", filepath.Join(nd.dir, "server.properties"))
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start node %d: %w", nd.id, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(exited)
	}()
	nd.cmd, nd.exited = cmd, exited
	return nil
}

// waitReady waits until the node answers a metadata request that lists
// every node of the cluster as a broker.
func (b *Broker) waitReady(nd *node, deadline time.Time) error {
	b.mu.Lock()
	exited := nd.exited
	b.mu.Unlock()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.Net.DialTimeout = time.Second
	cfg.Net.ReadTimeout = 2 * time.Second
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("node %d exited while starting:\n%s", nd.id, tail(filepath.Join(nd.dir, "broker.log")))
		default:
		}
		last = metadataReady(hostPort(nd.port), cfg, len(b.nodes))
		if last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("node %d not ready within %s: %v\n%s", nd.id, StartTimeout, last, tail(filepath.Join(nd.dir, "broker.log")))
}

func metadataReady(addr string, cfg *sarama.Config, want int) error {
	br := sarama.NewBroker(addr)
	if err := br.Open(cfg); err != nil {
		return err
	}
	defer br.Close()
	resp, err := br.GetMetadata(sarama.NewMetadataRequest(cfg.Version, nil))
	if err != nil {
		return err
	}
	if len(resp.Brokers) != want {
		return fmt.Errorf("metadata lists %d of %d brokers", len(resp.Brokers), want)
	}
	return nil
}

func tail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	const max = 4000
	if len(data) > max {
		data = data[len(data)-max:]
	}
	return string(data)
}

// LibsDir returns the directory holding the broker jars: $TRUSTPLANE_KAFKA_LIBS,
// or .cache/kafka/<KafkaVersion>/libs under the module root.
func LibsDir() (string, error) {
	if dir := os.Getenv(LibsEnv); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "kafka_2.13-"+KafkaVersion+".jar")); err != nil {
			return "", fmt.Errorf("%s=%s holds no kafka_2.13-%s.jar: run `make kafka-jars` or fix the variable", LibsEnv, dir, KafkaVersion)
		}
		return dir, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, ".cache", "kafka", KafkaVersion, "libs")
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		return "", fmt.Errorf("jars of Apache Kafka %s not found in %s: run `make kafka-jars`", KafkaVersion, dir)
	}
	return dir, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory: set %s to the Kafka jars directory", LibsEnv)
		}
		dir = parent
	}
}

// newClusterID returns a Kafka cluster id: 16 random bytes in URL-safe
// base64 without padding (what `kafka-storage random-uuid` prints).
func newClusterID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	return base64.RawURLEncoding.EncodeToString(u[:])
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
