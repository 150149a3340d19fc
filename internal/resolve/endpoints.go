package resolve

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/render"
)

// ServicePortName finds the Service port a serviceRef names, by name or
// number, and returns its name: EndpointSlices name their ports after the
// Service's.
func ServicePortName(svc *corev1.Service, ref intstr.IntOrString) (string, bool) {
	for _, p := range svc.Spec.Ports {
		if (ref.Type == intstr.String && p.Name == ref.StrVal) || (ref.Type == intstr.Int && p.Port == ref.IntVal) {
			return p.Name, true
		}
	}
	return "", false
}

// ReadyEndpoints returns the ready endpoints of a Service's EndpointSlices
// for one port, de-duplicated and sorted. Terminating and not-ready
// endpoints are left out; FQDN slices are ignored.
func ReadyEndpoints(slices_ []discoveryv1.EndpointSlice, portName string) []render.Endpoint {
	seen := map[netip.AddrPort]bool{}
	for i := range slices_ {
		s := &slices_[i]
		if s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		port, ok := slicePort(s, portName)
		if !ok {
			continue
		}
		for _, ep := range s.Endpoints {
			if !ready(ep) {
				continue
			}
			for _, a := range ep.Addresses {
				if addr, err := netip.ParseAddr(a); err == nil {
					seen[netip.AddrPortFrom(addr, uint16(port))] = true
				}
			}
		}
	}
	keys := make([]netip.AddrPort, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b netip.AddrPort) int { return a.Compare(b) })
	out := make([]render.Endpoint, len(keys))
	for i, k := range keys {
		out[i] = render.Endpoint{Address: k.Addr().String(), Port: int32(k.Port())}
	}
	return out
}

func slicePort(s *discoveryv1.EndpointSlice, name string) (int32, bool) {
	for _, p := range s.Ports {
		pn := ""
		if p.Name != nil {
			pn = *p.Name
		}
		if pn == name && p.Port != nil && *p.Port > 0 {
			return *p.Port, true
		}
	}
	return 0, false
}

// ready follows the EndpointSlice API: a nil ready condition means ready.
func ready(ep discoveryv1.Endpoint) bool {
	return ep.Conditions.Ready == nil || *ep.Conditions.Ready
}

// SlotKey is how a slot assignment is recorded: "address:port", or "" for an
// empty slot.
func SlotKey(ep render.Endpoint) string {
	if ep.Address == "" {
		return ""
	}
	addr, err := netip.ParseAddr(ep.Address)
	if err != nil {
		return ""
	}
	return netip.AddrPortFrom(addr, uint16(ep.Port)).String()
}

// AssignSlots places endpoints into server slots. An endpoint keeps the
// slot it had (previous lists the slot keys last applied), so adding or
// removing one endpoint changes one server line and HAProxy applies it at
// run time; new endpoints take the lowest free slots.
func AssignSlots(ref *v1alpha1.ServiceReference, endpoints []render.Endpoint, previous []string) []render.Endpoint {
	n := render.SlotCount(ref, len(endpoints))
	out := make([]render.Endpoint, n)
	byKey := make(map[string]render.Endpoint, len(endpoints))
	for _, ep := range endpoints {
		byKey[SlotKey(ep)] = ep
	}
	placed := map[string]bool{}
	for i, key := range previous {
		if ep, ok := byKey[key]; ok && i < n && !placed[key] {
			out[i] = ep
			placed[key] = true
		}
	}
	free := 0
	for _, ep := range endpoints {
		if placed[SlotKey(ep)] {
			continue
		}
		for out[free] != (render.Endpoint{}) {
			free++
		}
		out[free] = ep
	}
	return out
}
