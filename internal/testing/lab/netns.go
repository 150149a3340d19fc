// Package lab runs hakeeper end to end on one Linux machine, on a real
// cluster: network namespaces joined by a bridge play the nodes, the
// backends and a client; etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler run on the host; each node runs its own containerd and
// kubelet, with pod networking from Debian's CNI plugins; and hakeeper is
// installed from the images built by `make images` with
// `kubectl apply -k`, so the manager and the data plane run as the pods a
// cluster would run.
//
// Addresses come from 198.18.0.0/15 and, for IPv6, 2001:db8::/32 (the
// documentation range) only, no namespace has a default route, and
// everything the lab creates is removed by name and pid, also after a
// killed run (see internal/leftovers).
package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hakeeper/hakeeper/internal/testing/leftovers"
)

// Subnet of the lab network; every address below is in it.
const (
	Prefix    = "198.18.0."
	PrefixLen = 24
)

func ip(argv ...string) error {
	out, err := exec.Command("ip", argv...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// network is the lab's namespaces: a switch holding the bridge, and hosts
// each wired to it by a veth pair.
type network struct {
	prefix string // namespace name prefix, unique per lab
	hosts  []string
	// services are the hosts that route the Service range (the nodes),
	// set before any goroutine reads it.
	services map[string]bool
	// podRoutes are each node's routes to the other nodes' pod ranges
	// (destination, then the node that has it), as a host-gw pod network
	// writes them, so that HAProxy on one node reaches pods on another.
	podRoutes map[string][][2]string
}

func (n *network) ns(host string) string { return n.prefix + host }

func (n *network) create() error {
	sw := n.ns("sw")
	if err := ip("netns", "add", sw); err != nil {
		return err
	}
	if err := ip("-n", sw, "link", "add", "br0", "type", "bridge"); err != nil {
		return err
	}
	return ip("-n", sw, "link", "set", "br0", "up")
}

// ipv6Sysctls make a host's IPv6 addresses usable at once and keep it a
// plain host: no duplicate address detection (an address would stay
// tentative for a second or more after it is added, the link-local one
// too, which VRRP for IPv6 sends from), no router advertisements heeded,
// no forwarding, and addresses kept over a pulled cable as IPv4 keeps
// them (the kernel flushes IPv6 ones on link down by default). Set before
// eth0 exists, so that "default" applies to it.
var ipv6Sysctls = []string{
	"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
	"net.ipv6.conf.all.accept_ra=0", "net.ipv6.conf.default.accept_ra=0",
	"net.ipv6.conf.all.forwarding=0",
	"net.ipv6.conf.all.keep_addr_on_down=1", "net.ipv6.conf.default.keep_addr_on_down=1",
}

// addHost creates a namespace with eth0 holding addr and its IPv6
// counterpart (IPv6Of), plugged into the bridge. No route but the
// subnets'.
func (n *network) addHost(host, addr string) error {
	ns, sw := n.ns(host), n.ns("sw")
	peer := fmt.Sprintf("v%d", len(n.hosts))
	if err := ip("netns", "add", ns); err != nil {
		return err
	}
	n.hosts = append(n.hosts, host)
	steps := [][]string{
		append([]string{"netns", "exec", ns, "sysctl", "-q", "-w"}, ipv6Sysctls...),
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", peer, "netns", sw},
		{"-n", ns, "addr", "add", fmt.Sprintf("%s/%d", addr, PrefixLen), "dev", "eth0"},
		{"-n", ns, "addr", "add", fmt.Sprintf("%s/%d", IPv6Of(addr), PrefixLen6), "dev", "eth0", "nodad"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", sw, "link", "set", peer, "master", "br0"},
		{"-n", sw, "link", "set", peer, "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	return nil
}

// addHostPort plugs the host itself into the bridge with addr, so the
// control plane on the host is reachable from every node. The host's end
// goes when the switch's namespace is deleted.
func (n *network) addHostPort(addr string) error {
	host, sw := n.prefix+"h", n.ns("sw")
	steps := [][]string{
		{"link", "add", host, "type", "veth", "peer", "name", "vhost", "netns", sw},
		{"addr", "add", fmt.Sprintf("%s/%d", addr, PrefixLen), "dev", host},
		{"link", "set", host, "up"},
		{"-n", sw, "link", "set", "vhost", "master", "br0"},
		{"-n", sw, "link", "set", "vhost", "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	return nil
}

// prepareServices readies a node for kube-proxy, which routes every
// Service's cluster IP (the `kubernetes` Service's to the API server)
// with DNAT rules for the node's own connections (host-network pods) and
// for those its pods route through it, which the CNI bridge then
// masquerades. kube-proxy writes no routes: a node's own connections
// need one to the Service range before the DNAT applies, here the host's
// address on the bridge (nodes have no default route); and the node must
// forward its pods' packets.
func (n *network) prepareServices(host string) error {
	if err := n.routeServices(host); err != nil {
		return err
	}
	return ip("netns", "exec", n.ns(host), "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
}

// setLink takes a host's link down or up, as a cable pull would.
func (n *network) setLink(host string, up bool) error {
	if !up {
		return ip("-n", n.ns(host), "link", "set", "eth0", "down")
	}
	if err := ip("-n", n.ns(host), "link", "set", "eth0", "up"); err != nil {
		return err
	}
	// The kernel dropped the routes through eth0 with the link; the
	// address's own route comes back, the Service range's is the lab's to
	// restore (a node's network configuration would).
	if _, ok := n.services[host]; ok {
		if err := n.routeServices(host); err != nil {
			return err
		}
	}
	return n.routePods(host)
}

// routePods routes the other nodes' pod ranges through those nodes.
func (n *network) routePods(host string) error {
	for _, r := range n.podRoutes[host] {
		if err := ip("-n", n.ns(host), "route", "replace", r[0], "via", r[1]); err != nil {
			return err
		}
	}
	return nil
}

// routeServices routes the Service range through the host's end of the
// bridge.
func (n *network) routeServices(host string) error {
	return ip("-n", n.ns(host), "route", "replace", ServiceRange, "via", APIServerAddr)
}

// destroy kills what runs in the lab's namespaces and removes them
// (their veths go with them).
func (n *network) destroy() {
	for _, h := range append(n.hosts, "sw") {
		leftovers.KillNamespace(n.ns(h))
	}
}

// reapPodNamespaces removes the pods' network namespaces that containerd
// left pinned under /run/netns (cni-...) when their node went away: with
// nothing running in them and no interface but the loopback (a pod's veth
// goes with its node's namespace, which held the bridge). Labs take turns,
// so no lab's containerd is setting one up meanwhile.
func reapPodNamespaces() []string {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "cni-") {
			continue
		}
		if pids, err := exec.Command("ip", "netns", "pids", name).Output(); err != nil || len(strings.TrimSpace(string(pids))) > 0 {
			continue
		}
		links, err := exec.Command("ip", "-n", name, "-o", "link", "show").Output()
		if err != nil || strings.Count(strings.TrimSpace(string(links)), "\n") > 0 || !strings.Contains(string(links), ": lo:") {
			continue
		}
		if ip("netns", "del", name) == nil {
			removed = append(removed, "pod network namespace "+name)
		}
	}
	return removed
}

// inNetns runs f on a thread switched into the named namespace. Sockets
// created there stay in that namespace, so the test process can dial from
// the client's namespace or listen in a node's.
func inNetns(name string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is not unlocked: it ends with the goroutine, so a
		// thread in a foreign namespace never returns to the pool. (This is
		// why the lab starts no child with Pdeathsig: the signal follows
		// the forking thread, which may be one of these.)
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/var/run/netns/" + name)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// dialer dials from inside a namespace.
func dialer(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var conn net.Conn
		err := inNetns(ns, func() error {
			var d net.Dialer
			var err error
			conn, err = d.DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
}
