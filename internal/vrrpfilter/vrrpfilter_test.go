package vrrpfilter_test

import (
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hakeeper/hakeeper/internal/testing/ifaddrtest"
	"github.com/hakeeper/hakeeper/internal/testing/vrrptest"
	"github.com/hakeeper/hakeeper/internal/vrrpfilter"
)

func TestParsePeers(t *testing.T) {
	got, err := vrrpfilter.ParsePeers([]byte("198.18.0.11\n\nfe80::1\n"))
	if err != nil || len(got) != 2 || got[1] != netip.MustParseAddr("fe80::1") {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"198.18.0.300\n", "fe80::1%eth0\n", "node-a\n"} {
		if _, err := vrrpfilter.ParsePeers([]byte(bad)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: got %v, want the line named", bad, err)
		}
	}
	f := vrrpfilter.Filter{RouterID: 7, Peers: []netip.Addr{netip.MustParseAddr("fe80::1")}}
	if err := f.Validate(); err == nil {
		t.Error("an IPv6 peer passed in an IPv4 filter")
	}
}

// TestFilterDropsAdvertsFromOthers writes a filter in a network namespace
// of its own and sends it forged VRRPv3 adverts through the kernel, as
// they would arrive from the segment: for its router ID from a peer (let
// through), from another address (dropped and counted), and for another
// router ID (left alone). A raw VRRP socket, as keepalived's, sees what
// the filter lets through. It also replaces a killed pod's table of the
// same router ID, keeps another router ID's, and removes its own.
func TestFilterDropsAdvertsFromOthers(t *testing.T) {
	ifaddrtest.InNetns(t, "vrrp0", func() {
		if !ifaddrtest.AddAddress(t, "vrrp0", "198.18.0.1/24") {
			return
		}
		// The adverts reach the node's own address through loopback.
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			t.Errorf("ip link set lo up: %v: %s", err, out)
			return
		}
		self := netip.MustParseAddr("198.18.0.1")
		// A table a killed pod left for the same router ID, and another
		// LoadBalancer's.
		stale, other := vrrpfilter.TableName(51, "old-pod"), vrrpfilter.TableName(52, "other-pod")
		for table, id := range map[string]uint8{stale: 51, other: 52} {
			if err := vrrpfilter.Apply(table, vrrpfilter.Filter{RouterID: id, Peers: []netip.Addr{self}}); err != nil {
				t.Error(err)
				return
			}
		}
		table := vrrpfilter.TableName(51, "2f0e-new-pod")
		peer := netip.MustParseAddr("198.18.0.12")
		if err := vrrpfilter.Apply(table, vrrpfilter.Filter{RouterID: 51, Peers: []netip.Addr{self, peer}}); err != nil {
			t.Error(err)
			return
		}
		if tables, want := listTables(t), []string{table, other}; !slices.Equal(tables, want) {
			t.Errorf("tables %v, want %v: the killed pod's table of the same router ID replaced, the other kept", tables, want)
		}

		recv, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, vrrpfilter.ProtocolVRRP)
		if err != nil {
			t.Error(err)
			return
		}
		defer unix.Close(recv)
		_ = unix.SetsockoptTimeval(recv, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200_000})
		send, err := vrrptest.NewSender("lo")
		if err != nil {
			t.Error(err)
			return
		}
		defer send.Close()
		vip := []netip.Addr{netip.MustParseAddr("198.18.0.100")}
		for _, tc := range []struct {
			from      string
			routerID  uint8
			delivered bool
		}{
			{"198.18.0.12", 51, true},  // a peer
			{"198.18.0.66", 51, false}, // anyone else
			{"198.18.0.66", 9, true},   // another router ID: not this filter's
		} {
			pkt, err := vrrptest.Advert{Source: netip.MustParseAddr(tc.from), Destination: self, RouterID: tc.routerID,
				Priority: 254, IntervalCentiseconds: 5, VirtualIPs: vip}.Packet()
			if err != nil {
				t.Error(err)
				return
			}
			if err := send.Send(pkt, self); err != nil {
				t.Error(err)
				return
			}
			got := receivedFrom(recv, tc.routerID)
			if delivered := got == tc.from; delivered != tc.delivered {
				t.Errorf("advert for router ID %d from %s: delivered %v (saw %q), want %v", tc.routerID, tc.from, delivered, got, tc.delivered)
			}
		}
		if n, err := vrrpfilter.Dropped(table); err != nil || n != 1 {
			t.Errorf("the filter counted %d dropped adverts (%v), want 1", n, err)
		}
		if err := vrrpfilter.Remove(table); err != nil {
			t.Error(err)
		}
		if err := vrrpfilter.Remove(table); err != nil {
			t.Errorf("removing a table that is gone: %v", err)
		}
		if tables := listTables(t); !slices.Equal(tables, []string{other}) {
			t.Errorf("after removal: tables %v, want only %s", tables, other)
		}
	})()
}

// receivedFrom reads the raw socket for an advert of the router ID and
// returns its source, or "" if none came.
func receivedFrom(fd int, routerID uint8) string {
	buf := make([]byte, 1500)
	for range 10 {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return ""
		}
		hl := int(buf[0]&0x0f) * 4
		if n > hl+1 && buf[hl+1] == routerID {
			return netip.AddrFrom4([4]byte(buf[12:16])).String()
		}
	}
	return ""
}

// listTables runs inside the namespace's goroutine: it reports with
// t.Error.
func listTables(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("nft", "list", "tables", "inet").CombinedOutput()
	if err != nil {
		t.Errorf("nft list tables: %v: %s", err, out)
		return nil
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) == 3 {
			names = append(names, f[2])
		}
	}
	slices.Sort(names)
	return names
}
