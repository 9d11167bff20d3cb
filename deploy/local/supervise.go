package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Every child of the local run (Kafka, ClickHouse, each function) is kept running by one
// policy: once it has been ready, an exit is logged and the child is started again, on the same
// ports and data, after a backoff that starts at restartMin, doubles up to restartMax, and
// starts over once an instance has run for stableRun. A child that fails its first start stops
// the run instead: that is a configuration to fix (a taken port, a missing binary), not a crash
// to wait out.
const (
	restartMin = 200 * time.Millisecond
	restartMax = 10 * time.Second
	stableRun  = 30 * time.Second
	// readyTimeout bounds a child's first start; stopGrace, its graceful stop.
	readyTimeout = 60 * time.Second
	stopGrace    = 40 * time.Second
)

// backoff is the wait before each restart of one child.
type backoff struct{ next time.Duration }

// after returns the wait before restarting an instance that ran for ran.
func (b *backoff) after(ran time.Duration) time.Duration {
	if b.next == 0 || ran >= stableRun {
		b.next = restartMin
	}
	d := b.next
	b.next = min(2*b.next, restartMax)
	return d
}

// instance is one running process of a child.
type instance interface {
	Pid() int
	// Done is closed when the process has ended; Err then tells how.
	Done() <-chan struct{}
	Err() error
	// Stop ends the process gracefully, within a bound, and returns once it has ended.
	Stop()
}

// child is what the supervisor keeps running.
type child struct {
	name string
	addr string // where it listens, for the logs
	// start starts an instance; it returns once the process runs (ClickHouse's, once it
	// answers).
	start func(ctx context.Context) (instance, error)
	// ready returns nil once the instance serves.
	ready func(ctx context.Context) error
}

type supervised struct {
	child
	mu  sync.Mutex
	cur instance
}

func (s *supervised) current() instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// supervisor starts children in order, restarts them as they exit, and stops them in reverse
// order, so ingest stops taking events before the dispatcher and persist drain, and Kafka and
// ClickHouse stop last.
type supervisor struct {
	logger  *slog.Logger
	started func(name string, pid int) // each start and restart (tests)

	ctx    context.Context // ends when stop begins: no restart after it
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	kids   []*supervised
}

func newSupervisor(logger *slog.Logger, started func(string, int)) *supervisor {
	ctx, cancel := context.WithCancel(context.Background())
	return &supervisor{logger: logger, started: started, ctx: ctx, cancel: cancel}
}

// start starts c, waits until it is ready (or ctx ends), and from then on keeps it running.
func (s *supervisor) start(ctx context.Context, c child) error {
	began := time.Now()
	inst, err := c.start(s.ctx)
	if err != nil {
		return fmt.Errorf("start %s: %w", c.name, err)
	}
	k := &supervised{child: c, cur: inst}
	s.mu.Lock()
	s.kids = append(s.kids, k)
	s.mu.Unlock()
	s.logger.Info("started", "child", c.name, "pid", inst.Pid(), "addr", c.addr)
	s.notify(c.name, inst.Pid())
	rctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := waitReady(rctx, c.ready, inst); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s did not become ready: %w", c.name, err)
	}
	s.wg.Add(1)
	go s.keep(k, inst, began)
	return nil
}

func (s *supervisor) notify(name string, pid int) {
	if s.started != nil {
		s.started(name, pid)
	}
}

// keep restarts k each time its instance (started at began) exits, until stop.
func (s *supervisor) keep(k *supervised, inst instance, began time.Time) {
	defer s.wg.Done()
	var b backoff
	restarts := 0
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-inst.Done():
		}
		if s.ctx.Err() != nil { // stopped by stop, not an exit of its own
			return
		}
		ran := time.Since(began)
		wait := b.after(ran)
		s.logger.Error("exited; restarting", "child", k.name, "pid", inst.Pid(), "error", errString(inst.Err()),
			"ran_for", ran.Round(time.Millisecond).String(), "restart_in", wait.String())
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(wait):
			}
			began = time.Now()
			next, err := k.start(s.ctx)
			if err == nil {
				inst = next
				break
			}
			if s.ctx.Err() != nil {
				return
			}
			wait = b.after(0)
			s.logger.Error("restart failed", "child", k.name, "error", err.Error(), "retry_in", wait.String())
		}
		restarts++
		k.mu.Lock()
		k.cur = inst
		k.mu.Unlock()
		if s.ctx.Err() != nil { // stop began while it started: stop may have missed it
			inst.Stop()
			return
		}
		s.logger.Info("restarted", "child", k.name, "pid", inst.Pid(), "addr", k.addr, "restarts", restarts)
		s.notify(k.name, inst.Pid())
		if err := waitReady(s.ctx, k.ready, inst); err == nil {
			s.logger.Info("ready", "child", k.name, "pid", inst.Pid())
		}
	}
}

// stop stops every child in reverse order of start and returns once all have ended.
func (s *supervisor) stop() {
	s.cancel()
	s.mu.Lock()
	kids := s.kids
	s.kids = nil
	s.mu.Unlock()
	for i := len(kids) - 1; i >= 0; i-- {
		if inst := kids[i].current(); inst != nil {
			inst.Stop()
			s.logger.Info("stopped", "child", kids[i].name)
		}
	}
	s.wg.Wait()
}

// waitReady polls ready until it succeeds, the instance exits or ctx ends.
func waitReady(ctx context.Context, ready func(context.Context) error, inst instance) error {
	var last error
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := ready(pctx)
		cancel()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), last)
		case <-inst.Done():
			return fmt.Errorf("exited (%s); last readiness answer: %w", errString(inst.Err()), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// process is an instance that is a plain child process.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// startProcess starts path with args and the given environment (added to this process's own),
// its output on out.
func startProcess(path string, args, env []string, out io.Writer) (*process, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%w (run `make build` first)", err)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = out
	cmd.Stderr = out
	// Its own process group keeps a terminal's Ctrl-C from reaching it before the ordered stop;
	// Pdeathsig stops it (gracefully) should this runner die without stopping it, as on SIGKILL,
	// instead of leaving it holding its port.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) Pid() int              { return p.cmd.Process.Pid }
func (p *process) Done() <-chan struct{} { return p.done }
func (p *process) Err() error            { return p.err }

func (p *process) Stop() {
	_ = syscall.Kill(-p.Pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
		<-p.done
	}
}
