// Package ifaddr reads which addresses a node's interfaces carry, and
// removes one. The agent reads (it reports the virtual IPs its node holds,
// as the interfaces say, not as keepalived says); only the keepalived
// container's supervisor, which has NET_ADMIN, removes.
package ifaddr

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
)

// InterfaceHolding is the interface that carries ip (a node's own address:
// keepalived's VRRP goes out there).
func InterfaceHolding(ip string) (string, error) {
	want, err := netip.ParseAddr(ip)
	if err != nil {
		return "", err
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	for _, iface := range ifaces {
		if _, ok := find(iface.Name, want); ok {
			return iface.Name, nil
		}
	}
	return "", fmt.Errorf("no interface holds %s", ip)
}

// Held are those of addrs the interface carries, in their order. An
// interface that cannot be read carries nothing.
func Held(iface string, addrs []string) []string {
	if iface == "" {
		return nil
	}
	var out []string
	for _, a := range addrs {
		if want, err := netip.ParseAddr(a); err == nil {
			if _, ok := find(iface, want); ok {
				out = append(out, a)
			}
		}
	}
	return out
}

// find is addr as the interface carries it, with its prefix length: the
// kernel removes an address only when given the length it was added with.
func find(iface string, addr netip.Addr) (netip.Prefix, bool) {
	i, err := net.InterfaceByName(iface)
	if err != nil {
		return netip.Prefix{}, false
	}
	have, err := i.Addrs()
	if err != nil {
		return netip.Prefix{}, false
	}
	for _, h := range have {
		n, ok := h.(*net.IPNet)
		if !ok {
			continue
		}
		a, ok := netip.AddrFromSlice(n.IP)
		if !ok || a.Unmap() != addr.Unmap() {
			continue
		}
		bits, _ := n.Mask.Size()
		return netip.PrefixFrom(addr, bits), true
	}
	return netip.Prefix{}, false
}

// Remove takes addr off the interface if it carries it, whatever prefix
// length it was added with, and tells whether it did. It runs iproute2's
// ip (in the data-plane image), so it needs NET_ADMIN.
func Remove(ctx context.Context, iface string, addr netip.Addr) (bool, error) {
	p, ok := find(iface, addr)
	if !ok {
		return false, nil
	}
	out, err := exec.CommandContext(ctx, "ip", "addr", "del", p.String(), "dev", iface).CombinedOutput()
	if err != nil {
		if _, still := find(iface, addr); !still {
			return false, nil // gone meanwhile
		}
		return false, fmt.Errorf("ip addr del %s dev %s: %v: %s", p, iface, err, strings.TrimSpace(string(out)))
	}
	return true, nil
}

// LinkLocal is the interface's first IPv6 link-local address, where
// keepalived sends IPv6 VRRP adverts from; empty when it has none (IPv6
// off, or duplicate address detection still running).
func LinkLocal(iface string) string {
	i, err := net.InterfaceByName(iface)
	if err != nil {
		return ""
	}
	have, err := i.Addrs()
	if err != nil {
		return ""
	}
	for _, h := range have {
		if n, ok := h.(*net.IPNet); ok {
			if a, ok := netip.AddrFromSlice(n.IP); ok && a.Is6() && !a.Is4In6() && a.IsLinkLocalUnicast() {
				return a.String()
			}
		}
	}
	return ""
}

// Own are the unicast addresses of the node's interfaces other than
// skip (the VRRP interface, which carries every LoadBalancer's virtual
// IPs), sorted: a CNI gateway, kube-ipvs0's, a second NIC's. Loopback and
// link-local addresses are left out: no server may have one anyway.
func Own(skip string) []string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []string
	for _, iface := range ifaces {
		if iface.Name == skip || iface.Flags&net.FlagLoopback != 0 {
			continue
		}
		have, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, h := range have {
			n, ok := h.(*net.IPNet)
			if !ok {
				continue
			}
			if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap().IsGlobalUnicast() {
				out = append(out, a.Unmap().String())
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
