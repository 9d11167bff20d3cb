package localserver

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// proc is a child process in its own process group with its output in a log file.
type proc struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	waitErr error
	stop    sync.Once
}

func startProc(logPath string, dir string, name string, args ...string) (*proc, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, fmt.Errorf("localserver: %w", err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("localserver: %w", err)
	}
	defer logf.Close() // the child keeps its own descriptor
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("localserver: start %s: %w", name, err)
	}
	p := &proc{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended, with its wait error.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// terminate sends SIGTERM to the process group, then SIGKILL after grace. Safe to call twice.
func (p *proc) terminate(grace time.Duration) {
	p.stop.Do(func() {
		pgid := p.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGCONT) // a paused server would act on SIGTERM only once continued
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
	})
}

// kill ends the process group at once, as a crash would.
func (p *proc) kill() {
	p.stop.Do(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
}

// signal sends sig to the process group.
func (p *proc) signal(sig syscall.Signal) error {
	if ended, _ := p.exited(); ended {
		return fmt.Errorf("localserver: %s has exited", p.cmd.Path)
	}
	return syscall.Kill(-p.cmd.Process.Pid, sig)
}

// waitFor polls ready until it succeeds, the process exits, ctx ends or timeout passes.
func (p *proc) waitFor(ctx context.Context, timeout time.Duration, what string, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if ended, err := p.exited(); ended {
			return fmt.Errorf("localserver: %s exited during start: %v", what, err)
		}
		err := ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
		case <-ctx.Done():
			return fmt.Errorf("localserver: %s not ready (%v): %v", what, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tail returns the last bytes of the files, to explain a failed start.
func tail(paths ...string) string {
	var out []byte
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil || len(b) == 0 {
			continue
		}
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		out = append(out, "--- "+path+" ---\n"...)
		out = append(out, b...)
	}
	return string(out)
}
