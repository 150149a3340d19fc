package agent

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hakeeper/hakeeper/internal/contract"
)

// TestHealthServer: the kubelet's probes on the loopback. Alive only while
// the health loop beat in the last aliveMaxAge; started only once the
// three files the daemons need are written.
func TestHealthServer(t *testing.T) {
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := free.Addr().(*net.TCPAddr).Port
	free.Close()
	dir := t.TempDir()
	a := &Agent{o: Options{HealthPort: port, Paths: contract.Paths{RunDir: filepath.Join(dir, "run"), ConfigDir: filepath.Join(dir, "config")}}}
	l, err := a.listenHealth()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.serveHealth(ctx, l) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	if code, body := get(contract.AgentAlivePath); code != http.StatusServiceUnavailable {
		t.Errorf("alive before any beat: %d %q", code, body)
	}
	a.beat.Store(time.Now().UnixNano())
	if code, body := get(contract.AgentAlivePath); code != http.StatusOK {
		t.Errorf("alive after a beat: %d %q", code, body)
	}
	a.beat.Store(time.Now().Add(-2 * aliveMaxAge).UnixNano())
	if code, body := get(contract.AgentAlivePath); code != http.StatusServiceUnavailable {
		t.Errorf("alive after an old beat: %d %q", code, body)
	}

	p := a.o.Paths
	files := []string{p.HAProxyConfig(), p.KeepalivedConfig(), p.VRRPPeers()}
	for i, f := range files {
		if code, body := get(contract.AgentStartedPath); code != http.StatusServiceUnavailable {
			t.Errorf("started with %d of %d files: %d %q", i, len(files), code, body)
		}
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if code, body := get(contract.AgentStartedPath); code != http.StatusOK {
		t.Errorf("started with every file: %d %q", code, body)
	}

	// A second agent on the same port fails at once, naming it.
	b := &Agent{o: Options{HealthPort: port}}
	if l2, err := b.listenHealth(); err == nil {
		l2.Close()
		t.Error("a second listener on the health port")
	}
}
