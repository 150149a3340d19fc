// Package haproxytest runs the real haproxy for tests that need its master
// CLI and runtime API.
package haproxytest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hakeeper/hakeeper/internal/haproxyapi"
)

// Start runs haproxy in master-worker mode with its master CLI on master
// and its runtime API on runtime, serving nothing but a unix socket, in its
// own process group (a container's processes die together: KillAll plays
// that). It skips the test when haproxy is missing, unless
// HAKEEPER_REQUIRE_REAL_TOOLS=1, and returns the process group once the
// master CLI answers.
func Start(t *testing.T, master, runtime string) (pgid int) {
	t.Helper()
	if _, err := exec.LookPath("haproxy"); err != nil {
		if os.Getenv("HAKEEPER_REQUIRE_REAL_TOOLS") == "1" {
			t.Fatal("haproxy is missing")
		}
		t.Skip("haproxy is missing")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte("global\n    stats socket "+runtime+" mode 600 level admin\n"+
		"defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n"+
		"frontend web\n    bind unix@"+filepath.Join(dir, "web.sock")+"\n    default_backend web\n"+
		"backend web\n    server s1 127.0.0.1:9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("haproxy", "-W", "-db", "-S", master, "-f", cfg)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = KillAll(cmd.Process.Pid)
		<-done
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if answers(master, "show proc") && answers(runtime, "show info") {
			return cmd.Process.Pid
		}
		if time.Now().After(deadline) {
			t.Fatal("haproxy never answered on its sockets")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// KillAll SIGKILLs every process of the group Start returned.
func KillAll(pgid int) error { return syscall.Kill(-pgid, syscall.SIGKILL) }

func answers(socket, command string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := haproxyapi.Command(ctx, socket, command)
	return err == nil
}
