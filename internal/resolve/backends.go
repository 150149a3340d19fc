package resolve

import (
	"fmt"
	"net/netip"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/render"
)

// BackendPolicy is what a class lets servers be. HAProxy runs on the
// host's network, so a server address is reached with the node's own
// reach: loopback ports, cloud metadata (link-local), the nodes, the
// virtual IPs. Those are refused whatever the class says.
type BackendPolicy struct {
	class         string
	staticServers v1alpha1.StaticServers
	allowed       []netip.Prefix
	pools         []Pool
	nodes         map[netip.Addr]string
	maxServers    int32
	maxSlots      int32
	minInterval   int32
}

// NewBackendPolicy reads a class's backend policy and limits.
func NewBackendPolicy(class *v1alpha1.LoadBalancerClass, pools []Pool, nodes map[netip.Addr]string) (BackendPolicy, error) {
	p := BackendPolicy{
		class:         class.Name,
		staticServers: class.Spec.Backends.StaticServers,
		pools:         pools,
		nodes:         nodes,
		maxServers:    v1alpha1.Int32Or(class.Spec.Limits.MaxServersPerBackend, v1alpha1.DefaultMaxServersPerBackend),
		maxSlots:      v1alpha1.Int32Or(class.Spec.Limits.MaxServerSlots, v1alpha1.DefaultMaxServerSlots),
		minInterval:   v1alpha1.Int32Or(class.Spec.Limits.MinHealthCheckIntervalMilliseconds, v1alpha1.DefaultMinHealthCheckIntervalMilliseconds),
	}
	if p.staticServers == "" {
		p.staticServers = v1alpha1.StaticServersIPAddresses
	}
	for _, s := range class.Spec.Backends.AllowedCIDRs {
		prefix, err := netip.ParsePrefix(s)
		if err != nil {
			return BackendPolicy{}, fmt.Errorf("LoadBalancerClass %s: backends.allowedCIDRs: %q is not a network", class.Name, s)
		}
		p.allowed = append(p.allowed, prefix.Masked())
	}
	return p, nil
}

// hostOnly are endpoints clouds serve to every VM at addresses outside
// link-local, reached with the node's identity: no tenant's server may be
// one, whatever the class allows.
var hostOnly = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("168.63.129.16/32"), "Azure's WireServer and host DNS"},
	{netip.MustParsePrefix("100.100.100.200/32"), "Alibaba Cloud's instance metadata"},
	{netip.MustParsePrefix("fd00:ec2::/64"), "AWS's IPv6 instance metadata, DNS and time endpoints"},
}

// Refuses tells why a server may not be at addr, or "".
func (p BackendPolicy) Refuses(addr netip.Addr) string {
	addr = addr.Unmap()
	for _, h := range hostOnly {
		if h.prefix.Contains(addr) {
			return fmt.Sprintf("%s is %s, a host-only endpoint", addr, h.what)
		}
	}
	switch {
	case addr.IsLoopback():
		return fmt.Sprintf("%s is a loopback address: on the host's network it reaches the node itself", addr)
	case addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast():
		return fmt.Sprintf("%s is link-local (cloud metadata services live there)", addr)
	case addr.IsMulticast() || addr.IsUnspecified() || !addr.IsGlobalUnicast():
		return fmt.Sprintf("%s is not a unicast address", addr)
	}
	if node, ok := p.nodes[addr]; ok {
		return fmt.Sprintf("%s is an address of node %s", addr, node)
	}
	if pool, ok := poolOf(p.pools, addr); ok {
		return fmt.Sprintf("%s is in the virtual IP pool %s", addr, pool.Name)
	}
	if len(p.allowed) == 0 {
		return ""
	}
	for _, a := range p.allowed {
		if a.Contains(addr) {
			return ""
		}
	}
	return fmt.Sprintf("%s is outside LoadBalancerClass %s's backends.allowedCIDRs", addr, p.class)
}

// CheckSpec refuses what the class does not allow in a spec: static
// servers of a kind it refuses, more servers or slots per backend than its
// limits, and health checks more frequent than its minimum. Servers at an
// address it refuses are not refused here but left out (Admit): a policy
// tightened after they were applied must take them away.
func (p BackendPolicy) CheckSpec(spec *v1alpha1.LoadBalancerSpec) field.ErrorList {
	var errs field.ErrorList
	for i := range spec.Backends {
		b := &spec.Backends[i]
		bp := field.NewPath("spec", "backends").Index(i)
		total := int32(len(b.Servers))
		if b.ServiceRef != nil {
			slots := v1alpha1.Int32Or(b.ServiceRef.ServerSlots, v1alpha1.DefaultServerSlots)
			if slots > p.maxSlots {
				errs = append(errs, field.Invalid(bp.Child("serviceRef", "serverSlots"), slots,
					fmt.Sprintf("LoadBalancerClass %s allows at most %d", p.class, p.maxSlots)))
			}
			total += slots
		}
		if total > p.maxServers {
			errs = append(errs, field.Invalid(bp.Child("servers"), total,
				fmt.Sprintf("servers plus server slots: LoadBalancerClass %s allows at most %d per backend", p.class, p.maxServers)))
		}
		if hc := b.HealthCheck; hc != nil {
			if iv := v1alpha1.Int32Or(hc.IntervalMilliseconds, v1alpha1.DefaultCheckIntervalMilliseconds); iv < p.minInterval {
				errs = append(errs, field.Invalid(bp.Child("healthCheck", "intervalMilliseconds"), iv,
					fmt.Sprintf("LoadBalancerClass %s allows no less than %d", p.class, p.minInterval)))
			}
		}
		for j, s := range b.Servers {
			sp := bp.Child("servers").Index(j).Child("address")
			_, err := netip.ParseAddr(s.Address)
			switch {
			case p.staticServers == v1alpha1.StaticServersNone:
				errs = append(errs, field.Forbidden(sp, fmt.Sprintf("LoadBalancerClass %s allows no static servers: use a serviceRef", p.class)))
			case err != nil && p.staticServers != v1alpha1.StaticServersIPAddressesAndDNSNames:
				errs = append(errs, field.Forbidden(sp, fmt.Sprintf("%s: LoadBalancerClass %s allows static servers only by IP address", s.Address, p.class)))
			}
		}
	}
	return errs
}

// AdmitEndpoints is what a backend's serviceRef may be rendered with: the
// endpoints the policy allows (FilterEndpoints), cut to the class's limit
// (CapEndpoints), and one message per endpoint, or cut, left out. The
// reconciler and `hakeeper render --class` both call it.
func (p BackendPolicy) AdmitEndpoints(b *v1alpha1.Backend, eps []render.Endpoint) ([]render.Endpoint, []string) {
	kept, leftOut := p.FilterEndpoints(b.Name, eps)
	kept, cut := p.CapEndpoints(b, kept)
	if cut != "" {
		leftOut = append(leftOut, cut)
	}
	return kept, leftOut
}

// FilterEndpoints leaves out endpoints the policy refuses (a Service's
// EndpointSlices are written by whoever may write them in the namespace,
// and can point anywhere). It returns one message per endpoint left out.
func (p BackendPolicy) FilterEndpoints(backend string, eps []render.Endpoint) ([]render.Endpoint, []string) {
	var dropped []string
	out := make([]render.Endpoint, 0, len(eps))
	for _, ep := range eps {
		addr, err := netip.ParseAddr(ep.Address)
		if err != nil {
			dropped = append(dropped, fmt.Sprintf("backend %s: endpoint %q is not an IP address", backend, ep.Address))
			continue
		}
		if why := p.Refuses(addr); why != "" {
			dropped = append(dropped, fmt.Sprintf("backend %s: endpoint left out: %s", backend, why))
			continue
		}
		out = append(out, ep)
	}
	return out, dropped
}

// CapEndpoints keeps at most as many endpoints as the class's
// maxServersPerBackend leaves after the backend's static servers: a
// Service's EndpointSlices, which the tenant may write, cannot make every
// node check thousands of servers. It returns a message when it cut.
func (p BackendPolicy) CapEndpoints(b *v1alpha1.Backend, eps []render.Endpoint) ([]render.Endpoint, string) {
	room := max(int(p.maxServers)-len(b.Servers), 0)
	if len(eps) <= room {
		return eps, ""
	}
	return eps[:room], fmt.Sprintf("backend %s: %d of %d endpoints left out: LoadBalancerClass %s allows %d servers per backend",
		b.Name, len(eps)-room, len(eps), p.class, p.maxServers)
}
