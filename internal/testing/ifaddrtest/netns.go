// Package ifaddrtest gives a test a network namespace of its own, where
// addresses can be added and removed with the real kernel and iproute2
// without touching the host's interfaces.
package ifaddrtest

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// InNetns starts body in a goroutine of its own, locked to its thread for
// good and moved into a new network namespace with a veth interface iface
// up (veth, as the lab's nodes have; this kernel has no dummy module).
// Processes body starts inherit the namespace. The thread is never
// unlocked, so Go retires it, and the namespace with its interfaces goes
// with it.
//
// What the namespace needs is checked first, on the test's goroutine: a
// test without it is skipped, or fails where the real tools are required
// (HAKEEPER_REQUIRE_REAL_TOOLS=1, as in CI and make test). body does not
// run on the test's goroutine, so it reports with t.Error and returns,
// never t.Fatal or t.Skip; the wait InNetns returns must be called on the
// test's goroutine, and fails the test there if the namespace could not
// be made.
func InNetns(t testing.TB, iface string, body func()) (wait func()) {
	t.Helper()
	skip := t.Skipf
	if os.Getenv("HAKEEPER_REQUIRE_REAL_TOOLS") == "1" {
		skip = t.Fatalf
	}
	if os.Geteuid() != 0 {
		skip("needs root for a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		skip("needs iproute2's ip")
	}
	failed := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		if err := enter(iface); err != nil {
			failed <- err
			return
		}
		body()
	}()
	return func() {
		t.Helper()
		<-done
		select {
		case err := <-failed:
			t.Fatalf("a network namespace for the test: %v", err)
		default:
		}
	}
}

func enter(iface string) error {
	if err := syscall.Unshare(syscall.CLONE_NEWNET); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	peer := iface + "p"
	for _, args := range [][]string{
		{"link", "add", iface, "type", "veth", "peer", "name", peer},
		{"link", "set", peer, "up"},
		{"link", "set", iface, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %v: %w: %s", args, err, out)
		}
	}
	return nil
}

// AddAddress puts prefix on iface (IPv6 without duplicate address
// detection, so it is usable at once). It runs inside InNetns's body:
// a failure is reported with t.Error, and false tells the body to return.
func AddAddress(t testing.TB, iface, prefix string) bool {
	t.Helper()
	args := []string{"addr", "add", prefix, "dev", iface}
	if strings.Contains(prefix, ":") {
		args = append(args, "nodad")
	}
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Errorf("ip %v: %v: %s", args, err, out)
		return false
	}
	return true
}
