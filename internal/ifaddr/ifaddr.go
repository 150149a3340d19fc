// Package ifaddr reads which addresses a node's interfaces carry, tells
// when they change, and removes one, all over rtnetlink. The agent reads (it reports the virtual IPs its node holds,
// as the interfaces say, not as keepalived says); only the keepalived
// container's supervisor, which has NET_ADMIN, removes.
package ifaddr

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
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
// length it was added with, and tells whether it did. It asks the kernel
// over rtnetlink (RTM_DELADDR), which needs NET_ADMIN.
func Remove(ctx context.Context, iface string, addr netip.Addr) (bool, error) {
	p, ok := find(iface, addr)
	if !ok {
		return false, nil
	}
	i, err := net.InterfaceByName(iface)
	if err != nil {
		return false, err
	}
	if err := deleteAddress(ctx, i.Index, p); err != nil {
		if _, still := find(iface, addr); !still {
			return false, nil // gone meanwhile
		}
		return false, fmt.Errorf("removing %s from %s: %w", p, iface, err)
	}
	return true, nil
}

// deleteAddress sends one RTM_DELADDR for prefix on the interface with
// index ifindex and reads the kernel's acknowledgement.
func deleteAddress(ctx context.Context, ifindex int, prefix netip.Prefix) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("rtnetlink socket: %w", err)
	}
	defer unix.Close(fd)
	if deadline, ok := ctx.Deadline(); ok {
		tv := unix.NsecToTimeval(max(time.Until(deadline).Nanoseconds(), int64(time.Millisecond)))
		_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("rtnetlink bind: %w", err)
	}
	family := unix.AF_INET
	if prefix.Addr().Is6() {
		family = unix.AF_INET6
	}
	ip := prefix.Addr().AsSlice()
	attr := func(typ uint16, data []byte) []byte {
		b := make([]byte, unix.SizeofRtAttr+len(data))
		binary.NativeEndian.PutUint16(b[0:2], uint16(len(b)))
		binary.NativeEndian.PutUint16(b[2:4], typ)
		copy(b[unix.SizeofRtAttr:], data)
		for len(b)%unix.NLMSG_ALIGNTO != 0 {
			b = append(b, 0)
		}
		return b
	}
	body := make([]byte, unix.SizeofIfAddrmsg)
	body[0], body[1] = byte(family), byte(prefix.Bits())
	binary.NativeEndian.PutUint32(body[4:8], uint32(ifindex))
	body = append(body, attr(unix.IFA_LOCAL, ip)...)
	body = append(body, attr(unix.IFA_ADDRESS, ip)...)
	const seq = 1
	msg := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(body))
	binary.NativeEndian.PutUint32(msg[0:4], uint32(unix.SizeofNlMsghdr+len(body)))
	binary.NativeEndian.PutUint16(msg[4:6], unix.RTM_DELADDR)
	binary.NativeEndian.PutUint16(msg[6:8], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	binary.NativeEndian.PutUint32(msg[8:12], seq)
	msg = append(msg, body...)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("rtnetlink send: %w", err)
	}
	buf := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("rtnetlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Header.Seq != seq || m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4 {
				continue
			}
			if errno := int32(binary.NativeEndian.Uint32(m.Data[0:4])); errno != 0 {
				return syscall.Errno(-errno)
			}
			return nil
		}
	}
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
