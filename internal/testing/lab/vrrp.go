package lab

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/hakeeper/hakeeper/internal/testing/vrrptest"
	"github.com/hakeeper/hakeeper/internal/vrrpfilter"
)

// ForgeAdverts plays an attacker on the segment: from a lab host that is
// no data-plane node (the client, a backend), it sends VRRPv3 adverts of
// priority 254 for the router ID and virtual IP to the VRRP group, every
// interval until duration has passed or ctx ends, and says how many it
// sent. Each is what a real master's advert looks like on the wire (TTL
// 255, valid checksum, the LoadBalancer's advertised address), from the
// host's own address.
func (l *Lab) ForgeAdverts(ctx context.Context, host, source string, routerID uint8, vip string, interval, duration time.Duration) (int, error) {
	src, err := netip.ParseAddr(source)
	if err != nil {
		return 0, err
	}
	pkt, err := vrrptest.Advert{Source: src, Destination: vrrptest.MulticastGroup, RouterID: routerID, Priority: 254,
		IntervalCentiseconds: uint16(interval / (10 * time.Millisecond)), VirtualIPs: []netip.Addr{netip.MustParseAddr(vip)}}.Packet()
	if err != nil {
		return 0, err
	}
	var sender *vrrptest.Sender
	if err := inNetns(l.net.ns(host), func() (err error) {
		sender, err = vrrptest.NewSender("eth0")
		return err
	}); err != nil {
		return 0, err
	}
	defer sender.Close()
	sent := 0
	tick := time.NewTicker(interval)
	defer tick.Stop()
	deadline := time.After(duration)
	for limit := int(duration/interval) + 1; sent < limit; {
		if err := sender.Send(pkt, vrrptest.MulticastGroup); err != nil {
			return sent, fmt.Errorf("after %d adverts: %w", sent, err)
		}
		sent++
		select {
		case <-ctx.Done():
			return sent, ctx.Err()
		case <-deadline:
			return sent, nil
		case <-tick.C:
		}
	}
	return sent, nil
}

// VRRPFilterDropped reads, on a node, how many adverts the VRRP filters
// of a router ID dropped, and which tables hold them.
func (l *Lab) VRRPFilterDropped(node string, routerID uint8) (uint64, []string, error) {
	var dropped uint64
	var tables []string
	err := inNetns(l.net.ns(node), func() error {
		var err error
		if tables, err = vrrpfilter.Tables(routerID); err != nil {
			return err
		}
		for _, t := range tables {
			n, err := vrrpfilter.Dropped(t)
			if err != nil {
				return err
			}
			dropped += n
		}
		return nil
	})
	return dropped, tables, err
}
