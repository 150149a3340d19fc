// Package keepalivedconf reads back what a keepalived.conf rendered by
// internal/render holds, for keepalived's supervisor: the addresses to
// remove when keepalived cannot, and the router ID and family its VRRP
// filter is written for. It imports only the standard library (the
// supervisors' binary is small), and reads only what render writes.
package keepalivedconf

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// VirtualAddress is one address keepalived puts on an interface.
type VirtualAddress struct {
	Prefix    netip.Prefix
	Interface string
}

// VirtualAddresses reads back the addresses a rendered
// keepalived.conf makes keepalived add (virtual_ipaddress and
// virtual_ipaddress_excluded), so that whoever must remove them when
// keepalived cannot (it was killed) removes exactly those. It reads only
// what render.KeepalivedConfig writes.
func VirtualAddresses(conf []byte) ([]VirtualAddress, error) {
	var out []VirtualAddress
	inBlock := false
	for n, line := range strings.Split(string(conf), "\n") {
		fields := strings.Fields(line)
		switch {
		case !inBlock && len(fields) == 2 && fields[1] == "{" &&
			(fields[0] == "virtual_ipaddress" || fields[0] == "virtual_ipaddress_excluded"):
			inBlock = true
		case inBlock && len(fields) == 1 && fields[0] == "}":
			inBlock = false
		case inBlock:
			if len(fields) != 3 || fields[1] != "dev" {
				return nil, fmt.Errorf("line %d: %q is not `ADDRESS/PREFIX dev INTERFACE`", n+1, strings.TrimSpace(line))
			}
			p, err := netip.ParsePrefix(fields[0])
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n+1, err)
			}
			out = append(out, VirtualAddress{Prefix: p, Interface: fields[2]})
		}
	}
	if inBlock {
		return nil, errors.New("an address block is not closed")
	}
	return out, nil
}

// Instance reads back the router ID of the VRRP instance a
// rendered keepalived.conf holds and the family it runs on (its first
// virtual IP's), which keepalived's supervisor writes the VRRP filter for.
// It reads only what render.KeepalivedConfig writes.
func Instance(conf []byte) (routerID uint8, ipv6 bool, err error) {
	found := false
	for n, line := range strings.Split(string(conf), "\n") {
		fields := strings.Fields(line)
		if len(fields) != 2 || fields[0] != "virtual_router_id" {
			continue
		}
		if found {
			return 0, false, fmt.Errorf("line %d: a second virtual_router_id", n+1)
		}
		id, err := strconv.ParseUint(fields[1], 10, 8)
		if err != nil || id == 0 {
			return 0, false, fmt.Errorf("line %d: %q is not a router ID", n+1, fields[1])
		}
		routerID, found = uint8(id), true
	}
	if !found {
		return 0, false, errors.New("no virtual_router_id")
	}
	addrs, err := VirtualAddresses(conf)
	if err != nil {
		return 0, false, err
	}
	if len(addrs) == 0 {
		return 0, false, errors.New("no virtual IP")
	}
	return routerID, !addrs[0].Prefix.Addr().Is4(), nil
}
