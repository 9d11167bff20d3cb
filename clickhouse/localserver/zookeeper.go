package localserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/trustplane/trustplane/internal/testsupport"
)

// ErrZooKeeperNotInstalled is returned when Java or the ZooKeeper jars are missing.
var ErrZooKeeperNotInstalled = errors.New("zookeeper jars or java not found: run `make zookeeper`")

// zooKeeperJars is the classpath of a standalone ZooKeeper 3.8 server as Debian packages it.
var zooKeeperJars = []string{
	"zookeeper.jar", "zookeeper-jute.jar", "slf4j-api.jar", "slf4j-simple.jar",
	"netty-handler.jar", "netty-common.jar", "netty-buffer.jar", "netty-transport.jar", "netty-codec.jar",
	"netty-resolver.jar", "netty-transport-native-epoll.jar", "netty-transport-native-unix-common.jar",
	"metrics-core.jar", "snappy-java.jar", "commons-cli.jar", "commons-io.jar",
}

// ZooKeeperConfig describes a standalone ZooKeeper server.
type ZooKeeperConfig struct {
	Dir    string // zoo.cfg, data and log; reusing it keeps the data
	Port   int    // client port; 0 picks a free one
	JarDir string // default /usr/share/java
	Java   string // default java from PATH
}

// ZooKeeper is a running ZooKeeper server.
type ZooKeeper struct {
	cfg  ZooKeeperConfig
	proc *proc
}

// StartZooKeeper starts a standalone ZooKeeper and waits until it serves sessions.
func StartZooKeeper(ctx context.Context, cfg ZooKeeperConfig) (*ZooKeeper, error) {
	if cfg.Dir == "" {
		return nil, errors.New("localserver: ZooKeeper Dir is required")
	}
	if cfg.JarDir == "" {
		cfg.JarDir = "/usr/share/java"
	}
	if cfg.Java == "" {
		java, err := exec.LookPath("java")
		if err != nil {
			return nil, ErrZooKeeperNotInstalled
		}
		cfg.Java = java
	}
	var cp []string
	for _, j := range zooKeeperJars {
		p := filepath.Join(cfg.JarDir, j)
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%w (%s missing)", ErrZooKeeperNotInstalled, p)
		}
		cp = append(cp, p)
	}
	if cfg.Port == 0 {
		p, err := testsupport.FreePort()
		if err != nil {
			return nil, err
		}
		cfg.Port = p
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "data"), 0o755); err != nil {
		return nil, fmt.Errorf("localserver: %w", err)
	}
	zooCfg := fmt.Sprintf(`tickTime=500
initLimit=10
syncLimit=5
dataDir=%s
clientPort=%d
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=srvr
`, filepath.Join(cfg.Dir, "data"), cfg.Port)
	cfgPath := filepath.Join(cfg.Dir, "zoo.cfg")
	if err := os.WriteFile(cfgPath, []byte(zooCfg), 0o644); err != nil {
		return nil, fmt.Errorf("localserver: %w", err)
	}
	p, err := startProc(filepath.Join(cfg.Dir, "zookeeper.log"), cfg.Dir, cfg.Java,
		"-Xmx128m", "-cp", strings.Join(cp, ":"), "org.apache.zookeeper.server.ZooKeeperServerMain", cfgPath)
	if err != nil {
		return nil, err
	}
	z := &ZooKeeper{cfg: cfg, proc: p}
	if err := p.waitFor(ctx, 60*time.Second, "zookeeper on "+z.Addr(), func(context.Context) error {
		return serving(z.Addr())
	}); err != nil {
		p.kill()
		return nil, fmt.Errorf("%w\n%s", err, tail(p.logPath))
	}
	return z, nil
}

// serving asks ZooKeeper for its status. "ruok" is not enough: it answers "imok" while the
// server still refuses sessions, and a ClickHouse 18.x server whose first session failed can
// crash on its next ZooKeeper call.
func serving(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("srvr")); err != nil {
		return err
	}
	out, _ := io.ReadAll(c)
	if !bytes.Contains(out, []byte("Mode: ")) {
		return fmt.Errorf("srvr answered %q", out)
	}
	return nil
}

// Addr is the client address, host:port.
func (z *ZooKeeper) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(z.cfg.Port))
}

// Stop terminates ZooKeeper.
func (z *ZooKeeper) Stop() { z.proc.terminate(10 * time.Second) }
