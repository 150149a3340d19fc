package resolve

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Claim is what one LoadBalancer holds on the network: its virtual IPs,
// listener ports, nodes and router ID. Conflicts are decided between claims.
type Claim struct {
	// Key is namespace/name.
	Key     string
	Created time.Time
	// VIPs are the virtual IP addresses it asks for: requested in its spec,
	// or settled by this reconcile.
	VIPs []netip.Addr
	// Held are the addresses it was last applied with (status): a holder
	// keeps its address against any newer request, whatever its age.
	Held []netip.Addr
	// Refused is set for a LoadBalancer stopped by its own spec (invalid,
	// not allowed by its class, in conflict): its requests claim nothing,
	// only what it holds counts.
	Refused bool
	Ports   []int32
	Nodes   []string
	// RouterID is the ID it asks for (its spec's) or uses; 0 when neither.
	// A refused claim's is only the one it holds.
	RouterID int32
	// HeldRouterID is the ID it was last applied with (status): like a
	// held address, a younger pin never takes it away.
	HeldRouterID int32
	// Explicit is true when RouterID comes from the spec.
	Explicit bool
}

// NewClaim builds a claim.
func NewClaim(key string, created time.Time, vips []netip.Addr, ports []int32, nodes []string) Claim {
	return Claim{Key: key, Created: created, VIPs: vips, Ports: ports, Nodes: nodes}
}

// earlier orders claims: the older LoadBalancer wins a conflict; equal ages
// fall back to the key, so every reconciler decides the same way.
func earlier(a, b *Claim) bool {
	if !a.Created.Equal(b.Created) {
		return a.Created.Before(b.Created)
	}
	return a.Key < b.Key
}

func sharesNode(a, b *Claim) bool {
	return slices.ContainsFunc(a.Nodes, func(n string) bool { return slices.Contains(b.Nodes, n) })
}

// Conflicts returns, for a claim, why it must not be applied: another
// LoadBalancer holds one of its virtual IPs (two VRRP groups moving one
// address fight over it, whatever the ports) that it does not hold itself;
// both hold it and the other is older; neither holds it and an older one,
// not refused, requests it. Router IDs on a shared node follow the same
// rules: a pinned ID never takes one another LoadBalancer holds. Each
// message names the other LoadBalancer.
func Conflicts(self Claim, others []Claim) []string {
	var out []string
	for i := range others {
		o := &others[i]
		if o.Key == self.Key {
			continue
		}
		for _, vip := range self.VIPs {
			oHolds, selfHolds := slices.Contains(o.Held, vip), slices.Contains(self.Held, vip)
			switch {
			case oHolds && (!selfHolds || earlier(o, &self)):
				out = append(out, fmt.Sprintf("virtual IP %s is held by LoadBalancer %s%s", vip, o.Key, samePorts(self.Ports, o.Ports)))
			case !oHolds && !selfHolds && !o.Refused && slices.Contains(o.VIPs, vip) && earlier(o, &self):
				out = append(out, fmt.Sprintf("virtual IP %s is already claimed by LoadBalancer %s%s", vip, o.Key, samePorts(self.Ports, o.Ports)))
			default:
				continue
			}
			break
		}
		if id := self.RouterID; id != 0 && sharesNode(&self, o) {
			oHolds, selfHolds := o.HeldRouterID == id, self.HeldRouterID == id
			switch {
			case oHolds && (!selfHolds || earlier(o, &self)):
				out = append(out, fmt.Sprintf("virtual router ID %d is held by LoadBalancer %s on shared nodes", id, o.Key))
			case !oHolds && !selfHolds && !o.Refused && o.RouterID == id && earlier(o, &self):
				out = append(out, fmt.Sprintf("virtual router ID %d is already used by LoadBalancer %s on shared nodes", id, o.Key))
			}
		}
	}
	return out
}

func samePorts(a, b []int32) string {
	for _, p := range a {
		if slices.Contains(b, p) {
			return fmt.Sprintf(" (both listen on port %d)", p)
		}
	}
	return ""
}

// AllocateRouterID picks a router ID for a claim without one in its spec.
// It keeps previous (the ID it holds) unless an older LoadBalancer holds it
// too on a shared node (when two allocations collide, the younger one
// moves); a pin asking for it takes nothing. Otherwise it takes the lowest
// ID no other LoadBalancer uses or asks for at all, and only when all 255
// are taken, the lowest one used only on other nodes (router IDs clash
// only on a shared segment). Refused claims ask for nothing.
//
// nearby are the other claims that may share a node with self (others are
// ignored); usedAnywhere tells whether any other LoadBalancer, on any
// node, uses or asks for an ID. Both come from indexes, so the cost does
// not grow with the number of LoadBalancers in the cluster.
func AllocateRouterID(self Claim, nearby []Claim, usedAnywhere func(int32) bool, previous int32) (int32, error) {
	usedNearby := map[int32]bool{}
	blocksPrevious := false
	for i := range nearby {
		o := &nearby[i]
		if o.Key == self.Key || !sharesNode(&self, o) {
			continue
		}
		for _, id := range []int32{o.RouterID, o.HeldRouterID} {
			if id != 0 {
				usedNearby[id] = true
			}
		}
		if o.HeldRouterID == previous && earlier(o, &self) {
			blocksPrevious = true
		}
	}
	if previous >= 1 && previous <= 255 && !blocksPrevious {
		return previous, nil
	}
	for _, used := range []func(int32) bool{func(id int32) bool { return usedNearby[id] || usedAnywhere(id) }, func(id int32) bool { return usedNearby[id] }} {
		for id := int32(1); id <= 255; id++ {
			if !used(id) {
				return id, nil
			}
		}
	}
	return 0, fmt.Errorf("no free virtual router ID: all 255 are used by LoadBalancers on the same nodes; set spec.vrrp.virtualRouterID")
}
