package resolve

import (
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
)

// Limits are what a class lets one LoadBalancer, and one namespace, take
// of the data plane every tenant of the class shares: its nodes' CPU,
// connections and memory, router IDs and addresses.
type Limits struct {
	class                   string
	loadBalancersPerNS      int32
	virtualIPsPerNS         int32
	servers                 int32
	connections             int32
	threads                 int32 // 0: not capped
	timeoutSeconds          int32
	advertIntervalMinimumMS int32
}

// LimitsOf reads a class's limits with their defaults.
func LimitsOf(class *v1alpha1.LoadBalancerClass) Limits {
	l := class.Spec.Limits
	return Limits{
		class:                   class.Name,
		loadBalancersPerNS:      v1alpha1.Int32Or(l.MaxLoadBalancersPerNamespace, v1alpha1.DefaultMaxLoadBalancersPerNamespace),
		virtualIPsPerNS:         v1alpha1.Int32Or(l.MaxVirtualIPsPerNamespace, v1alpha1.DefaultMaxVirtualIPsPerNamespace),
		servers:                 v1alpha1.Int32Or(l.MaxServers, v1alpha1.DefaultMaxServers),
		connections:             v1alpha1.Int32Or(l.MaxConnections, v1alpha1.DefaultMaxConnectionsLimit),
		threads:                 v1alpha1.Int32Or(l.MaxThreads, 0),
		timeoutSeconds:          v1alpha1.Int32Or(l.MaxTimeoutSeconds, v1alpha1.DefaultMaxTimeoutSeconds),
		advertIntervalMinimumMS: v1alpha1.Int32Or(l.MinAdvertIntervalMilliseconds, v1alpha1.DefaultMinAdvertIntervalMilliseconds),
	}
}

// CheckSpec refuses a spec that asks for more than the class allows one
// LoadBalancer. Only what the tenant wrote is checked: the defaults the
// class fills in (WithClassDefaults) are the admin's choice.
func (l Limits) CheckSpec(spec *v1alpha1.LoadBalancerSpec) field.ErrorList {
	var errs field.ErrorList
	allows := func(field string, n int32) string {
		return fmt.Sprintf("LoadBalancerClass %s allows at most %d (limits.%s)", l.class, n, field)
	}
	total := int32(0)
	for _, b := range spec.Backends {
		total += int32(len(b.Servers))
		if b.ServiceRef != nil {
			total += v1alpha1.Int32Or(b.ServiceRef.ServerSlots, v1alpha1.DefaultServerSlots)
		}
	}
	if total > l.servers {
		errs = append(errs, field.Invalid(field.NewPath("spec", "backends"), total,
			"servers plus server slots over all backends: "+allows("maxServers", l.servers)))
	}
	hp := field.NewPath("spec", "haproxy")
	if v := spec.HAProxy.MaxConnections; v != nil && *v > l.connections {
		errs = append(errs, field.Invalid(hp.Child("maxConnections"), *v, allows("maxConnections", l.connections)))
	}
	for i, lis := range spec.Listeners {
		if v := lis.Bind.MaxConnections; v != nil && *v > l.connections {
			errs = append(errs, field.Invalid(field.NewPath("spec", "listeners").Index(i).Child("bind", "maxConnections"), *v,
				allows("maxConnections", l.connections)))
		}
	}
	if v := spec.HAProxy.Threads; v != nil && l.threads > 0 && *v > l.threads {
		errs = append(errs, field.Invalid(hp.Child("threads"), *v, allows("maxThreads", l.threads)))
	}
	tp := hp.Child("timeouts")
	t := spec.HAProxy.Timeouts
	if v := t.ConnectMilliseconds; v != nil && int64(*v) > int64(l.timeoutSeconds)*1000 {
		errs = append(errs, field.Invalid(tp.Child("connectMilliseconds"), *v,
			fmt.Sprintf("LoadBalancerClass %s allows at most %d s (limits.maxTimeoutSeconds)", l.class, l.timeoutSeconds)))
	}
	for _, s := range []struct {
		name string
		v    *int32
	}{
		{"clientSeconds", t.ClientSeconds}, {"serverSeconds", t.ServerSeconds}, {"httpRequestSeconds", t.HTTPRequestSeconds},
		{"tunnelSeconds", t.TunnelSeconds}, {"hardStopAfterSeconds", t.HardStopAfterSeconds},
	} {
		if s.v != nil && *s.v > l.timeoutSeconds {
			errs = append(errs, field.Invalid(tp.Child(s.name), *s.v, allows("maxTimeoutSeconds", l.timeoutSeconds)))
		}
	}
	if v := spec.VRRP.AdvertIntervalMilliseconds; v != nil && *v < l.advertIntervalMinimumMS {
		errs = append(errs, field.Invalid(field.NewPath("spec", "vrrp", "advertIntervalMilliseconds"), *v,
			fmt.Sprintf("LoadBalancerClass %s allows no less than %d (limits.minAdvertIntervalMilliseconds): every advert wakes every data-plane node",
				l.class, l.advertIntervalMinimumMS)))
	}
	return errs
}

// Tenancy is what one LoadBalancer takes of its namespace's share of a
// class, for the per-namespace limits.
type Tenancy struct {
	// Key is namespace/name.
	Key     string
	Created time.Time
	// Holds is true once it was applied with virtual IPs (status): it is
	// served before any that was not, whatever the ages, so lowering a
	// limit or a newcomer never takes a running LoadBalancer down.
	Holds bool
	// VirtualIPs it holds or asks for.
	VirtualIPs int32
}

// precedes orders a namespace's LoadBalancers for its share: holders
// first, then the older, then by key, so every reconcile agrees.
func precedes(a, b *Tenancy) bool {
	if a.Holds != b.Holds {
		return a.Holds
	}
	if !a.Created.Equal(b.Created) {
		return a.Created.Before(b.Created)
	}
	return a.Key < b.Key
}

// CheckNamespace tells why self exceeds its namespace's share, or "".
// siblings are the namespace's other LoadBalancers of the class that are
// not refused for their spec (those this limit refuses included). Every
// contender decides over the same set in the same order (holders first,
// then the older): holders are always served, so a lowered limit takes
// nothing away; each other one is served if it fits beside those served
// before it. A large request that does not fit blocks no smaller one
// behind it, and no two can both take the last room.
func (l Limits) CheckNamespace(namespace string, self Tenancy, siblings []Tenancy) string {
	all := slices.DeleteFunc(slices.Clone(siblings), func(t Tenancy) bool { return t.Key == self.Key })
	all = append(all, self)
	slices.SortFunc(all, func(a, b Tenancy) int {
		if precedes(&a, &b) {
			return -1
		}
		if precedes(&b, &a) {
			return 1
		}
		return 0
	})
	served, vips := int32(0), int32(0)
	for _, t := range all {
		fits := t.Holds || (served < l.loadBalancersPerNS && vips+t.VirtualIPs <= l.virtualIPsPerNS)
		if t.Key == self.Key {
			switch {
			case fits:
				return ""
			case served >= l.loadBalancersPerNS:
				return fmt.Sprintf("namespace %s has %d LoadBalancers of LoadBalancerClass %s served before this one, and the class allows %d per namespace (limits.maxLoadBalancersPerNamespace)",
					namespace, served, l.class, l.loadBalancersPerNS)
			default:
				return fmt.Sprintf("namespace %s has %d virtual IPs of LoadBalancerClass %s served before this LoadBalancer, which asks for %d; the class allows %d per namespace (limits.maxVirtualIPsPerNamespace)",
					namespace, vips, l.class, self.VirtualIPs, l.virtualIPsPerNS)
			}
		}
		if fits {
			served++
			vips += t.VirtualIPs
		}
	}
	return ""
}
