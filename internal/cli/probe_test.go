package cli

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestProbeFilesAndKeepalived(t *testing.T) {
	dir := t.TempDir()
	written, empty, pidFile := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "pid")
	if err := os.WriteFile(written, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := Streams{Out: io.Discard, Err: io.Discard}
	probe := func(args ...string) error { return runProbe(context.Background(), args, s) }
	if err := probe("files", written); err != nil {
		t.Errorf("a written file: %v", err)
	}
	for _, args := range [][]string{{"files", written, empty}, {"files", filepath.Join(dir, "missing")}, {"files"}} {
		if err := probe(args...); err == nil {
			t.Errorf("probe %v passed", args)
		}
	}
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := probe("keepalived", "--pid-file="+pidFile); err != nil {
		t.Errorf("a running pid: %v", err)
	}
	if err := os.WriteFile(pidFile, []byte("4194304\n"), 0o644); err != nil { // above pid_max
		t.Fatal(err)
	}
	if err := probe("keepalived", "--pid-file="+pidFile); err == nil {
		t.Error("a pid that runs no process passed")
	}
}
