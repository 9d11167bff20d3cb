package runtime

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustplane/trustplane/internal/testsupport"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// The watch installs each version that parses, keeps the last good one otherwise, reloads when
// a file read while parsing changes, and reports a failing version once, not at every poll.
func TestFileWatch(t *testing.T) {
	dir := t.TempDir()
	main, side := filepath.Join(dir, "config"), filepath.Join(dir, "secret")
	write(t, main, "v1")
	write(t, side, "s1")
	var installed []string
	var results []error
	logs := &testsupport.Buffer{}
	w := &FileWatch[string]{
		What: "test config", Path: main, MaxBytes: 64,
		Parse: func(data []byte, read func(string) ([]byte, error)) (string, error) {
			if strings.HasPrefix(string(data), "bad") {
				return "", errors.New("does not parse")
			}
			s, err := read(side)
			return string(data) + "+" + string(s), err
		},
		Install: func(v string) { installed = append(installed, v) },
		Loaded:  func(err error) { results = append(results, err) },
		Logger:  slog.New(slog.NewJSONHandler(logs, nil)),
	}
	step := func(wantChanged, wantErr bool) {
		t.Helper()
		changed, err := w.Load()
		if err != nil {
			w.logFailure(err)
		}
		if changed != wantChanged || (err != nil) != wantErr {
			t.Fatalf("Load = %v, %v; want changed %v, error %v", changed, err, wantChanged, wantErr)
		}
	}
	step(true, false)
	step(false, false) // nothing changed
	write(t, side, "s2")
	step(true, false) // the file Parse read changed
	write(t, main, "bad")
	step(false, true)
	step(false, true) // the same bad version: not counted or logged again
	write(t, main, strings.Repeat("x", 65))
	step(false, true) // over MaxBytes
	write(t, main, "v3")
	step(true, false)

	if got := strings.Join(installed, ","); got != "v1+s1,v1+s2,v3+s2" {
		t.Errorf("installed %s", got)
	}
	if len(results) != 5 || results[0] != nil || results[2] == nil || results[3] == nil || results[4] != nil {
		t.Errorf("Loaded was told %v, want success, success, failure, failure, success", results)
	}
	if n := strings.Count(logs.String(), "does not parse"); n != 1 {
		t.Errorf("the bad version was logged %d times, want once", n)
	}
	if n := strings.Count(logs.String(), "larger than 64 bytes"); n != 1 {
		t.Errorf("the oversize version was logged %d times, want once", n)
	}
}

// A Current holds a fixed value, or a watched file's last good version.
func TestCurrent(t *testing.T) {
	one := "one"
	fixed := Fixed(&one)
	if changed, err := fixed.Load(); changed || err != nil || *fixed.Get() != "one" {
		t.Fatalf("fixed: %v %v %q", changed, err, *fixed.Get())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := fixed.Run(ctx, time.Second); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(t.TempDir(), "value")
	parse := func(data []byte, _ func(string) ([]byte, error)) (*string, error) {
		s := string(data)
		if s == "bad" {
			return nil, errors.New("bad value")
		}
		return &s, nil
	}
	if _, err := Watch(&FileWatch[*string]{What: "value", Path: path, Parse: parse}); err == nil {
		t.Fatal("a missing file was watched")
	}
	write(t, path, "first")
	c, err := Watch(&FileWatch[*string]{What: "value", Path: path, Parse: parse})
	if err != nil || *c.Get() != "first" {
		t.Fatalf("watch: %v", err)
	}
	write(t, path, "bad")
	if _, err := c.Load(); err == nil || *c.Get() != "first" {
		t.Fatalf("a bad version: %v, holds %q", err, *c.Get())
	}
	write(t, path, "second")
	if changed, err := c.Load(); !changed || err != nil || *c.Get() != "second" {
		t.Fatalf("second version: %v %v %q", changed, err, *c.Get())
	}
}
