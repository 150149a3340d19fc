package ifaddr_test

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/hakeeper/hakeeper/internal/ifaddr"
	"github.com/hakeeper/hakeeper/internal/testing/ifaddrtest"
)

func TestRemoveTakesTheAddressWithItsPrefix(t *testing.T) {
	ifaddrtest.InNetns(t, "vip0", func() {
		for _, a := range []string{"198.18.0.1/24", "198.18.0.111/24", "2001:db8:18::111/64"} {
			if !ifaddrtest.AddAddress(t, "vip0", a) {
				return
			}
		}
		if iface, err := ifaddr.InterfaceHolding("198.18.0.1"); err != nil || iface != "vip0" {
			t.Errorf("InterfaceHolding = %q, %v", iface, err)
		}
		all := []string{"198.18.0.111", "2001:db8:18::111", "198.18.0.112"}
		if got := ifaddr.Held("vip0", all); !slices.Equal(got, all[:2]) {
			t.Errorf("Held = %v", got)
		}
		for _, a := range all {
			removed, err := ifaddr.Remove(context.Background(), "vip0", netip.MustParseAddr(a))
			if err != nil || removed != (a != "198.18.0.112") {
				t.Errorf("Remove(%s) = %v, %v", a, removed, err)
			}
		}
		if got := ifaddr.Held("vip0", append(all, "198.18.0.1")); !slices.Equal(got, []string{"198.18.0.1"}) {
			t.Errorf("after Remove the interface holds %v; only the node's own address should be left", got)
		}
	})()
}

// TestOwnSkipsTheVRRPInterface: the node's own addresses are read from
// every interface but the one named, loopback and link-local left out.
func TestOwnSkipsTheVRRPInterface(t *testing.T) {
	all := ifaddr.Own("")
	for _, a := range all {
		addr := netip.MustParseAddr(a)
		if addr.IsLoopback() || addr.IsLinkLocalUnicast() {
			t.Errorf("Own reported %s", a)
		}
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, iface := range ifaces {
		addrs, _ := iface.Addrs()
		if iface.Flags&net.FlagLoopback != 0 || len(addrs) == 0 {
			continue
		}
		for _, a := range ifaddr.Own(iface.Name) {
			for _, h := range addrs {
				if n, ok := h.(*net.IPNet); ok && n.IP.String() == a {
					t.Errorf("Own(%s) reported %s, an address of %s", iface.Name, a, iface.Name)
				}
			}
		}
	}
}

// TestWatchTellsAddressChanges: the kernel's notifications reach the
// watcher when an address is added to and removed from an interface of
// the namespace, and the channel closes with its context.
func TestWatchTellsAddressChanges(t *testing.T) {
	ifaddrtest.InNetns(t, "watch0", func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		events, err := ifaddr.Watch(ctx)
		if err != nil {
			t.Error(err)
			return
		}
		told := func(what string) {
			select {
			case _, ok := <-events:
				if !ok {
					t.Errorf("%s: the channel closed", what)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("%s: no notification in 5 s", what)
			}
		}
		// What the interface's coming up told (an IPv6 link-local
		// address) is not what this test waits for.
		for drained := false; !drained; {
			select {
			case <-events:
			case <-time.After(300 * time.Millisecond):
				drained = true
			}
		}
		if !ifaddrtest.AddAddress(t, "watch0", "198.18.0.111/24") {
			return
		}
		told("added")
		if _, err := ifaddr.Remove(ctx, "watch0", netip.MustParseAddr("198.18.0.111")); err != nil {
			t.Error(err)
		}
		told("removed")
		cancel()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case _, ok := <-events:
				if ok {
					continue // told before the cancel
				}
				return
			case <-deadline:
				t.Error("the channel stayed open after its context ended")
				return
			}
		}
	})()
}
