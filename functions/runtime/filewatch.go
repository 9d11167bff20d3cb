package runtime

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// FileWatch keeps a value loaded from a file current: auth's key file, router's routing file,
// guard's policy file. It polls: Kubernetes updates a mounted ConfigMap or Secret by swapping a
// symlink, which notifications on the file itself miss. A version that does not load keeps the
// last good value; its error is logged once, not at every poll, until the files change again.
type FileWatch[T any] struct {
	// What names the file in logs and errors ("routing config").
	What string
	// Path is the file watched.
	Path string
	// MaxBytes bounds every file read (the watched one and those Parse reads); 0 means 16 MiB.
	MaxBytes int64
	// Parse builds the value from the file's content. Other files it needs (a provider's key
	// file) it reads with read, so that a change to them reloads the value too.
	Parse func(data []byte, read func(path string) ([]byte, error)) (T, error)
	// Install receives every new value that parsed, the first one included.
	Install func(T)
	// Loaded, if set, is told of every load that was tried: nil for success, else the error (for
	// metrics).
	Loaded func(error)
	Logger *slog.Logger

	mu      sync.Mutex
	sum     [sha256.Size]byte
	loaded  bool
	lastErr string
}

const defaultWatchMaxBytes = 16 << 20

// Load reads the file now and installs it if it changed since the last load. changed is false
// when the content (and every file Parse read) is the same as last time.
func (w *FileWatch[T]) Load() (changed bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := sha256.New()
	read := func(path string) ([]byte, error) {
		b, err := w.read(path)
		fmt.Fprintf(h, "%d:%s", len(path), path)
		h.Write(b)
		return b, err
	}
	data, err := read(w.Path)
	var v T
	if err == nil {
		v, err = w.Parse(data, read)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	if w.loaded && sum == w.sum {
		// The same files as the value installed (or as the version that failed last).
		if err != nil {
			return false, fmt.Errorf("%s %s: %w", w.What, w.Path, err)
		}
		return false, nil
	}
	w.sum = sum
	if err != nil {
		err = fmt.Errorf("%s %s: %w", w.What, w.Path, err)
		if w.Loaded != nil {
			w.Loaded(err)
		}
		return false, err
	}
	w.loaded = true
	w.lastErr = ""
	w.Install(v)
	if w.Loaded != nil {
		w.Loaded(nil)
	}
	return true, nil
}

func (w *FileWatch[T]) read(path string) ([]byte, error) {
	limit := w.MaxBytes
	if limit <= 0 {
		limit = defaultWatchMaxBytes
	}
	return ReadFile(path, limit)
}

// ReadFile reads the file at path, refusing one larger than limit bytes, so that a file
// mounted by mistake never fills the memory.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}

// Run polls the file every interval until ctx ends; it fits Function.Background. The first
// load is the caller's (Load, before serving), so that a function whose file does not load
// refuses to start.
func (w *FileWatch[T]) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return errors.New(w.What + ": reload interval must be positive")
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		changed, err := w.Load()
		switch {
		case err != nil:
			w.logFailure(err)
		case changed:
			w.logger().Info(w.What+" reloaded", "path", w.Path)
		}
	}
}

func (w *FileWatch[T]) logFailure(err error) {
	w.mu.Lock()
	repeat := err.Error() == w.lastErr
	w.lastErr = err.Error()
	w.mu.Unlock()
	if !repeat {
		w.logger().Error(w.What+" not reloaded; keeping the previous one", "path", w.Path, "error", err.Error())
	}
}

func (w *FileWatch[T]) logger() *slog.Logger {
	if w.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return w.Logger
}

// Current is a value in force: a fixed one, or a watched file's last good version. A reader
// keeps the value it got for as long as it needs it (a call in flight finishes with the table
// it started with).
type Current[T any] struct {
	value atomic.Pointer[T]
	watch *FileWatch[*T] // nil when the value never changes
}

// Fixed is a Current that always holds v.
func Fixed[T any](v *T) *Current[T] {
	c := &Current[T]{}
	c.value.Store(v)
	return c
}

// Watch loads w's file now and keeps the Current it returns at the file's last good version
// (w's Install is set here). A file that does not load now is an error.
func Watch[T any](w *FileWatch[*T]) (*Current[T], error) {
	c := &Current[T]{watch: w}
	w.Install = c.value.Store
	if _, err := w.Load(); err != nil {
		return nil, err
	}
	return c, nil
}

// Get is the value in force.
func (c *Current[T]) Get() *T { return c.value.Load() }

// Load reads the file now, as one tick of Run does; a fixed value has nothing to read.
func (c *Current[T]) Load() (changed bool, err error) {
	if c.watch == nil {
		return false, nil
	}
	return c.watch.Load()
}

// Run checks the file every interval until ctx ends; it fits Function.Background. A fixed
// value has nothing to check.
func (c *Current[T]) Run(ctx context.Context, interval time.Duration) error {
	if c.watch == nil {
		<-ctx.Done()
		return nil
	}
	return c.watch.Run(ctx, interval)
}
