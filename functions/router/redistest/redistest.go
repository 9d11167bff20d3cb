// Package redistest starts a real redis-server for tests: a child process on a free port in a
// temporary directory, without persistence, killed (whole process group) on cleanup. The
// server comes from Debian's redis-server package (`make redis-server`).
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trustplane/trustplane/internal/testsupport"
)

// Server is a running redis-server. Kill, Restart, Pause and Resume make the outages limits
// must survive: a server gone (connections refused), and one that stalls (connections open,
// nothing answers).
type Server struct {
	addr string
	dir  string
	conf string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Addr is host:port.
func (s *Server) Addr() string { return s.addr }

// URL is the redis:// URL of database 0.
func (s *Server) URL() string { return "redis://" + s.addr + "/0" }

// Start starts a server for t and stops it when t ends. It fails t (never skips) when
// redis-server is not installed.
func Start(t testing.TB) *Server {
	t.Helper()
	dir := t.TempDir()
	s, err := StartIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartIn starts a server keeping its files in dir; the caller calls Stop.
func StartIn(dir string) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server is not installed: run `make redis-server`")
	}
	port, err := testsupport.FreePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "redis.conf")
	settings := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsave \"\"\nappendonly no\ndaemonize no\nlogfile %s\n",
		port, dir, filepath.Join(dir, "redis.log"))
	if err := os.WriteFile(conf, []byte(settings), 0o600); err != nil {
		return nil, err
	}
	s := &Server{addr: "127.0.0.1:" + strconv.Itoa(port), dir: dir, conf: conf}
	if err := s.start(bin); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) start(bin string) error {
	cmd := exec.Command(bin, s.conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	// Generous: on a loaded machine a fresh process can take seconds to be scheduled.
	if err := s.waitReady(30 * time.Second); err != nil {
		s.Stop()
		log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
		return fmt.Errorf("redis-server did not start: %w\n%s", err, log)
	}
	return nil
}

// Restart starts a stopped (killed) server again on the same port. It comes back empty: the
// server keeps nothing on disk.
func (s *Server) Restart() error {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return errors.New("redis-server is not installed: run `make redis-server`")
	}
	return s.start(bin)
}

// Pause stops the server's process (SIGSTOP): its connections stay open and its port accepts
// connections (the kernel does), but nothing answers until Resume. It returns once every
// thread has stopped.
func (s *Server) Pause() error {
	s.mu.Lock()
	pid := s.cmd.Process.Pid
	err := syscall.Kill(-pid, syscall.SIGSTOP)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return testsupport.WaitStopped(pid, 10*time.Second)
}

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() error { return s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return syscall.Kill(-s.cmd.Process.Pid, sig)
}

// waitReady pings until the server answers PONG.
func (s *Server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		s.mu.Lock()
		done := s.done
		s.mu.Unlock()
		select {
		case <-done:
			return errors.New("redis-server exited")
		default:
		}
		conn, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			_ = conn.SetDeadline(time.Now().Add(time.Second))
			_, err = conn.Write([]byte("PING\r\n"))
			if err == nil {
				var line string
				line, err = bufio.NewReader(conn).ReadString('\n')
				if err == nil && !strings.HasPrefix(line, "+PONG") {
					err = fmt.Errorf("unexpected answer %q", line)
				}
			}
			conn.Close()
			if err == nil {
				return nil
			}
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return last
}

// Stop kills the server's process group (SIGKILL, paused or not) and waits for it; Restart
// starts it again.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}
