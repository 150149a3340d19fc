package validation

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
)

// Spec checks a LoadBalancerSpec against every rule of the CRD (patterns,
// bounds, enums, CEL rules) plus the few the schema cannot express. The
// errors name fields from "spec".
func Spec(spec *v1alpha1.LoadBalancerSpec) field.ErrorList {
	p := field.NewPath("spec")
	var errs field.ErrorList
	if spec.ClassName != "" {
		errs = append(errs, pattern(spec.ClassName, subdomainRE, maxSubdomainLength, p.Child("className"))...)
	}
	errs = append(errs, virtualIPs(spec.VirtualIPs, p.Child("virtualIPs"))...)
	errs = append(errs, ipFamilies(spec, p.Child("ipFamilies"))...)
	errs = append(errs, vrrp(&spec.VRRP, p.Child("vrrp"))...)
	errs = append(errs, listeners(spec, p.Child("listeners"))...)
	errs = append(errs, backends(spec, p.Child("backends"))...)
	errs = append(errs, haproxy(&spec.HAProxy, p.Child("haproxy"))...)
	return errs
}

// ParseAddress parses a plain IP address without a zone.
func ParseAddress(s string) (netip.Addr, error) {
	addr, err := netip.ParseAddr(s)
	if err != nil || addr.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("must be an IP address")
	}
	return addr, nil
}

// Unicast parses an address a LoadBalancer may use as a virtual IP or a
// server: canonical, and not loopback, link-local, multicast, broadcast or
// unspecified (netip's IsGlobalUnicast, as the API's CEL ip library).
func Unicast(s string) (netip.Addr, error) {
	addr, err := ParseAddress(s)
	switch {
	case err != nil:
		return netip.Addr{}, err
	case addr.String() != s:
		return netip.Addr{}, fmt.Errorf("must be in canonical form: %s", addr)
	case !addr.IsGlobalUnicast():
		return netip.Addr{}, fmt.Errorf("must be a unicast address, not loopback, link-local, multicast, broadcast or unspecified")
	}
	return addr, nil
}

func virtualIPs(vips []string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(vips) > maxVirtualIPs {
		errs = append(errs, field.TooMany(p, len(vips), maxVirtualIPs))
	}
	seen := map[netip.Addr]bool{}
	for i, s := range vips {
		addr, err := Unicast(s)
		if err != nil {
			errs = append(errs, field.Invalid(p.Index(i), s, err.Error()))
			continue
		}
		if seen[addr] {
			errs = append(errs, field.Duplicate(p.Index(i), s))
		}
		seen[addr] = true
	}
	return errs
}

func ipFamilies(spec *v1alpha1.LoadBalancerSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(spec.IPFamilies) > 2 {
		errs = append(errs, field.TooMany(p, len(spec.IPFamilies), 2))
	}
	seen := map[string]bool{}
	for i, f := range spec.IPFamilies {
		errs = append(errs, enum(string(f), p.Index(i), "IPv4", "IPv6")...)
		if seen[string(f)] {
			errs = append(errs, field.Duplicate(p.Index(i), f))
		}
		seen[string(f)] = true
	}
	if len(spec.IPFamilies) > 0 && len(spec.VirtualIPs) > 0 {
		errs = append(errs, field.Forbidden(p, "ipFamilies applies only to allocated addresses: leave it out when virtualIPs are given"))
	}
	return errs
}

// Interface checks a network interface name.
func Interface(name string, p *field.Path) field.ErrorList {
	return pattern(name, interfaceRE, maxInterfaceLength, p)
}

// NodeName checks a Node name.
func NodeName(name string, p *field.Path) field.ErrorList {
	return pattern(name, subdomainRE, maxSubdomainLength, p)
}

// Name checks a listener, backend or server name.
func Name(name string, p *field.Path) field.ErrorList {
	return pattern(name, nameRE, maxNameLength, p)
}

func pattern(s string, re *regexp.Regexp, maxLen int, p *field.Path) field.ErrorList {
	if s == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	if len(s) > maxLen {
		return field.ErrorList{field.TooLong(p, s, maxLen)}
	}
	if !re.MatchString(s) {
		return field.ErrorList{field.Invalid(p, s, "must match "+re.String())}
	}
	return nil
}

func int32Range(v *int32, lo, hi int32, p *field.Path) field.ErrorList {
	if v == nil || (*v >= lo && *v <= hi) {
		return nil
	}
	return field.ErrorList{field.Invalid(p, *v, fmt.Sprintf("must be between %d and %d", lo, hi))}
}

func vrrp(v *v1alpha1.VRRPSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, int32Range(v.VirtualRouterID, 1, 255, p.Child("virtualRouterID"))...)
	version := v1alpha1.Int32Or(v.Version, v1alpha1.DefaultVRRPVersion)
	if version != 2 && version != 3 {
		errs = append(errs, field.NotSupported(p.Child("version"), version, []string{"2", "3"}))
	}
	advertPath := p.Child("advertIntervalMilliseconds")
	errs = append(errs, int32Range(v.AdvertIntervalMilliseconds, 10, 40950, advertPath)...)
	if a := v.AdvertIntervalMilliseconds; a != nil && *a%10 != 0 {
		errs = append(errs, field.Invalid(advertPath, *a, "must be a multiple of 10 (VRRPv3 counts centiseconds)"))
	}
	if version == 2 {
		if a := v.AdvertIntervalMilliseconds; a == nil || *a%1000 != 0 {
			errs = append(errs, field.Invalid(advertPath, v1alpha1.Int32Or(a, v1alpha1.DefaultAdvertIntervalMilliseconds),
				"VRRP version 2 needs an advertIntervalMilliseconds that is a whole number of seconds"))
		}
	}
	errs = append(errs, enum(string(v.Mode), p.Child("mode"), v1alpha1.VRRPModeMulticast, v1alpha1.VRRPModeUnicast)...)
	errs = append(errs, enum(string(v.Preemption), p.Child("preemption"), v1alpha1.PreemptionEnabled, v1alpha1.PreemptionDisabled)...)
	errs = append(errs, int32Range(v.PreemptDelaySeconds, 0, 1000, p.Child("preemptDelaySeconds"))...)
	if v.PreemptDelaySeconds != nil && v.Preemption == v1alpha1.PreemptionDisabled {
		errs = append(errs, field.Invalid(p.Child("preemptDelaySeconds"), *v.PreemptDelaySeconds, "preemptDelaySeconds needs preemption Enabled"))
	}
	errs = append(errs, priorities(v.Priorities, p.Child("priorities"))...)
	return errs
}

func priorities(list []v1alpha1.NodePriority, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(list) > maxPriorities {
		errs = append(errs, field.TooMany(p, len(list), maxPriorities))
	}
	seen := map[string]bool{}
	for i, np := range list {
		ip := p.Index(i)
		errs = append(errs, NodeName(np.Node, ip.Child("node"))...)
		if seen[np.Node] {
			errs = append(errs, field.Duplicate(ip.Child("node"), np.Node))
		}
		seen[np.Node] = true
		prio := np.Priority
		errs = append(errs, int32Range(&prio, 1, 254, ip.Child("priority"))...)
	}
	return errs
}

// enum accepts the empty string (the default) or one of the values.
func enum[T ~string](v string, p *field.Path, values ...T) field.ErrorList {
	if v == "" {
		return nil
	}
	allowed := make([]string, len(values))
	for i, value := range values {
		if v == string(value) {
			return nil
		}
		allowed[i] = string(value)
	}
	return field.ErrorList{field.NotSupported(p, v, allowed)}
}

func backendNames(spec *v1alpha1.LoadBalancerSpec) map[string]bool {
	names := make(map[string]bool, len(spec.Backends))
	for _, b := range spec.Backends {
		names[b.Name] = true
	}
	return names
}

func listeners(spec *v1alpha1.LoadBalancerSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case len(spec.Listeners) == 0:
		errs = append(errs, field.Required(p, "at least one listener is required"))
	case len(spec.Listeners) > maxListeners:
		errs = append(errs, field.TooMany(p, len(spec.Listeners), maxListeners))
	}
	known := backendNames(spec)
	names := map[string]bool{}
	ports := map[int32]bool{}
	for i := range spec.Listeners {
		l := &spec.Listeners[i]
		lp := p.Index(i)
		errs = append(errs, Name(l.Name, lp.Child("name"))...)
		if names[l.Name] {
			errs = append(errs, field.Duplicate(lp.Child("name"), l.Name))
		}
		names[l.Name] = true
		port := l.Port
		errs = append(errs, int32Range(&port, 1, 65535, lp.Child("port"))...)
		if ports[l.Port] {
			errs = append(errs, field.Duplicate(lp.Child("port"), l.Port))
		}
		ports[l.Port] = true
		errs = append(errs, listener(l, known, lp)...)
	}
	return errs
}

func listener(l *v1alpha1.Listener, known map[string]bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if l.Protocol == "" {
		errs = append(errs, field.Required(p.Child("protocol"), "HTTP or TCP"))
	}
	errs = append(errs, enum(string(l.Protocol), p.Child("protocol"), v1alpha1.ProtocolHTTP, v1alpha1.ProtocolTCP)...)
	if l.DefaultBackend != "" {
		errs = append(errs, backendRef(l.DefaultBackend, known, p.Child("defaultBackend"))...)
	}
	if len(l.AllowedSourceRanges) > maxSourceRanges {
		errs = append(errs, field.TooMany(p.Child("allowedSourceRanges"), len(l.AllowedSourceRanges), maxSourceRanges))
	}
	for j, r := range l.AllowedSourceRanges {
		if _, err := netip.ParsePrefix(r); err != nil {
			errs = append(errs, field.Invalid(p.Child("allowedSourceRanges").Index(j), r, "must be a network in CIDR notation, for example 203.0.113.0/24"))
		}
	}
	if l.Protocol == v1alpha1.ProtocolTCP {
		if len(l.Routes) > 0 {
			errs = append(errs, field.Forbidden(p.Child("routes"), "routes need protocol HTTP"))
		}
		if l.DefaultBackend == "" {
			errs = append(errs, field.Required(p.Child("defaultBackend"), "a TCP listener needs a defaultBackend"))
		}
	}
	if l.DefaultBackend == "" && len(l.Routes) == 0 && l.Protocol != v1alpha1.ProtocolTCP {
		errs = append(errs, field.Required(p.Child("defaultBackend"), "a listener needs a defaultBackend or at least one route"))
	}
	if len(l.Routes) > maxRoutes {
		errs = append(errs, field.TooMany(p.Child("routes"), len(l.Routes), maxRoutes))
	}
	for i, r := range l.Routes {
		errs = append(errs, route(r, known, p.Child("routes").Index(i))...)
	}
	if l.TLS != nil {
		errs = append(errs, pattern(l.TLS.SecretRef.Name, subdomainRE, maxSubdomainLength, p.Child("tls", "secretRef", "name"))...)
		errs = append(errs, enum(string(l.TLS.MinVersion), p.Child("tls", "minVersion"), v1alpha1.TLSVersion12, v1alpha1.TLSVersion13)...)
	}
	bp := p.Child("bind")
	errs = append(errs, enum(string(l.Bind.ProxyProtocol), bp.Child("proxyProtocol"), v1alpha1.ProxyProtocolDisabled, v1alpha1.ProxyProtocolAccept)...)
	errs = append(errs, int32Range(l.Bind.MaxConnections, 1, 1000000, bp.Child("maxConnections"))...)
	return errs
}

func backendRef(name string, known map[string]bool, p *field.Path) field.ErrorList {
	if errs := Name(name, p); len(errs) > 0 {
		return errs
	}
	if !known[name] {
		return field.ErrorList{field.NotFound(p, name)}
	}
	return nil
}

func route(r v1alpha1.Route, known map[string]bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if r.Host == "" && r.PathPrefix == "" {
		errs = append(errs, field.Required(p, "a route needs a host or a pathPrefix"))
	}
	if r.Host != "" {
		errs = append(errs, pattern(r.Host, hostRE, maxSubdomainLength, p.Child("host"))...)
	}
	if r.PathPrefix != "" {
		errs = append(errs, pattern(r.PathPrefix, pathPrefixRE, maxPathLength, p.Child("pathPrefix"))...)
	}
	errs = append(errs, backendRef(r.Backend, known, p.Child("backend"))...)
	return errs
}

// backendProtocols tells which listener protocols send traffic to each
// backend. HAProxy needs one mode per backend.
func backendProtocols(spec *v1alpha1.LoadBalancerSpec) map[string]map[v1alpha1.Protocol]bool {
	used := map[string]map[v1alpha1.Protocol]bool{}
	mark := func(backend string, proto v1alpha1.Protocol) {
		if used[backend] == nil {
			used[backend] = map[v1alpha1.Protocol]bool{}
		}
		used[backend][proto] = true
	}
	for _, l := range spec.Listeners {
		if l.DefaultBackend != "" {
			mark(l.DefaultBackend, l.Protocol)
		}
		for _, r := range l.Routes {
			mark(r.Backend, l.Protocol)
		}
	}
	return used
}

func backends(spec *v1alpha1.LoadBalancerSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case len(spec.Backends) == 0:
		errs = append(errs, field.Required(p, "at least one backend is required"))
	case len(spec.Backends) > maxBackends:
		errs = append(errs, field.TooMany(p, len(spec.Backends), maxBackends))
	}
	protocols := backendProtocols(spec)
	names := map[string]bool{}
	for i := range spec.Backends {
		b := &spec.Backends[i]
		bp := p.Index(i)
		errs = append(errs, Name(b.Name, bp.Child("name"))...)
		if names[b.Name] {
			errs = append(errs, field.Duplicate(bp.Child("name"), b.Name))
		}
		names[b.Name] = true
		errs = append(errs, backend(b, protocols[b.Name], bp)...)
	}
	return errs
}

func backend(b *v1alpha1.Backend, protocols map[v1alpha1.Protocol]bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if protocols[v1alpha1.ProtocolHTTP] && protocols[v1alpha1.ProtocolTCP] {
		errs = append(errs, field.Invalid(p.Child("name"), b.Name, "a backend cannot serve both HTTP and TCP listeners"))
	}
	servesTCP := protocols[v1alpha1.ProtocolTCP]
	errs = append(errs, enum(string(b.Balance), p.Child("balance"), v1alpha1.BalanceRoundRobin, v1alpha1.BalanceLeastConn,
		v1alpha1.BalanceSource, v1alpha1.BalanceURI, v1alpha1.BalanceHeader)...)
	if servesTCP && (b.Balance == v1alpha1.BalanceURI || b.Balance == v1alpha1.BalanceHeader) {
		errs = append(errs, field.Invalid(p.Child("balance"), b.Balance, "URI and Header balancing need HTTP listeners"))
	}
	if (b.HashHeader != "") != (b.Balance == v1alpha1.BalanceHeader) {
		errs = append(errs, field.Invalid(p.Child("hashHeader"), b.HashHeader, "hashHeader is required with balance Header and not allowed otherwise"))
	} else if b.HashHeader != "" {
		errs = append(errs, pattern(b.HashHeader, headerRE, maxHeaderLength, p.Child("hashHeader"))...)
	}
	if b.StickyCookie != nil {
		if servesTCP {
			errs = append(errs, field.Forbidden(p.Child("stickyCookie"), "a backend used by a TCP listener cannot have a stickyCookie"))
		}
		errs = append(errs, pattern(b.StickyCookie.Name, cookieRE, maxCookieLength, p.Child("stickyCookie", "name"))...)
	}
	if b.HealthCheck != nil {
		errs = append(errs, healthCheck(b.HealthCheck, p.Child("healthCheck"))...)
	}
	if len(b.Servers) == 0 && b.ServiceRef == nil {
		errs = append(errs, field.Required(p.Child("servers"), "a backend needs servers or a serviceRef"))
	}
	errs = append(errs, servers(b.Servers, p.Child("servers"))...)
	if b.ServiceRef != nil {
		errs = append(errs, serviceRef(b.ServiceRef, p.Child("serviceRef"))...)
	}
	return errs
}

func healthCheck(hc *v1alpha1.HealthCheck, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if hc.Type == "" {
		errs = append(errs, field.Required(p.Child("type"), "HTTP or TCP"))
	}
	errs = append(errs, enum(string(hc.Type), p.Child("type"), v1alpha1.HealthCheckHTTP, v1alpha1.HealthCheckTCP)...)
	if hc.Type == v1alpha1.HealthCheckTCP && (hc.Path != "" || hc.Host != "" || hc.ExpectStatus != nil) {
		errs = append(errs, field.Forbidden(p, "path, host and expectStatus need type HTTP"))
	}
	if hc.Path != "" {
		errs = append(errs, pattern(hc.Path, checkPathRE, maxPathLength, p.Child("path"))...)
	}
	if hc.Host != "" {
		errs = append(errs, pattern(hc.Host, subdomainRE, maxSubdomainLength, p.Child("host"))...)
	}
	errs = append(errs, int32Range(hc.ExpectStatus, 100, 599, p.Child("expectStatus"))...)
	errs = append(errs, int32Range(hc.Port, 1, 65535, p.Child("port"))...)
	errs = append(errs, int32Range(hc.IntervalMilliseconds, 100, 3600000, p.Child("intervalMilliseconds"))...)
	errs = append(errs, int32Range(hc.TimeoutMilliseconds, 10, 3600000, p.Child("timeoutMilliseconds"))...)
	errs = append(errs, int32Range(hc.Rise, 1, 100, p.Child("rise"))...)
	errs = append(errs, int32Range(hc.Fall, 1, 100, p.Child("fall"))...)
	interval := v1alpha1.Int32Or(hc.IntervalMilliseconds, v1alpha1.DefaultCheckIntervalMilliseconds)
	if hc.TimeoutMilliseconds != nil && *hc.TimeoutMilliseconds > interval {
		errs = append(errs, field.Invalid(p.Child("timeoutMilliseconds"), *hc.TimeoutMilliseconds, "timeoutMilliseconds must not exceed intervalMilliseconds"))
	}
	return errs
}

func servers(list []v1alpha1.Server, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(list) > maxServersPerBackend {
		errs = append(errs, field.TooMany(p, len(list), maxServersPerBackend))
	}
	names := map[string]bool{}
	for i, s := range list {
		sp := p.Index(i)
		errs = append(errs, Name(s.Name, sp.Child("name"))...)
		if names[s.Name] {
			errs = append(errs, field.Duplicate(sp.Child("name"), s.Name))
		}
		names[s.Name] = true
		errs = append(errs, ServerAddress(s.Address, sp.Child("address"))...)
		port := s.Port
		errs = append(errs, int32Range(&port, 1, 65535, sp.Child("port"))...)
		errs = append(errs, int32Range(s.Weight, 0, 256, sp.Child("weight"))...)
	}
	return errs
}

// ServerAddress checks a server address: a unicast IP address, or a
// lower-case DNS name other than localhost.
func ServerAddress(s string, p *field.Path) field.ErrorList {
	const msg = "must be a unicast IP address (not loopback, link-local, multicast, broadcast or unspecified) or a lower-case DNS name other than localhost"
	if addr, err := netip.ParseAddr(s); err == nil {
		if addr.Zone() == "" && addr.IsGlobalUnicast() {
			return nil
		}
		return field.ErrorList{field.Invalid(p, s, msg)}
	}
	if s != "" && len(s) <= maxSubdomainLength && subdomainRE.MatchString(s) && s != "localhost" && !strings.HasSuffix(s, ".localhost") {
		return nil
	}
	return field.ErrorList{field.Invalid(p, s, msg)}
}

func serviceRef(ref *v1alpha1.ServiceReference, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, pattern(ref.Name, serviceNameRE, maxNameLength, p.Child("name"))...)
	switch ref.Port.Type {
	case intstr.Int:
		port := ref.Port.IntVal
		errs = append(errs, int32Range(&port, 1, 65535, p.Child("port"))...)
	default:
		errs = append(errs, pattern(ref.Port.StrVal, nameRE, 15, p.Child("port"))...)
	}
	errs = append(errs, int32Range(ref.Weight, 0, 256, p.Child("weight"))...)
	errs = append(errs, int32Range(ref.ServerSlots, 1, 1024, p.Child("serverSlots"))...)
	return errs
}

func haproxy(h *v1alpha1.HAProxySpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, int32Range(h.MaxConnections, 1, 1000000, p.Child("maxConnections"))...)
	errs = append(errs, int32Range(h.Threads, 1, 64, p.Child("threads"))...)
	tp := p.Child("timeouts")
	t := &h.Timeouts
	errs = append(errs, int32Range(t.ConnectMilliseconds, 1, 3600000, tp.Child("connectMilliseconds"))...)
	errs = append(errs, int32Range(t.ClientSeconds, 1, 86400, tp.Child("clientSeconds"))...)
	errs = append(errs, int32Range(t.ServerSeconds, 1, 86400, tp.Child("serverSeconds"))...)
	errs = append(errs, int32Range(t.HTTPRequestSeconds, 1, 3600, tp.Child("httpRequestSeconds"))...)
	errs = append(errs, int32Range(t.TunnelSeconds, 1, 86400, tp.Child("tunnelSeconds"))...)
	errs = append(errs, int32Range(t.HardStopAfterSeconds, 1, 86400, tp.Child("hardStopAfterSeconds"))...)
	return errs
}
