// Package localserver runs a ClickHouse server as a plain child process: a generated config in a
// directory of its own, ports on 127.0.0.1, and the whole process group stopped on Stop. Tests
// use it through chtest with temporary directories; the one-command local run points it at a
// project-local directory (for example .run/clickhouse) so data survives restarts.
package localserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"text/template"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/trustplane/trustplane/internal/testsupport"
)

// ErrNotInstalled is returned when no clickhouse-server binary can be found.
var ErrNotInstalled = errors.New("clickhouse-server not found on PATH: run `make clickhouse-server`")

// Config describes one server. Zero ports are replaced by free ones at Start; Server.Config
// returns the resolved values so the same server can be started again on the same ports.
type Config struct {
	// Dir holds config, data, tmp and logs. Reusing it keeps the data across restarts.
	Dir string
	// Binary is the server executable; empty means clickhouse-server from PATH.
	Binary string

	TCPPort         int
	HTTPPort        int
	InterserverPort int

	// Cluster settings, all optional. Remote lists the clusters this server knows
	// (remote_servers), ZooKeeper the coordination servers ("host:port") and Macros the values
	// of {shard}, {replica} and the like used by replicated table paths.
	Remote    []RemoteCluster
	ZooKeeper []string
	Macros    map[string]string

	// StartTimeout bounds the wait for the first successful ping; default 60s.
	StartTimeout time.Duration
}

// RemoteCluster is one entry of remote_servers: shards, each a list of replica addresses
// ("host:tcpport").
type RemoteCluster struct {
	Name   string
	Shards [][]string
}

// Server is a running clickhouse-server process.
type Server struct {
	cfg     Config
	proc    *proc
	started time.Duration
}

// Start writes the configuration into cfg.Dir, starts the server and waits until it answers a
// ping. When ports were chosen automatically and the server could not bind them (another
// process took one in between), it retries with fresh ports.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("localserver: Dir is required")
	}
	// The server runs in its own working directory, so every path in its config is absolute.
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("localserver: %w", err)
	}
	cfg.Dir = dir
	if cfg.Binary == "" {
		p, err := exec.LookPath("clickhouse-server")
		if err != nil {
			return nil, ErrNotInstalled
		}
		cfg.Binary = p
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	auto := cfg.TCPPort == 0 || cfg.HTTPPort == 0 || cfg.InterserverPort == 0
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		c := cfg
		if err := c.pickPorts(); err != nil {
			return nil, err
		}
		s, err := start(ctx, c)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if !auto || ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func (c *Config) pickPorts() error {
	for _, p := range []*int{&c.TCPPort, &c.HTTPPort, &c.InterserverPort} {
		if *p != 0 {
			continue
		}
		port, err := testsupport.FreePort()
		if err != nil {
			return err
		}
		*p = port
	}
	return nil
}

func start(ctx context.Context, cfg Config) (*Server, error) {
	for _, d := range []string{"data", "tmp", "user_files", "format_schemas", "log"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("localserver: %w", err)
		}
	}
	if err := writeConfig(cfg); err != nil {
		return nil, err
	}
	begin := time.Now()
	p, err := startProc(filepath.Join(cfg.Dir, "log", "stderr.log"), cfg.Dir,
		cfg.Binary, "--config-file="+filepath.Join(cfg.Dir, "config.xml"))
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, proc: p}
	err = p.waitFor(ctx, cfg.StartTimeout, "clickhouse-server on "+s.Addr(), func(ctx context.Context) error {
		return Ping(ctx, s.Addr())
	})
	if err != nil {
		p.kill()
		return nil, fmt.Errorf("%w\n%s", err, tail(p.logPath, filepath.Join(cfg.Dir, "log", "clickhouse-server.err.log")))
	}
	s.started = time.Since(begin)
	return s, nil
}

// Ping opens a native connection to addr and pings the server once.
func Ping(ctx context.Context, addr string) error {
	conn, err := ch.Open(&ch.Options{
		Addr:        []string{addr},
		DialTimeout: time.Second,
		ReadTimeout: 5 * time.Second,
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return conn.Ping(pctx)
}

// Addr is the native protocol address, host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.cfg.TCPPort)) }

// HTTPAddr is the HTTP interface address, host:port.
func (s *Server) HTTPAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.cfg.HTTPPort))
}

// Config returns the configuration with the ports actually used.
func (s *Server) Config() Config { return s.cfg }

// StartupTime is how long the server took from exec to its first answered ping.
func (s *Server) StartupTime() time.Duration { return s.started }

// Stop terminates the server's process group: SIGTERM, then SIGKILL after 10 seconds. It is
// safe to call more than once.
func (s *Server) Stop() error {
	s.proc.terminate(10 * time.Second)
	return nil
}

// Kill ends the server's process group at once, as a crash would.
func (s *Server) Kill() { s.proc.kill() }

// Done is closed once the server's process has ended, by Stop, Kill or on its own: a
// supervisor waits on it to start the server again.
func (s *Server) Done() <-chan struct{} { return s.proc.done }

// Pid is the server process's id.
func (s *Server) Pid() int { return s.proc.cmd.Process.Pid }

// Pause stops the server's processes (SIGSTOP) as a hung server would look to its clients:
// connections stay open and new ones are accepted into the kernel's backlog, but nothing is
// answered until Resume. It returns once every thread has stopped. Stop and Kill end a paused
// server too.
func (s *Server) Pause() error {
	if err := s.proc.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	return testsupport.WaitStopped(s.proc.cmd.Process.Pid, 10*time.Second)
}

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() error { return s.proc.signal(syscall.SIGCONT) }

func writeConfig(cfg Config) error {
	var buf bytes.Buffer
	if err := configTemplate.Execute(&buf, cfg); err != nil {
		return fmt.Errorf("localserver: config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, "config.xml"), buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("localserver: %w", err)
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, "users.xml"), []byte(usersXML), 0o644); err != nil {
		return fmt.Errorf("localserver: %w", err)
	}
	return nil
}

var configTemplate = template.Must(template.New("config").Funcs(template.FuncMap{
	"hostport": func(addr string) (map[string]string, error) {
		h, p, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("bad address %q: %w", addr, err)
		}
		return map[string]string{"Host": h, "Port": p}, nil
	},
}).Parse(`<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>{{.Dir}}/log/clickhouse-server.log</log>
        <errorlog>{{.Dir}}/log/clickhouse-server.err.log</errorlog>
        <size>10M</size>
        <count>3</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>{{.TCPPort}}</tcp_port>
    <http_port>{{.HTTPPort}}</http_port>
    <interserver_http_port>{{.InterserverPort}}</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>{{.Dir}}/data/</path>
    <tmp_path>{{.Dir}}/tmp/</tmp_path>
    <user_files_path>{{.Dir}}/user_files/</user_files_path>
    <format_schema_path>{{.Dir}}/format_schemas/</format_schema_path>
    <users_config>{{.Dir}}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <remote_servers>{{range .Remote}}
        <{{.Name}}>{{range .Shards}}
            <shard>
                <internal_replication>true</internal_replication>{{range .}}{{with hostport .}}
                <replica><host>{{.Host}}</host><port>{{.Port}}</port></replica>{{end}}{{end}}
            </shard>{{end}}
        </{{.Name}}>{{end}}
    </remote_servers>{{if .ZooKeeper}}
    <zookeeper>{{range $i, $a := .ZooKeeper}}{{with hostport $a}}
        <node index="{{$i}}"><host>{{.Host}}</host><port>{{.Port}}</port></node>{{end}}{{end}}
        <session_timeout_ms>30000</session_timeout_ms>
    </zookeeper>{{end}}
    <macros>{{range $k, $v := .Macros}}
        <{{$k}}>{{$v}}</{{$k}}>{{end}}
    </macros>
    <distributed_ddl>
        <path>/clickhouse/task_queue/ddl</path>
    </distributed_ddl>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
</yandex>
`))

// usersXML has two passwordless users reachable from loopback only: default, whose profile
// allows LowCardinality (which 18.x servers still call experimental), and query, read-only
// (readonly=2: reads and per-query settings, no writes or DDL), as the query function connects
// in production.
const usersXML = `<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>2000000000</max_memory_usage>
            <allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type>
        </default>
        <readonly>
            <max_memory_usage>2000000000</max_memory_usage>
            <readonly>2</readonly>
        </readonly>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
        <query>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>readonly</profile>
            <quota>default</quota>
        </query>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
`
