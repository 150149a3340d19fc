package render

import (
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/validation"
)

// filePathRE admits the absolute paths rendering writes into configs.
var filePathRE = regexp.MustCompile(`^/[A-Za-z0-9._/-]+$`)

// Validate checks everything an Input would put into a config file: the
// spec (as the API server does) and the gathered facts. Rendering calls it
// first; callers can call it to report errors without rendering.
func Validate(in *Input) field.ErrorList {
	errs := validation.Spec(&in.Spec)
	errs = append(errs, validation.NodeName(in.Name, field.NewPath("metadata", "name"))...)
	if len(in.Name) > validation.MaxLoadBalancerNameLength {
		errs = append(errs, field.TooLong(field.NewPath("metadata", "name"), in.Name, validation.MaxLoadBalancerNameLength))
	}
	errs = append(errs, validation.Name(in.Namespace, field.NewPath("metadata", "namespace"))...)
	// A bad spec.vrrp.virtualRouterID is reported by validation.Spec already.
	if in.Spec.VRRP.VirtualRouterID == nil && (in.VirtualRouterID < 1 || in.VirtualRouterID > 255) {
		errs = append(errs, field.Invalid(field.NewPath("virtualRouterID"), in.VirtualRouterID, "must be between 1 and 255"))
	}
	errs = append(errs, validateVirtualIPs(in)...)
	if in.Interface != "" {
		errs = append(errs, validation.Interface(in.Interface, field.NewPath("interface"))...)
	}
	errs = append(errs, validateNodes(in)...)
	errs = append(errs, validateEndpoints(in)...)
	errs = append(errs, validateMulticastGroups(in)...)
	p := in.paths()
	for name, dir := range map[string]string{"runDir": p.RunDir, "configDir": p.ConfigDir} {
		if !filePathRE.MatchString(dir) {
			errs = append(errs, field.Invalid(field.NewPath("paths", name), dir, "must be an absolute path of letters, digits, '.', '_', '-' and '/'"))
		}
	}
	return errs
}

// validateMulticastGroups checks the class's blocks as the API server does
// (see v1alpha1.VRRPMulticastGroups): multicast, of their family, with no
// host bits set and room for every router ID.
func validateMulticastGroups(in *Input) field.ErrorList {
	p := field.NewPath("multicastGroups")
	var errs field.ErrorList
	for _, b := range []struct {
		name, value string
		ipv4        bool
	}{{"ipv4", in.MulticastGroups.IPv4, true}, {"ipv6", in.MulticastGroups.IPv6, false}} {
		if b.value == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(b.value)
		switch {
		case err != nil:
			errs = append(errs, field.Invalid(p.Child(b.name), b.value, "must be a network in CIDR notation"))
		case prefix.Addr().Is4() != b.ipv4 || !prefix.Addr().IsMulticast():
			errs = append(errs, field.Invalid(p.Child(b.name), b.value, "must be a multicast block of its family"))
		case prefix.Masked() != prefix || prefix.Addr().BitLen()-prefix.Bits() < 8:
			errs = append(errs, field.Invalid(p.Child(b.name), b.value, "must have no host bits set and at least 8 host bits"))
		}
	}
	return errs
}

func validateNodes(in *Input) field.ErrorList {
	p := field.NewPath("nodes")
	// No node is fine for haproxy.cfg (nothing is selected yet);
	// KeepalivedConfig refuses a node that is not listed.
	pinned := map[string]int32{}
	for _, np := range in.Spec.VRRP.Priorities {
		pinned[np.Node] = np.Priority
	}
	unicast := in.Spec.VRRP.Mode == v1alpha1.VRRPModeUnicast
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, n := range in.Nodes {
		np := p.Index(i)
		errs = append(errs, validation.NodeName(n.Name, np.Child("name"))...)
		if seen[n.Name] {
			errs = append(errs, field.Duplicate(np.Child("name"), n.Name))
		}
		seen[n.Name] = true
		if n.Priority < 1 || n.Priority > 254 {
			errs = append(errs, field.Invalid(np.Child("priority"), n.Priority, "must be between 1 and 254"))
		}
		if want, ok := pinned[n.Name]; ok && want != n.Priority {
			errs = append(errs, field.Invalid(np.Child("priority"), n.Priority, fmt.Sprintf("spec.vrrp.priorities pins %d", want)))
		}
		if n.Interface != "" {
			errs = append(errs, validation.Interface(n.Interface, np.Child("interface"))...)
		}
		if unicast || n.Address != "" {
			errs = append(errs, nodeAddress(in, n.Address, np.Child("address"))...)
		}
		if n.LinkLocal != "" {
			if a, err := netip.ParseAddr(n.LinkLocal); err != nil || !a.Is6() || !a.IsLinkLocalUnicast() || a.Zone() != "" {
				errs = append(errs, field.Invalid(np.Child("linkLocal"), n.LinkLocal, "must be an IPv6 link-local address without a zone"))
			}
		}
	}
	return errs
}

// nodeAddress checks a unicast address: its family must be the one VRRP
// runs on, the family of the first virtual IP.
func nodeAddress(in *Input, s string, p *field.Path) field.ErrorList {
	addr, err := validation.ParseAddress(s)
	if err != nil {
		return field.ErrorList{field.Invalid(p, s, err.Error())}
	}
	if in.Spec.VRRP.Mode == v1alpha1.VRRPModeUnicast && in.IPv4() != addr.Is4() {
		return field.ErrorList{field.Invalid(p, s, "unicast VRRP needs node addresses of the first virtual IP's family")}
	}
	return nil
}

// validateVirtualIPs checks the addresses in use. Whether they may be used
// (pools, node addresses, other LoadBalancers) was decided by
// internal/resolve; here they must only be sound for the config files.
func validateVirtualIPs(in *Input) field.ErrorList {
	p := field.NewPath("virtualIPs")
	if len(in.VirtualIPs) == 0 {
		return field.ErrorList{field.Required(p, "at least one virtual IP is required")}
	}
	var errs field.ErrorList
	seen := map[netip.Addr]bool{}
	for i, vip := range in.VirtualIPs {
		switch {
		case !vip.IsValid() || vip.Addr().Zone() != "":
			errs = append(errs, field.Invalid(p.Index(i), vip.String(), "must be an IP address with a prefix length"))
		case !vip.Addr().IsGlobalUnicast():
			errs = append(errs, field.Invalid(p.Index(i), vip.String(), "must be a unicast address"))
		case seen[vip.Addr()]:
			errs = append(errs, field.Duplicate(p.Index(i), vip.String()))
		}
		seen[vip.Addr()] = true
	}
	return errs
}

func validateEndpoints(in *Input) field.ErrorList {
	p := field.NewPath("endpoints")
	withService := map[string]bool{}
	for _, b := range in.Spec.Backends {
		withService[b.Name] = b.ServiceRef != nil
	}
	var errs field.ErrorList
	for _, backend := range slices.Sorted(maps.Keys(in.Endpoints)) {
		eps := in.Endpoints[backend]
		bp := p.Key(backend)
		if !withService[backend] {
			errs = append(errs, field.Invalid(bp, backend, "endpoints given for a backend without a serviceRef"))
			continue
		}
		for i, ep := range eps {
			if ep == (Endpoint{}) {
				continue // an empty slot
			}
			if _, err := validation.ParseAddress(ep.Address); err != nil {
				errs = append(errs, field.Invalid(bp.Index(i).Child("address"), ep.Address, err.Error()))
			}
			if ep.Port < 1 || ep.Port > 65535 {
				errs = append(errs, field.Invalid(bp.Index(i).Child("port"), ep.Port, "must be between 1 and 65535"))
			}
		}
	}
	return errs
}
