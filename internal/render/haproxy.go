package render

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/validation"
)

// haproxyModel is what templates/haproxy.cfg.tmpl prints: every value is
// decided here, the template only lays it out.
type haproxyModel struct {
	Name, Namespace string
	Paths           contract.Paths
	WorkerUID       int
	WorkerGID       int
	Chroot          string
	MaxConnections  int32
	Threads         int32
	Timeouts        timeouts
	// HealthPort and MonitorPath: the kubelet's liveness probe, answered
	// by HAProxy on the loopback (0: none).
	HealthPort  int32
	MonitorPath string
	Frontends   []frontend
	Backends    []backend
}

type timeouts struct {
	ConnectMilliseconds, ClientSeconds, ServerSeconds int32
	HTTPRequestSeconds, TunnelSeconds, HardStopAfter  int32
}

type frontend struct {
	Name           string
	Mode           string
	Binds          []string
	BindOptions    []string
	MaxConnections int32
	TLS            bool
	// SourceRanges are the only client networks accepted; SourceAfterProxy
	// checks them once the PROXY header has named the client.
	SourceRanges     []string
	SourceAfterProxy bool
	Routes           []routeRule
	DefaultBackend   string
}

type routeRule struct {
	Backend    string
	Host       string
	HostSuffix bool
	PathPrefix string
}

type backend struct {
	Name           string
	Mode           string
	Balance        string
	HashConsistent bool
	Cookie         string
	Check          *check
	// SendProxy is the server option that sends a PROXY header, if any.
	SendProxy string
	Servers   []server
}

type check struct {
	HTTP                  bool
	Method, Path, Version string
	Host                  string
	ExpectStatus          int32
	IntervalMs, TimeoutMs int32
	Rise, Fall, Port      int32
}

type server struct {
	Name     string
	Address  string
	Weight   int32
	Backup   bool
	Disabled bool
	Cookie   string
	// runtime holds the server as the runtime API changes it, when it is
	// given by IP address (DNS names are resolved only at start).
	runtime *contract.Server
}

// HAProxyConfig renders haproxy.cfg, the same on every node.
func HAProxyConfig(in Input) ([]byte, error) {
	if errs := Validate(&in); len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	return execute("haproxy.cfg.tmpl", newHAProxyModel(&in))
}

// HAProxyConfigAndServers renders haproxy.cfg and describes its servers as
// data for the agent, from one validation and one model: the servers given
// by IP address, and the hash of the config rendered with those servers'
// address, weight and state left out (the skeleton).
func HAProxyConfigAndServers(in Input) ([]byte, contract.ServerSet, error) {
	if errs := Validate(&in); len(errs) > 0 {
		return nil, contract.ServerSet{}, errs.ToAggregate()
	}
	m := newHAProxyModel(&in)
	cfg, err := execute("haproxy.cfg.tmpl", m)
	if err != nil {
		return nil, contract.ServerSet{}, err
	}
	set := contract.ServerSet{Backends: map[string][]contract.Server{}}
	for i := range m.Backends {
		b := &m.Backends[i]
		servers := []contract.Server{}
		for j := range b.Servers {
			sv := &b.Servers[j]
			if sv.runtime == nil {
				continue
			}
			servers = append(servers, *sv.runtime)
			sv.Address, sv.Weight, sv.Disabled = placeholderAddress, 0, false
		}
		set.Backends[b.Name] = servers
	}
	skeleton, err := execute("haproxy.cfg.tmpl", m)
	if err != nil {
		return nil, contract.ServerSet{}, err
	}
	sum := sha256.Sum256(skeleton)
	set.Skeleton = hex.EncodeToString(sum[:8])
	return cfg, set, nil
}

func newHAProxyModel(in *Input) haproxyModel {
	spec := &in.Spec
	t := spec.HAProxy.Timeouts
	m := haproxyModel{
		Name:           in.Name,
		Namespace:      in.Namespace,
		Paths:          in.paths(),
		WorkerUID:      contract.HAProxyWorkerUID,
		WorkerGID:      contract.HAProxyWorkerGID,
		Chroot:         contract.HAProxyChroot,
		MaxConnections: v1alpha1.Int32Or(spec.HAProxy.MaxConnections, v1alpha1.DefaultMaxConnections),
		Threads:        v1alpha1.Int32Or(spec.HAProxy.Threads, 0),
		Timeouts: timeouts{
			ConnectMilliseconds: v1alpha1.Int32Or(t.ConnectMilliseconds, v1alpha1.DefaultConnectMilliseconds),
			ClientSeconds:       v1alpha1.Int32Or(t.ClientSeconds, v1alpha1.DefaultClientSeconds),
			ServerSeconds:       v1alpha1.Int32Or(t.ServerSeconds, v1alpha1.DefaultServerSeconds),
			HTTPRequestSeconds:  v1alpha1.Int32Or(t.HTTPRequestSeconds, v1alpha1.DefaultHTTPRequestSeconds),
			TunnelSeconds:       v1alpha1.Int32Or(t.TunnelSeconds, v1alpha1.DefaultTunnelSeconds),
			HardStopAfter:       v1alpha1.Int32Or(t.HardStopAfterSeconds, v1alpha1.DefaultHardStopAfterSeconds),
		},
		HealthPort:  in.HealthPort,
		MonitorPath: contract.HAProxyMonitorPath,
	}
	for i := range spec.Listeners {
		m.Frontends = append(m.Frontends, newFrontend(in, &spec.Listeners[i]))
	}
	modes := backendModes(spec)
	for i := range spec.Backends {
		b := &spec.Backends[i]
		m.Backends = append(m.Backends, newBackend(b, modes[b.Name], in.Endpoints[b.Name]))
	}
	return m
}

// FrontendName and BackendName are the HAProxy proxy names of a listener and
// a backend; the agent uses them on the runtime API.
func FrontendName(listener string) string { return "fe_" + listener }

// BackendName is the HAProxy proxy name of a backend.
func BackendName(backend string) string { return "be_" + backend }

func newFrontend(in *Input, l *v1alpha1.Listener) frontend {
	f := frontend{
		Name:           FrontendName(l.Name),
		Mode:           mode(l.Protocol),
		MaxConnections: v1alpha1.Int32Or(l.Bind.MaxConnections, 0),
		TLS:            l.TLS != nil,
	}
	for _, vip := range in.VirtualIPs {
		f.Binds = append(f.Binds, hostPort(vip.Addr(), l.Port))
	}
	// transparent lets a backup node bind the virtual IPs it does not hold
	// yet, so it serves the moment Keepalived moves them. HAProxy 2.6 has
	// no freebind keyword: transparent tries IP_TRANSPARENT, which needs
	// NET_ADMIN, then falls back to IP_FREEBIND, which needs no
	// capability. HAProxy runs without NET_ADMIN, so the fallback is what
	// binds (checked with the real haproxy in the lab: a backup serves
	// the moment it takes the VIP).
	f.BindOptions = []string{"transparent"}
	if l.Bind.ProxyProtocol == v1alpha1.ProxyProtocolAccept {
		f.BindOptions = append(f.BindOptions, "accept-proxy")
	}
	if l.TLS != nil {
		minVersion := l.TLS.MinVersion
		if minVersion == "" {
			minVersion = v1alpha1.TLSVersion12
		}
		f.BindOptions = append(f.BindOptions, "ssl", "crt", in.paths().CertificateFile(l.Name), "ssl-min-ver", string(minVersion))
		if l.Protocol == v1alpha1.ProtocolHTTP {
			f.BindOptions = append(f.BindOptions, "alpn", "h2,http/1.1")
		}
	}
	for _, r := range l.AllowedSourceRanges {
		if p, err := netip.ParsePrefix(r); err == nil { // validated already
			f.SourceRanges = append(f.SourceRanges, p.Masked().String())
		}
	}
	f.SourceAfterProxy = l.Bind.ProxyProtocol == v1alpha1.ProxyProtocolAccept
	for _, r := range l.Routes {
		f.Routes = append(f.Routes, newRouteRule(r))
	}
	if l.DefaultBackend != "" {
		f.DefaultBackend = BackendName(l.DefaultBackend)
	}
	return f
}

// newRouteRule splits a route host into the match HAProxy needs: an exact
// name, or a suffix for "*.example.com".
func newRouteRule(r v1alpha1.Route) routeRule {
	rule := routeRule{Backend: BackendName(r.Backend), Host: r.Host, PathPrefix: r.PathPrefix}
	if suffix, ok := strings.CutPrefix(r.Host, "*"); ok {
		rule.Host, rule.HostSuffix = suffix, true
	}
	return rule
}

func mode(p v1alpha1.Protocol) string {
	if p == v1alpha1.ProtocolTCP {
		return "tcp"
	}
	return "http"
}

// backendModes gives each backend the mode of the listeners that use it.
// Validation guarantees they agree; an unused backend is HTTP.
func backendModes(spec *v1alpha1.LoadBalancerSpec) map[string]string {
	modes := map[string]string{}
	for _, l := range spec.Listeners {
		if l.DefaultBackend != "" {
			modes[l.DefaultBackend] = mode(l.Protocol)
		}
		for _, r := range l.Routes {
			modes[r.Backend] = mode(l.Protocol)
		}
	}
	for _, b := range spec.Backends {
		if modes[b.Name] == "" {
			modes[b.Name] = "http"
		}
	}
	return modes
}

func newBackend(b *v1alpha1.Backend, mode string, endpoints []Endpoint) backend {
	out := backend{Name: BackendName(b.Name), Mode: mode}
	out.Balance, out.HashConsistent = balance(b)
	if b.StickyCookie != nil {
		out.Cookie = b.StickyCookie.Name
	}
	if b.HealthCheck != nil {
		out.Check = newCheck(b.HealthCheck)
	}
	switch b.SendProxyProtocol {
	case v1alpha1.ProxyProtocolV1:
		out.SendProxy = "send-proxy"
	case v1alpha1.ProxyProtocolV2:
		out.SendProxy = "send-proxy-v2"
	}
	out.Servers = servers(b, endpoints)
	return out
}

func balance(b *v1alpha1.Backend) (algorithm string, consistent bool) {
	switch b.Balance {
	case v1alpha1.BalanceLeastConn:
		return "leastconn", false
	case v1alpha1.BalanceSource:
		return "source", true
	case v1alpha1.BalanceURI:
		return "uri", true
	case v1alpha1.BalanceHeader:
		return "hdr(" + b.HashHeader + ")", true
	default:
		return "roundrobin", false
	}
}

func newCheck(hc *v1alpha1.HealthCheck) *check {
	c := &check{
		HTTP:         hc.Type == v1alpha1.HealthCheckHTTP,
		IntervalMs:   v1alpha1.Int32Or(hc.IntervalMilliseconds, v1alpha1.DefaultCheckIntervalMilliseconds),
		TimeoutMs:    v1alpha1.Int32Or(hc.TimeoutMilliseconds, v1alpha1.DefaultCheckTimeoutMilliseconds),
		Rise:         v1alpha1.Int32Or(hc.Rise, v1alpha1.DefaultCheckRise),
		Fall:         v1alpha1.Int32Or(hc.Fall, v1alpha1.DefaultCheckFall),
		Port:         v1alpha1.Int32Or(hc.Port, 0),
		ExpectStatus: v1alpha1.Int32Or(hc.ExpectStatus, 0),
	}
	if c.HTTP {
		c.Method, c.Path, c.Version, c.Host = "GET", hc.Path, "HTTP/1.0", hc.Host
		if c.Path == "" {
			c.Path = v1alpha1.DefaultCheckPath
		}
		if c.Host != "" {
			c.Version = "HTTP/1.1"
		}
	}
	return c
}

// SlotServerName names the n-th (from 1) server slot of a Service backend.
// The underscore keeps it apart from static server names, which are DNS
// labels.
func SlotServerName(n int) string { return "ep_" + strconv.Itoa(n) }

// SlotCount is how many server slots a Service backend gets: serverSlots,
// grown in steps of serverSlots to fit every endpoint.
func SlotCount(ref *v1alpha1.ServiceReference, endpoints int) int {
	step := int(v1alpha1.Int32Or(ref.ServerSlots, v1alpha1.DefaultServerSlots))
	if endpoints <= step {
		return step
	}
	return (endpoints + step - 1) / step * step
}

// placeholderAddress fills an empty slot. The port is not 0, which HAProxy
// would read as "the client's port" and then refuse to change at run time.
const (
	placeholderHost    = "0.0.0.0"
	placeholderPort    = 1
	placeholderAddress = "0.0.0.0:1"
)

func servers(b *v1alpha1.Backend, endpoints []Endpoint) []server {
	var out []server
	for _, s := range b.Servers {
		// Validated already: the address is an IP or a DNS name.
		sv := server{
			Name:    s.Name,
			Address: serverAddress(s.Address, s.Port),
			Weight:  v1alpha1.Int32Or(s.Weight, v1alpha1.DefaultServerWeight),
			Backup:  s.Backup,
		}
		if addr, err := validation.ParseAddress(s.Address); err == nil {
			sv.runtime = &contract.Server{Name: s.Name, Address: addr.String(), Port: s.Port, Weight: sv.Weight}
		}
		out = append(out, sv)
	}
	slices.SortFunc(out, func(a, b server) int { return strings.Compare(a.Name, b.Name) })
	if b.ServiceRef != nil {
		weight := v1alpha1.Int32Or(b.ServiceRef.Weight, v1alpha1.DefaultServerWeight)
		for i := range SlotCount(b.ServiceRef, len(endpoints)) {
			s := server{Name: SlotServerName(i + 1), Address: placeholderAddress, Weight: weight, Disabled: true,
				runtime: &contract.Server{Name: SlotServerName(i + 1), Address: placeholderHost, Port: placeholderPort, Weight: weight, Disabled: true}}
			if i < len(endpoints) && endpoints[i].Address != "" {
				s.Address, s.Disabled = serverAddress(endpoints[i].Address, endpoints[i].Port), false
				addr, _ := validation.ParseAddress(endpoints[i].Address) // validated already
				s.runtime = &contract.Server{Name: s.Name, Address: addr.String(), Port: endpoints[i].Port, Weight: weight}
			}
			out = append(out, s)
		}
	}
	if b.StickyCookie != nil {
		for i := range out {
			out[i].Cookie = out[i].Name
		}
	}
	return out
}

// ServerAddress is a server's address as haproxy.cfg has it: what the
// agent compares a runtime server with.
func ServerAddress(host string, port int32) string { return serverAddress(host, port) }

func serverAddress(host string, port int32) string {
	if addr, err := validation.ParseAddress(host); err == nil {
		return hostPort(addr, port)
	}
	return fmt.Sprintf("%s:%d", host, port)
}

func hostPort(addr netip.Addr, port int32) string {
	return netip.AddrPortFrom(addr, uint16(port)).String()
}
