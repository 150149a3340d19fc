// Package vrrptest forges VRRPv3 adverts, as an attacker on the segment
// would, for the tests of the VRRP filter (internal/vrrpfilter and the
// lab). It is used by tests only and never ships in the binary's paths.
package vrrptest

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// protocolVRRP is VRRP's IP protocol number.
const protocolVRRP = 112

// MulticastGroup is where VRRP adverts go over IPv4 (RFC 5798).
var MulticastGroup = netip.MustParseAddr("224.0.0.18")

// Advert is one VRRPv3 advertisement over IPv4.
type Advert struct {
	Source, Destination netip.Addr
	RouterID, Priority  uint8
	// IntervalCentiseconds is the advertised interval (VRRPv3 counts in
	// hundredths of a second).
	IntervalCentiseconds uint16
	VirtualIPs           []netip.Addr
}

// Packet is the advert with its IPv4 header (TTL 255, as VRRP requires,
// so keepalived's TTL check cannot tell it from a real one) and both
// checksums.
func (a Advert) Packet() ([]byte, error) {
	if !a.Source.Is4() || !a.Destination.Is4() {
		return nil, fmt.Errorf("IPv4 adverts only: %s -> %s", a.Source, a.Destination)
	}
	vrrp := make([]byte, 8, 8+4*len(a.VirtualIPs))
	vrrp[0] = 3<<4 | 1 // version 3, type 1 (advertisement)
	vrrp[1] = a.RouterID
	vrrp[2] = a.Priority
	vrrp[3] = uint8(len(a.VirtualIPs))
	binary.BigEndian.PutUint16(vrrp[4:], a.IntervalCentiseconds&0x0fff)
	for _, v := range a.VirtualIPs {
		if !v.Is4() {
			return nil, fmt.Errorf("virtual IP %s is not IPv4", v)
		}
		vrrp = append(vrrp, v.AsSlice()...)
	}
	// VRRPv3's checksum covers a pseudo-header, as keepalived computes it.
	src, dst := a.Source.As4(), a.Destination.As4()
	pseudo := append(append(append([]byte{}, src[:]...), dst[:]...), 0, protocolVRRP, byte(len(vrrp)>>8), byte(len(vrrp)))
	binary.BigEndian.PutUint16(vrrp[6:], checksum(append(pseudo, vrrp...)))

	ip := make([]byte, 20)
	ip[0] = 4<<4 | 5 // IPv4, 20-byte header
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(vrrp)))
	ip[8] = 255 // TTL
	ip[9] = protocolVRRP
	copy(ip[12:], src[:])
	copy(ip[16:], dst[:])
	binary.BigEndian.PutUint16(ip[10:], checksum(ip))
	return append(ip, vrrp...), nil
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// Sender sends packets that carry their own IPv4 header, out of one
// interface. The socket belongs to the network namespace of the thread
// that opened it.
type Sender struct{ fd int }

// NewSender opens a raw socket bound to iface (the lab's namespaces have
// no default route, so a multicast advert needs its interface named).
func NewSender(iface string) (*Sender, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
	if err != nil {
		return nil, fmt.Errorf("raw socket: %w", err)
	}
	if err := unix.BindToDevice(fd, iface); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("binding to %s: %w", iface, err)
	}
	return &Sender{fd: fd}, nil
}

// Send sends one packet to its destination.
func (s *Sender) Send(packet []byte, to netip.Addr) error {
	return unix.Sendto(s.fd, packet, 0, &unix.SockaddrInet4{Addr: to.As4()})
}

// Close closes the socket.
func (s *Sender) Close() error { return unix.Close(s.fd) }
