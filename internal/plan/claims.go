package plan

import (
	"net/netip"
	"slices"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/resolve"
)

// RequestedAddrs are the addresses a LoadBalancer's spec asks for.
func RequestedAddrs(lb *v1alpha1.LoadBalancer) []netip.Addr {
	var out []netip.Addr
	for _, v := range lb.Spec.VirtualIPs {
		if a, err := netip.ParseAddr(v); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// HeldAddrs are the addresses a LoadBalancer was last applied with: its
// data plane may serve them whatever its spec says now.
func HeldAddrs(lb *v1alpha1.LoadBalancer) []netip.Addr {
	var out []netip.Addr
	for _, v := range lb.Status.VirtualIPs {
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out
}

// ClaimedAddrs are the addresses a LoadBalancer holds or asks for.
func ClaimedAddrs(lb *v1alpha1.LoadBalancer) []netip.Addr {
	out := HeldAddrs(lb)
	for _, a := range RequestedAddrs(lb) {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// RefusedForItsSpec tells whether a LoadBalancer is stopped because of
// what it asks for: such a request claims nothing.
func RefusedForItsSpec(lb *v1alpha1.LoadBalancer) bool {
	c := meta.FindStatusCondition(lb.Status.Conditions, v1alpha1.LoadBalancerDegradedCondition)
	if c == nil || c.Status != metav1.ConditionTrue || lb.Status.ObservedGeneration != lb.Generation {
		return false
	}
	switch c.Reason {
	case v1alpha1.LoadBalancerInvalidSpecReason, v1alpha1.LoadBalancerClassNotFoundReason, v1alpha1.LoadBalancerNotAllowedByClassReason,
		v1alpha1.LoadBalancerAddressUnavailableReason, v1alpha1.LoadBalancerConflictReason, v1alpha1.LoadBalancerLimitExceededReason:
		return true
	}
	return false
}

// RefusedFor tells whether a LoadBalancer's current generation is
// refused with reason.
func RefusedFor(lb *v1alpha1.LoadBalancer, reason string) bool {
	c := meta.FindStatusCondition(lb.Status.Conditions, v1alpha1.LoadBalancerDegradedCondition)
	return c != nil && c.Status == metav1.ConditionTrue && c.Reason == reason && lb.Status.ObservedGeneration == lb.Generation
}

// TenancyOf is what a LoadBalancer takes of its namespace's share: the
// virtual IPs it holds, or asks for (one per family, at least one).
func TenancyOf(lb *v1alpha1.LoadBalancer) resolve.Tenancy {
	vips := int32(max(len(lb.Spec.VirtualIPs), len(lb.Spec.IPFamilies), 1))
	if held := int32(len(lb.Status.VirtualIPs)); held > vips {
		vips = held
	}
	return resolve.Tenancy{Key: KeyOf(lb), Created: lb.CreationTimestamp.Time, Holds: len(lb.Status.VirtualIPs) > 0, VirtualIPs: vips}
}

// ClaimOf describes what a LoadBalancer holds and asks for, for conflict
// checks: the addresses it asks for, those it holds, its ports, nodes and
// router ID.
func ClaimOf(lb *v1alpha1.LoadBalancer, vips []netip.Addr, nodes []string) resolve.Claim {
	var ports []int32
	for _, l := range lb.Spec.Listeners {
		ports = append(ports, l.Port)
	}
	c := resolve.NewClaim(KeyOf(lb), lb.CreationTimestamp.Time, vips, ports, nodes)
	c.Held = HeldAddrs(lb)
	c.RouterID, c.HeldRouterID = lb.Status.VirtualRouterID, lb.Status.VirtualRouterID
	if id := lb.Spec.VRRP.VirtualRouterID; id != nil {
		c.RouterID, c.Explicit = *id, true
	}
	return c
}

// KeyOf is a LoadBalancer's namespace/name.
func KeyOf(lb *v1alpha1.LoadBalancer) string { return lb.Namespace + "/" + lb.Name }
