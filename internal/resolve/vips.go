package resolve

import (
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/validation"
)

// Pool is one of a class's virtual IP pools, parsed.
type Pool struct {
	Name string
	// Range is what is handed out.
	Range netip.Prefix
	// Subnet is the prefix the addresses get on the interface; Range lies
	// inside it.
	Subnet netip.Prefix
}

// Pools parses a class's pools. The CRD's rules make every pool valid; one
// that is not anyway (an older CRD) is an error naming it.
func Pools(class *v1alpha1.LoadBalancerClass) ([]Pool, error) {
	out := make([]Pool, 0, len(class.Spec.VirtualIPPools))
	for _, p := range class.Spec.VirtualIPPools {
		r, err := netip.ParsePrefix(p.CIDR)
		if err != nil || r != r.Masked() || !r.Addr().IsGlobalUnicast() {
			return nil, fmt.Errorf("LoadBalancerClass %s: pool %s: cidr %q is not a unicast network", class.Name, p.Name, p.CIDR)
		}
		bits := int(v1alpha1.Int32Or(p.PrefixLength, int32(r.Bits())))
		if bits > r.Bits() || bits > r.Addr().BitLen() {
			return nil, fmt.Errorf("LoadBalancerClass %s: pool %s: prefixLength %d does not contain %s", class.Name, p.Name, bits, p.CIDR)
		}
		subnet, _ := r.Addr().Prefix(bits)
		out = append(out, Pool{Name: p.Name, Range: r, Subnet: subnet})
	}
	return out, nil
}

// NodeAddresses maps every address of every node (InternalIP, ExternalIP)
// to the node's name: none of them may become a virtual IP or a server.
func NodeAddresses(nodes []corev1.Node) map[netip.Addr]string {
	out := map[netip.Addr]string{}
	for i := range nodes {
		for _, a := range nodes[i].Status.Addresses {
			if addr, err := netip.ParseAddr(a.Address); err == nil {
				out[addr.Unmap()] = nodes[i].Name
			}
		}
	}
	return out
}

// AddressError says why a virtual IP cannot be used; Reason is the
// condition reason for status.
type AddressError struct {
	Reason  string
	Message string
}

func (e *AddressError) Error() string { return e.Message }

func notAllowed(format string, args ...any) error {
	return &AddressError{Reason: v1alpha1.LoadBalancerNotAllowedByClassReason, Message: fmt.Sprintf(format, args...)}
}

func unavailable(format string, args ...any) error {
	return &AddressError{Reason: v1alpha1.LoadBalancerAddressUnavailableReason, Message: fmt.Sprintf(format, args...)}
}

// VIPInput is what deciding a LoadBalancer's virtual IPs needs.
type VIPInput struct {
	// Class names the class in messages.
	Class string
	// Requested are spec.virtualIPs; when empty, addresses are allocated.
	Requested []string
	// Families to allocate, one address each (spec.ipFamilies).
	Families []corev1.IPFamily
	// Previous are status.virtualIPs: allocations are kept across
	// reconciles, restarts and leader changes.
	Previous []string
	Pools    []Pool
	// NodeAddresses of every node in the cluster.
	NodeAddresses map[netip.Addr]string
	// Others tells which addresses other LoadBalancers hold or ask for.
	Others AddressClaims
}

// AddressClaims tells what other LoadBalancers claim of an address:
// HeldBy, the one that holds it (its status): never handed out, and a
// previous allocation one of them holds is given up; RequestedBy, one that
// asks for it and does not hold it: a new allocation avoids it, but a
// previous allocation is kept (its holder wins, see Conflicts), so nobody
// can dislodge an address by asking for it. Each answers with the other's
// namespace/name. The operator answers from the cache's indexes, so an
// allocation costs what it looks at, not a list of every LoadBalancer.
type AddressClaims interface {
	HeldBy(netip.Addr) (string, bool)
	RequestedBy(netip.Addr) (string, bool)
}

// ClaimMaps are AddressClaims held in two maps, address to namespace/name.
type ClaimMaps struct {
	Held, Requested map[netip.Addr]string
}

func (m ClaimMaps) HeldBy(a netip.Addr) (string, bool) {
	key, ok := m.Held[a]
	return key, ok
}

func (m ClaimMaps) RequestedBy(a netip.Addr) (string, bool) {
	key, ok := m.Requested[a]
	return key, ok
}

// poolOf finds the pool an address lies in.
func poolOf(pools []Pool, addr netip.Addr) (Pool, bool) {
	for _, p := range pools {
		if p.Range.Contains(addr) {
			return p, true
		}
	}
	return Pool{}, false
}

// usable tells why addr, inside pool, cannot be a virtual IP, or "".
func usable(pool Pool, addr netip.Addr, nodes map[netip.Addr]string) string {
	if node, ok := nodes[addr]; ok {
		return fmt.Sprintf("%s is an address of node %s: keepalived would take it from the node", addr, node)
	}
	if addr == pool.Subnet.Addr() && pool.Subnet.Bits() < addr.BitLen()-1 {
		return fmt.Sprintf("%s is the network address of %s", addr, pool.Subnet)
	}
	if addr.Is4() && pool.Subnet.Bits() < 31 && addr == lastAddr(pool.Subnet) {
		return fmt.Sprintf("%s is the broadcast address of %s", addr, pool.Subnet)
	}
	if !addr.IsGlobalUnicast() {
		return fmt.Sprintf("%s is not a unicast address", addr)
	}
	return ""
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// AssignVirtualIPs decides a LoadBalancer's virtual IPs with their prefix
// lengths: the requested ones, each checked against the class's pools and
// the nodes' addresses; or allocated ones, keeping earlier allocations.
func AssignVirtualIPs(in VIPInput) ([]netip.Prefix, error) {
	if len(in.Requested) > 0 {
		return requested(in)
	}
	families := in.Families
	if len(families) == 0 {
		if len(in.Pools) == 0 {
			return nil, notAllowed("LoadBalancerClass %s has no virtual IP pool", in.Class)
		}
		families = []corev1.IPFamily{familyOf(in.Pools[0].Range.Addr())}
	}
	var out []netip.Prefix
	for _, family := range families {
		vip, err := allocate(in, family)
		if err != nil {
			return nil, err
		}
		out = append(out, vip)
	}
	return out, nil
}

func familyOf(a netip.Addr) corev1.IPFamily {
	if a.Is4() {
		return corev1.IPv4Protocol
	}
	return corev1.IPv6Protocol
}

func requested(in VIPInput) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, s := range in.Requested {
		addr, err := validation.Unicast(s)
		if err != nil {
			return nil, notAllowed("spec.virtualIPs[%d]: %s %v", i, s, err)
		}
		pool, ok := poolOf(in.Pools, addr)
		if !ok {
			return nil, notAllowed("spec.virtualIPs[%d]: %s is in none of LoadBalancerClass %s's pools (%s)", i, s, in.Class, poolList(in.Pools))
		}
		if why := usable(pool, addr, in.NodeAddresses); why != "" {
			return nil, unavailable("spec.virtualIPs[%d]: %s", i, why)
		}
		out = append(out, netip.PrefixFrom(addr, pool.Subnet.Bits()))
	}
	return out, nil
}

func poolList(pools []Pool) string {
	s := ""
	for i, p := range pools {
		if i > 0 {
			s += ", "
		}
		s += p.Range.String()
	}
	return s
}

// allocate keeps the previous address of the family if it is still good,
// or takes the lowest free one from the family's pools in order.
func allocate(in VIPInput, family corev1.IPFamily) (netip.Prefix, error) {
	others := in.Others
	if others == nil {
		others = ClaimMaps{}
	}
	keep := func(pool Pool, a netip.Addr) bool {
		_, held := others.HeldBy(a)
		return !held && usable(pool, a, in.NodeAddresses) == ""
	}
	free := func(pool Pool, a netip.Addr) bool {
		_, requested := others.RequestedBy(a)
		return keep(pool, a) && !requested
	}
	for _, s := range in.Previous {
		prev, err := netip.ParsePrefix(s)
		if err != nil || familyOf(prev.Addr()) != family {
			continue
		}
		if pool, ok := poolOf(in.Pools, prev.Addr()); ok && keep(pool, prev.Addr()) {
			return netip.PrefixFrom(prev.Addr(), pool.Subnet.Bits()), nil
		}
	}
	anyPool := false
	for _, pool := range in.Pools {
		if familyOf(pool.Range.Addr()) != family {
			continue
		}
		anyPool = true
		// Every address skipped is held, requested, a node's, one of the
		// two reserved ones or not unicast, so the walk ends at a free one
		// within that many steps even in a huge IPv6 pool.
		for a := pool.Range.Addr(); pool.Range.Contains(a); a = a.Next() {
			if free(pool, a) {
				return netip.PrefixFrom(a, pool.Subnet.Bits()), nil
			}
		}
	}
	if !anyPool {
		return netip.Prefix{}, notAllowed("LoadBalancerClass %s has no %s pool", in.Class, family)
	}
	return netip.Prefix{}, unavailable("LoadBalancerClass %s's %s pools are exhausted (%s)", in.Class, family, poolList(slices.DeleteFunc(slices.Clone(in.Pools), func(p Pool) bool { return familyOf(p.Range.Addr()) != family })))
}
