// Package ifaddrtest gives a test a network namespace of its own, where
// addresses can be added and removed with the real kernel and iproute2
// without touching the host's interfaces.
package ifaddrtest

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// EnterNetns moves the calling goroutine, locked to its thread for good,
// into a new network namespace with a veth interface iface up (veth, as
// the lab's nodes have; this kernel has no dummy module). Processes it
// starts inherit the namespace. The thread is never unlocked, so Go
// retires it, and the namespace with its interfaces goes with it. Run the
// test body in a goroutine of its own: the test's goroutine must not be
// the one moved.
func EnterNetns(t testing.TB, iface string) {
	t.Helper()
	// Where the real tools are required (CI, make test), what is missing
	// fails the test instead of skipping it.
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
	runtime.LockOSThread()
	if err := syscall.Unshare(syscall.CLONE_NEWNET); err != nil {
		skip("unshare: %v", err)
	}
	peer := iface + "p"
	for _, args := range [][]string{
		{"link", "add", iface, "type", "veth", "peer", "name", peer},
		{"link", "set", peer, "up"},
		{"link", "set", iface, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
}

// AddAddress puts prefix on iface (IPv6 without duplicate address
// detection, so it is usable at once).
func AddAddress(t testing.TB, iface, prefix string) {
	t.Helper()
	args := []string{"addr", "add", prefix, "dev", iface}
	if strings.Contains(prefix, ":") {
		args = append(args, "nodad")
	}
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %v: %v: %s", args, err, out)
	}
}
