package resolve

import (
	"context"
	"fmt"
	"net/netip"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
)

// Lookup resolves a DNS name to its addresses.
type Lookup func(ctx context.Context, host string) ([]netip.Addr, error)

// Admission is a class's verdict on one LoadBalancer's spec: refused
// (Errors), or the spec to render, with the class's defaults and the
// servers it may have, every one by IP address.
type Admission struct {
	// Errors refuse the whole spec: what the tenant wrote asks for more,
	// or another kind of server, than the class allows.
	Errors field.ErrorList
	// Spec is what to render: the class's defaults filled in, servers
	// named by DNS replaced by the address they resolve to, and refused
	// servers left out.
	Spec v1alpha1.LoadBalancerSpec
	// LeftOut names each server left out because the class refuses its
	// address, and why.
	LeftOut []string
	// Unresolved names each server left out because its name does not
	// resolve.
	Unresolved []string
	// Named is true when a server is given by DNS name: what it resolves
	// to must be checked again from time to time.
	Named bool
}

// Admit decides, for the operator and `hakeeper render` alike, what of a
// spec a class lets reach the nodes. HAProxy never resolves a name itself:
// an address a name resolves to is checked as a written one would be, so
// a class that allows names does not allow every address.
func Admit(ctx context.Context, class *v1alpha1.LoadBalancerClass, policy BackendPolicy, spec *v1alpha1.LoadBalancerSpec, lookup Lookup) Admission {
	a := Admission{Errors: append(policy.CheckSpec(spec), LimitsOf(class).CheckSpec(spec)...)}
	if len(a.Errors) > 0 {
		return a
	}
	a.Spec = class.WithClassDefaults(*spec)
	for i := range a.Spec.Backends {
		b := &a.Spec.Backends[i]
		kept := make([]v1alpha1.Server, 0, len(b.Servers))
		for j, s := range b.Servers {
			addr, named, why, err := policy.serverAddress(ctx, s.Address, lookup)
			a.Named = a.Named || named
			switch {
			case err != nil:
				a.Unresolved = append(a.Unresolved, fmt.Sprintf("spec.backends[%d].servers[%d] (%s) left out: %v", i, j, s.Name, err))
				continue
			case why != "":
				a.LeftOut = append(a.LeftOut, fmt.Sprintf("spec.backends[%d].servers[%d].address: %s", i, j, why))
				continue
			}
			s.Address = addr.String()
			kept = append(kept, s)
		}
		b.Servers = kept
	}
	return a
}

// serverAddress is the address a server is rendered with, or why it may
// not be: a written address the policy refuses, or a name that resolves
// to any address the policy refuses (which of them a client gets is not
// for the tenant to choose); err when the name does not resolve.
func (p BackendPolicy) serverAddress(ctx context.Context, address string, lookup Lookup) (addr netip.Addr, named bool, why string, err error) {
	if addr, err := netip.ParseAddr(address); err == nil {
		return addr, false, p.Refuses(addr), nil
	}
	addrs, err := lookup(ctx, address)
	if err == nil && len(addrs) == 0 {
		err = fmt.Errorf("%s resolves to no address", address)
	}
	if err != nil {
		return netip.Addr{}, true, "", err
	}
	for _, a := range addrs {
		if why := p.Refuses(a); why != "" {
			return netip.Addr{}, true, fmt.Sprintf("%s resolves to %s", address, why), nil
		}
	}
	return addrs[0].Unmap(), true, "", nil
}
