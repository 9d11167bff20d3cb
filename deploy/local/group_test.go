package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A function stopped by the group, as after another one failed to start, is not reported as
// having exited unexpectedly.
func TestGroupStopIsNotAnUnexpectedExit(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "fn"), []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	g := &group{logger: slog.New(slog.NewTextHandler(logs, nil)), exited: make(chan string, 1)}
	p := &proc{name: "fn"}
	if err := g.start(context.Background(), bin, p, logs); err != nil {
		t.Fatal(err)
	}
	g.stop()
	select {
	case <-p.done:
	default:
		t.Fatal("stop returned before the process ended")
	}
	select {
	case name := <-g.exited:
		t.Errorf("%s reported as exited unexpectedly after stop", name)
	default:
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("stop logged an error:\n%s", logs.String())
	}
}
