// Package servicelb translates a Service of type LoadBalancer into the
// LoadBalancer that serves it, and that LoadBalancer's status back into
// the Service's. It is pure: the controller reads and writes.
package servicelb

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
)

// ClassPrefix starts the spec.loadBalancerClass of the Services hakeeper
// serves: hakeeper.io/<LoadBalancerClass>.
const ClassPrefix = "hakeeper.io/"

// AnnotationLoadBalancerIPs asks for the Service's addresses: a comma
// list, one per family for dual-stack.
const AnnotationLoadBalancerIPs = "hakeeper.io/load-balancer-ips"

// AnnotationProxyProtocol opens every connection to the Service's pods
// with a PROXY protocol header, "v1" or "v2", so they see the client's
// address (what externalTrafficPolicy Local is for): HAProxy is a full
// proxy and otherwise connects from its own address.
const AnnotationProxyProtocol = "hakeeper.io/proxy-protocol"

// ClassName is the LoadBalancerClass that serves a Service, or "" when
// hakeeper leaves it alone: not of type LoadBalancer, of another
// implementation's class, or without a class while no default is named
// (two default implementations would fight over it).
func ClassName(svc *corev1.Service, defaultClass string) string {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return ""
	}
	if c := svc.Spec.LoadBalancerClass; c != nil {
		if name, ok := strings.CutPrefix(*c, ClassPrefix); ok {
			return name
		}
		return ""
	}
	return defaultClass
}

// PortError is a Service port HAProxy cannot serve, and why.
type PortError struct {
	Port     int32
	Protocol corev1.Protocol
	Message  string
}

// ErrorProtocolNotProxied is status.loadBalancer.ingress[].ports[].error
// of a port HAProxy cannot proxy (the API asks for a CamelCase value,
// prefixed by the implementation's domain).
const ErrorProtocolNotProxied = "hakeeper.io/ProtocolNotProxied"

// Translation is the LoadBalancer spec a Service asks for, and what of
// the Service it cannot honour.
type Translation struct {
	Spec v1alpha1.LoadBalancerSpec
	// Unserved are the ports left out (UDP, SCTP).
	Unserved []PortError
	// Warnings say what is served differently from what the Service says.
	Warnings []string
}

// Translate maps a Service onto a LoadBalancer of class: each TCP port
// becomes a TCP listener on the virtual IPs whose backend is that port's
// endpoints (serviceRef, so pods come and go through HAProxy's runtime
// API); requested addresses come from the annotation or the deprecated
// spec.loadBalancerIP; families from ipFamilies and ipFamilyPolicy;
// loadBalancerSourceRanges as every listener's allowedSourceRanges. It
// fails for what cannot be served at all.
func Translate(svc *corev1.Service, class string) (Translation, error) {
	var t Translation
	t.Spec.ClassName = class
	ips, err := requestedIPs(svc)
	if err != nil {
		return t, err
	}
	t.Spec.VirtualIPs = ips
	if len(ips) == 0 {
		t.Spec.IPFamilies = families(svc)
	}
	sendProxy, err := proxyProtocol(svc)
	if err != nil {
		return t, err
	}
	balance := v1alpha1.BalanceRoundRobin
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		balance = v1alpha1.BalanceSource
	}
	for _, p := range svc.Spec.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		if proto != corev1.ProtocolTCP {
			t.Unserved = append(t.Unserved, PortError{Port: p.Port, Protocol: proto,
				Message: fmt.Sprintf("port %d/%s is not served: HAProxy proxies TCP only", p.Port, proto)})
			continue
		}
		name := PortName(p)
		t.Spec.Listeners = append(t.Spec.Listeners, v1alpha1.Listener{Name: name, Port: p.Port, Protocol: v1alpha1.ProtocolTCP, DefaultBackend: name,
			AllowedSourceRanges: slices.Clone(svc.Spec.LoadBalancerSourceRanges)})
		// Each pod is checked by a connection, as a TCP load balancer
		// checks its targets: one that stops accepting gets no new
		// connections until it accepts again.
		t.Spec.Backends = append(t.Spec.Backends, v1alpha1.Backend{Name: name, Balance: balance,
			HealthCheck:       &v1alpha1.HealthCheck{Type: v1alpha1.HealthCheckTCP},
			SendProxyProtocol: sendProxy,
			ServiceRef:        &v1alpha1.ServiceReference{Name: svc.Name, Port: intstr.FromInt32(p.Port)}})
	}
	if len(t.Spec.Listeners) == 0 {
		return t, fmt.Errorf("Service %s/%s has no TCP port: HAProxy proxies TCP only", svc.Namespace, svc.Name)
	}
	if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal && sendProxy == "" {
		t.Warnings = append(t.Warnings, fmt.Sprintf("externalTrafficPolicy Local is not honoured: HAProxy is a full proxy and connects to the pods from its own address; "+
			"annotate the Service %s=v2 to pass the client's address in a PROXY protocol header the pods must expect", AnnotationProxyProtocol))
	}
	return t, nil
}

// PortName names a port's listener and backend: the port's own name, or
// tcp-<port> for an unnamed one.
func PortName(p corev1.ServicePort) string {
	if p.Name != "" {
		return p.Name
	}
	return "tcp-" + strconv.Itoa(int(p.Port))
}

// proxyProtocol is the PROXY protocol version the annotation asks for.
func proxyProtocol(svc *corev1.Service) (v1alpha1.ProxyProtocolVersion, error) {
	v, ok := svc.Annotations[AnnotationProxyProtocol]
	if !ok {
		return "", nil
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "v1":
		return v1alpha1.ProxyProtocolV1, nil
	case "v2":
		return v1alpha1.ProxyProtocolV2, nil
	}
	return "", fmt.Errorf("%s: %q is neither v1 nor v2", AnnotationProxyProtocol, v)
}

func requestedIPs(svc *corev1.Service) ([]string, error) {
	annotation, hasAnnotation := svc.Annotations[AnnotationLoadBalancerIPs]
	legacy := svc.Spec.LoadBalancerIP // deprecated, and still what many charts set
	if hasAnnotation && legacy != "" {
		return nil, fmt.Errorf("both the annotation %s and spec.loadBalancerIP are set: use the annotation", AnnotationLoadBalancerIPs)
	}
	raw := []string{legacy}
	if hasAnnotation {
		raw = strings.Split(annotation, ",")
	}
	var out []string
	for _, r := range raw {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		addr, err := netip.ParseAddr(r)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not an IP address", AnnotationLoadBalancerIPs, r)
		}
		if s := addr.String(); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// families are the address families to allocate: the Service's first, or
// both when it requires dual-stack. PreferDualStack takes what the pools
// give (the first family; the second when a later release allocates it
// best-effort).
func families(svc *corev1.Service) []corev1.IPFamily {
	if len(svc.Spec.IPFamilies) == 0 {
		return nil
	}
	if p := svc.Spec.IPFamilyPolicy; p != nil && *p == corev1.IPFamilyPolicyRequireDualStack {
		return slices.Clone(svc.Spec.IPFamilies)
	}
	return svc.Spec.IPFamilies[:1:1]
}

// Ingress is what the Service's status.loadBalancer says: each virtual IP
// once a node holds it, with ipMode Proxy (with VIP, kube-proxy would
// capture the traffic on every node and HAProxy never see it), and the
// ports that are not served.
func Ingress(lb *v1alpha1.LoadBalancer, unserved []PortError, ports []corev1.ServicePort) []corev1.LoadBalancerIngress {
	if lb == nil || lb.Status.ActiveNode == "" || len(lb.Status.VirtualIPs) == 0 {
		return nil
	}
	proxy := corev1.LoadBalancerIPModeProxy
	var out []corev1.LoadBalancerIngress
	for _, v := range lb.Status.VirtualIPs {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			continue
		}
		in := corev1.LoadBalancerIngress{IP: p.Addr().String(), IPMode: &proxy}
		for _, sp := range ports {
			st := corev1.PortStatus{Port: sp.Port, Protocol: sp.Protocol}
			if st.Protocol == "" {
				st.Protocol = corev1.ProtocolTCP
			}
			for _, u := range unserved {
				if u.Port == sp.Port && u.Protocol == st.Protocol {
					e := ErrorProtocolNotProxied
					st.Error = &e
				}
			}
			in.Ports = append(in.Ports, st)
		}
		out = append(out, in)
	}
	return out
}
