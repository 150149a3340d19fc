package cli

import (
	"net/netip"
	"slices"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/plan"
	"github.com/hakeeper/hakeeper/internal/priority"
	"github.com/hakeeper/hakeeper/internal/resolve"
)

// rendered are the LoadBalancers rendered before in the same file, as
// the operator's cache shows LoadBalancers once applied: what they hold,
// their router IDs and priorities. So a file holding several is decided
// as a cluster where they were applied in that order.
type rendered struct {
	claims     []resolve.Claim
	priorities []map[string]int32
	// class is each one's class, namespace its namespace, tenancy its
	// share of it.
	class, namespace []string
	tenancy          []resolve.Tenancy
	// deciding is the namespace of the LoadBalancer being decided.
	deciding string
}

var _ plan.Others = (*rendered)(nil)

// add records a LoadBalancer as applied with plan p.
func (r *rendered) add(lb *v1alpha1.LoadBalancer, p *plan.Plan) {
	applied := lb.DeepCopy()
	applied.Status.VirtualIPs = p.Allocation.VirtualIPs
	applied.Status.VirtualRouterID = p.RouterID
	var addrs []netip.Addr
	nodes := make([]string, 0, len(p.Nodes))
	for _, v := range p.VirtualIPs {
		addrs = append(addrs, v.Addr())
	}
	for _, n := range p.Nodes {
		nodes = append(nodes, n.Name)
	}
	r.claims = append(r.claims, plan.ClaimOf(applied, addrs, nodes))
	r.priorities = append(r.priorities, p.Allocation.Priorities)
	r.class = append(r.class, p.Class.Name)
	r.namespace = append(r.namespace, lb.Namespace)
	r.tenancy = append(r.tenancy, plan.TenancyOf(applied))
}

func (r *rendered) HeldBy(a netip.Addr) (string, bool) {
	for _, c := range r.claims {
		if slices.Contains(c.Held, a) {
			return c.Key, true
		}
	}
	return "", false
}

func (r *rendered) RequestedBy(a netip.Addr) (string, bool) {
	for _, c := range r.claims {
		if slices.Contains(c.VIPs, a) {
			return c.Key, true
		}
	}
	return "", false
}

// Contenders and OnNodes give every claim: there are few, and Conflicts
// and AllocateRouterID look at what they share.
func (r *rendered) Contenders(resolve.Claim) []resolve.Claim { return r.claims }
func (r *rendered) OnNodes([]string) []resolve.Claim         { return r.claims }

func (r *rendered) Load([]string) priority.Load {
	load := priority.Load{}
	for _, p := range r.priorities {
		load.Add(p)
	}
	return load
}

func (r *rendered) RouterIDUsed(id int32) bool {
	return slices.ContainsFunc(r.claims, func(c resolve.Claim) bool { return c.RouterID == id || c.HeldRouterID == id })
}

func (r *rendered) Siblings(class string) []resolve.Tenancy {
	var out []resolve.Tenancy
	for i, t := range r.tenancy {
		if r.class[i] == class && r.namespace[i] == r.deciding {
			out = append(out, t)
		}
	}
	return out
}

func (r *rendered) Err() error { return nil }
