package supervise

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hakeeper/hakeeper/internal/ifaddr"
	"github.com/hakeeper/hakeeper/internal/keepalivedctl"
	"github.com/hakeeper/hakeeper/internal/testing/ifaddrtest"
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
    virtual_router_id 51
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
	peers := filepath.Join(dir, "vrrp-peers")
	if err := os.WriteFile(peers, []byte("198.18.0.1\n198.18.0.12\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	control := filepath.Join(dir, "control.sock")
	const table = "hakeeper_vrrp_51_pod1"
	filterAtStart, filterAtReload := filepath.Join(dir, "filter-at-start"), filepath.Join(dir, "filter-at-reload")
	// The stand-in lists the VRRP filter as keepalived starts and as it
	// is told to reload: the supervisor must have written it by then.
	// A pid file an earlier keepalived left: keepalived would take a
	// process of that pid for itself already running.
	pidFile, stalePID := filepath.Join(dir, "keepalived.pid"), filepath.Join(dir, "stale-pid-at-start")
	if err := os.WriteFile(pidFile, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `test -e ` + pidFile + ` && echo stale > ` + stalePID + `
nft list table inet ` + table + ` > ` + filterAtStart + ` 2>&1
trap 'nft list table inet ` + table + ` > ` + filterAtReload + `.tmp 2>&1; mv ` + filterAtReload + `.tmp ` + filterAtReload + `' HUP
ip addr show dev vip0 > ` + seen + `
ip addr add 198.18.0.111/24 dev vip0
ip addr add 2001:db8:18::111/64 dev vip0 nodad
sleep 60 & echo "$$ $!" > ` + pids + `.tmp && mv ` + pids + `.tmp ` + pids + `
while kill -0 $! 2>/dev/null; do wait $!; done`
	type result struct {
		err         error
		stderr      string
		held        []string
		filterAfter string
	}
	done := make(chan result, 1)
	wait := ifaddrtest.InNetns(t, "vip0", func() {
		var res result
		defer func() { done <- res }()
		if !ifaddrtest.AddAddress(t, "vip0", "198.18.0.1/24") ||
			!ifaddrtest.AddAddress(t, "vip0", "198.18.0.111/24") { // left by a killed keepalived
			return
		}
		var stderr bytes.Buffer
		res.err = Keepalived(context.Background(), []string{"--config=" + conf, "--peers=" + peers,
			"--control=" + control, "--table-suffix=pod-1", "--", "sh", "-c", script, "--pid=" + pidFile},
			Streams{Out: os.Stdout, Err: &stderr})
		res.stderr = stderr.String()
		res.held = ifaddr.Held("vip0", []string{"198.18.0.1", "198.18.0.111", "2001:db8:18::111"})
		out, _ := exec.Command("nft", "list", "table", "inet", table).CombinedOutput()
		res.filterAfter = string(out)
	})

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
		wait() // fails the test if the namespace could not be made
		t.Fatal("the stand-in keepalived never started")
	}
	// A node joins: the agent writes the new peers and asks for a reload,
	// which rewrites the filter before keepalived is signalled.
	if err := os.WriteFile(peers, []byte("198.18.0.1\n198.18.0.12\n198.18.0.13\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !keepalivedctl.Running(ctx, control) {
		t.Error("the supervisor says keepalived does not run")
	}
	if err := keepalivedctl.Reload(ctx, control); err != nil {
		t.Fatal(err)
	}
	var atReload []byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if atReload, _ = os.ReadFile(filterAtReload); len(atReload) > 0 {
			break
		}
	}
	if !strings.Contains(string(atReload), "198.18.0.13") {
		t.Errorf("keepalived was signalled to reload before the filter accepted the new peer:\n%s", atReload)
	}
	// Another node: the filter alone is rewritten, keepalived not signalled.
	if err := os.WriteFile(peers, []byte("198.18.0.1\n198.18.0.12\n198.18.0.13\n198.18.0.14\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filterAtReload); err != nil {
		t.Fatal(err)
	}
	if err := keepalivedctl.Filter(ctx, control); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := os.Stat(filterAtReload); !os.IsNotExist(err) {
		t.Errorf("keepalived was signalled for a filter change (%v)", err)
	}
	// A peers file keepalived's supervisor cannot read leaves keepalived
	// alone and says why.
	if err := os.WriteFile(peers, []byte("not-an-address\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := keepalivedctl.Reload(ctx, control); err == nil || !strings.Contains(err.Error(), "not-an-address") {
		t.Errorf("reload with a bad peers file: %v, want the file's line named", err)
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
	wait()
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
	if _, err := os.Stat(stalePID); !os.IsNotExist(err) {
		t.Error("keepalived started with the pid file an earlier one left")
	}
	filter, err := os.ReadFile(filterAtStart)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"198.18.0.1", "198.18.0.12", "meta l4proto vrrp @th,8,8 0x33 ip saddr != @peers counter packets 0 bytes 0 drop"} {
		if !strings.Contains(strings.Join(strings.Fields(string(filter)), " "), want) {
			t.Errorf("the VRRP filter keepalived started with lacks %q:\n%s", want, filter)
		}
	}
	if !strings.Contains(res.filterAfter, "No such file or directory") {
		t.Errorf("the VRRP filter outlived keepalived's supervisor:\n%s", res.filterAfter)
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
