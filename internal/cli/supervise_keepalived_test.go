package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hakeeper/hakeeper/internal/ifaddr"
	"github.com/hakeeper/hakeeper/internal/ifaddr/ifaddrtest"
)

// TestSuperviseKeepalivedReleasesVirtualIPs runs the supervisor in a
// network namespace of its own over a stand-in for keepalived (a shell
// that adds the VIPs as keepalived does and leaves a child running, as
// keepalived's VRRP process), because real VRRP needs the lab; the lab's
// TestKeepalivedKilled runs it over the real keepalived. It checks that a
// VIP left by an earlier keepalived is removed before the new one starts,
// and that when keepalived is SIGKILLed its VIPs (both families) leave the
// interface and its orphaned child is stopped.
func TestSuperviseKeepalivedReleasesVirtualIPs(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(`vrrp_instance hk_default_web {
    virtual_ipaddress {
        198.18.0.111/24 dev vip0
    }
    virtual_ipaddress_excluded {
        2001:db8:18::111/64 dev vip0
    }
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	pids := filepath.Join(dir, "pids")
	seen := filepath.Join(dir, "seen-at-start")
	script := `ip addr show dev vip0 > ` + seen + `
ip addr add 198.18.0.111/24 dev vip0
ip addr add 2001:db8:18::111/64 dev vip0 nodad
sleep 60 & echo "$$ $!" > ` + pids + `.tmp && mv ` + pids + `.tmp ` + pids + `
wait`
	type result struct {
		err    error
		stderr string
		held   []string
	}
	done := make(chan result, 1)
	go func() {
		var res result
		defer func() { done <- res }()
		ifaddrtest.EnterNetns(t, "vip0")
		ifaddrtest.AddAddress(t, "vip0", "198.18.0.1/24")
		ifaddrtest.AddAddress(t, "vip0", "198.18.0.111/24") // left by a killed keepalived
		var stderr bytes.Buffer
		res.err = runSuperviseKeepalived(context.Background(), []string{"--config=" + conf, "--", "sh", "-c", script},
			Streams{Out: os.Stdout, Err: &stderr})
		res.stderr = stderr.String()
		res.held = ifaddr.Held("vip0", []string{"198.18.0.1", "198.18.0.111", "2001:db8:18::111"})
	}()

	var shell, child int
	deadline := time.Now().Add(10 * time.Second)
	for shell == 0 && time.Now().Before(deadline) {
		if data, err := os.ReadFile(pids); err == nil {
			f := strings.Fields(string(data))
			shell, _ = strconv.Atoi(f[0])
			child, _ = strconv.Atoi(f[1])
			break
		}
		select {
		case res := <-done:
			t.Fatalf("the supervisor returned before keepalived ran: %v\n%s", res.err, res.stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if shell == 0 {
		t.Fatal("the stand-in keepalived never started")
	}
	if err := syscall.Kill(shell, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var res result
	select {
	case res = <-done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(child, syscall.SIGKILL)
		t.Fatal("the supervisor did not return after keepalived was killed")
	}
	if res.err == nil || !strings.Contains(res.err.Error(), "killed") {
		t.Errorf("returned %v, want keepalived's SIGKILL", res.err)
	}
	if strings.Join(res.held, " ") != "198.18.0.1" {
		t.Errorf("after keepalived was killed the interface holds %v, want only the node's address\n%s", res.held, res.stderr)
	}
	if err := syscall.Kill(child, 0); !errors.Is(err, syscall.ESRCH) {
		_ = syscall.Kill(child, syscall.SIGKILL)
		t.Errorf("keepalived's orphaned child %d still runs (%v)", child, err)
	}
	atStart, err := os.ReadFile(seen)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(atStart), "198.18.0.111") {
		t.Errorf("the VIP left by an earlier keepalived was still there when keepalived started:\n%s", atStart)
	}
	for _, want := range []string{"removed 198.18.0.111 from vip0", "removed 2001:db8:18::111 from vip0", "orphaned"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("the supervisor's log lacks %q:\n%s", want, res.stderr)
		}
	}
}
