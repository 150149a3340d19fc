package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Every string below that reaches haproxy.cfg or keepalived.conf carries a
// strict pattern. internal/validation holds the same patterns in Go so that
// `hakeeper render` and the operator reject what the API server would, and
// tests keep the two in step (patterns and numeric bounds).

// LoadBalancerSpec is the desired state of a highly available load balancer:
// the virtual IPs Keepalived moves between nodes, and the listeners and
// backends HAProxy serves on every node.
//
// +kubebuilder:validation:XValidation:rule="self.listeners.all(l, !has(l.defaultBackend) || self.backends.exists(b, b.name == l.defaultBackend))",message="every listener's defaultBackend must name a backend in spec.backends",fieldPath=".listeners"
// +kubebuilder:validation:XValidation:rule="self.listeners.all(l, !has(l.routes) || l.routes.all(r, self.backends.exists(b, b.name == r.backend)))",message="every route's backend must name a backend in spec.backends",fieldPath=".listeners"
// +kubebuilder:validation:XValidation:rule="has(self.className) == has(oldSelf.className) && (!has(self.className) || self.className == oldSelf.className)",message="className cannot be changed",fieldPath=".className"
// +kubebuilder:validation:XValidation:rule="!has(self.ipFamilies) || !has(self.virtualIPs) || size(self.virtualIPs) == 0",message="ipFamilies applies only to allocated addresses: leave it out when virtualIPs are given",fieldPath=".ipFamilies"
// +kubebuilder:validation:XValidation:rule="!self.backends.exists(b, has(b.stickyCookie) && self.listeners.exists(l, l.protocol == 'TCP' && has(l.defaultBackend) && l.defaultBackend == b.name))",message="a backend used by a TCP listener cannot have a stickyCookie",fieldPath=".backends"
type LoadBalancerSpec struct {
	// className names the LoadBalancerClass, written by the platform admin,
	// that decides where this load balancer runs and which addresses it may
	// use. When empty, the class marked as default
	// (hakeeper.io/is-default-class: "true") is used, and the name is
	// recorded in status.className. It cannot be changed: create a new
	// LoadBalancer to move to another class.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ClassName string `json:"className,omitempty"`

	// virtualIPs are the addresses (for example 198.18.0.100 or
	// 2001:db8::100) that Keepalived assigns to the active node and HAProxy
	// listens on. Each must lie in one of the class's virtualIPPools, which
	// also gives the prefix length it gets on the interface. When empty, one
	// address is allocated from the class's first pool of each family in
	// ipFamilies. The addresses in use are in status.virtualIPs.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=39
	// +kubebuilder:validation:items:XValidation:rule="isIP(self) && ip.isCanonical(self) && ip(self).isGlobalUnicast()",message="must be a unicast IP address in canonical form (not loopback, link-local, multicast, broadcast or unspecified), for example 198.18.0.100"
	// +kubebuilder:validation:XValidation:rule="self.all(a, self.exists_one(b, b == a))",message="virtual IPs must be unique"
	// +listType=atomic
	VirtualIPs []string `json:"virtualIPs,omitempty"`

	// ipFamilies are the families of the addresses allocated when
	// virtualIPs is empty: one address per family, the first family first.
	// Defaults to the family of the class's first pool.
	// +optional
	// +kubebuilder:validation:MaxItems=2
	// +kubebuilder:validation:items:Enum=IPv4;IPv6
	// +kubebuilder:validation:XValidation:rule="self.all(a, self.exists_one(b, b == a))",message="ipFamilies must be unique"
	// +listType=atomic
	IPFamilies []corev1.IPFamily `json:"ipFamilies,omitempty"`

	// nodeSelector narrows the class's data-plane nodes: this load
	// balancer runs on the class's nodes that also match it.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// vrrp tunes how Keepalived elects the node that holds the virtual IPs.
	// +optional
	VRRP VRRPSpec `json:"vrrp,omitempty,omitzero"`

	// listeners are the ports HAProxy accepts connections on, on every
	// virtual IP.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="self.all(a, self.exists_one(b, b.port == a.port))",message="listener ports must be unique"
	// +listType=map
	// +listMapKey=name
	Listeners []Listener `json:"listeners"`

	// backends are the groups of servers that listeners send traffic to.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=name
	Backends []Backend `json:"backends"`

	// haproxy tunes HAProxy's global settings. The image and resources of
	// the data plane are the class's.
	// +optional
	HAProxy HAProxySpec `json:"haproxy,omitempty,omitzero"`
}

// VRRPMode says how Keepalived reaches its peers.
// +kubebuilder:validation:Enum=Multicast;Unicast
type VRRPMode string

const (
	// VRRPModeMulticast sends adverts to the VRRP multicast group, which
	// needs a network that forwards multicast.
	VRRPModeMulticast VRRPMode = "Multicast"
	// VRRPModeUnicast sends adverts to every other node's InternalIP, for
	// clouds and networks without multicast.
	VRRPModeUnicast VRRPMode = "Unicast"
)

// Preemption says whether a recovered node with a higher priority takes the
// virtual IPs back.
// +kubebuilder:validation:Enum=Enabled;Disabled
type Preemption string

const (
	// PreemptionEnabled lets the highest-priority node take the virtual IPs
	// back, after preemptDelaySeconds.
	PreemptionEnabled Preemption = "Enabled"
	// PreemptionDisabled leaves the virtual IPs where they are until their
	// holder fails, avoiding a second interruption after recovery.
	PreemptionDisabled Preemption = "Disabled"
)

// VRRPSpec configures Keepalived's election of the active node.
//
// +kubebuilder:validation:XValidation:rule="!has(self.version) || self.version == 3 || !has(self.advertIntervalMilliseconds) || self.advertIntervalMilliseconds % 1000 == 0",message="VRRP version 2 needs an advertIntervalMilliseconds that is a whole number of seconds",fieldPath=".advertIntervalMilliseconds"
// +kubebuilder:validation:XValidation:rule="!has(self.version) || self.version == 3 || has(self.advertIntervalMilliseconds)",message="VRRP version 2 needs advertIntervalMilliseconds set (at least 1000)",fieldPath=".advertIntervalMilliseconds"
// +kubebuilder:validation:XValidation:rule="!has(self.preemptDelaySeconds) || !has(self.preemption) || self.preemption == 'Enabled'",message="preemptDelaySeconds needs preemption Enabled",fieldPath=".preemptDelaySeconds"
type VRRPSpec struct {
	// virtualRouterID identifies this load balancer's VRRP group on the
	// network (1 to 255). When omitted, the operator allocates one that no
	// other LoadBalancer on the same nodes uses, and reports it in
	// status.virtualRouterID.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=255
	VirtualRouterID *int32 `json:"virtualRouterID,omitempty"`

	// version is the VRRP protocol version: 3 (default) allows sub-second
	// adverts and IPv6; 2 only whole seconds.
	// +optional
	// +kubebuilder:validation:Enum=2;3
	Version *int32 `json:"version,omitempty"`

	// advertIntervalMilliseconds is how often the active node announces
	// itself. A backup takes over after about three missed adverts, so this
	// bounds failover time when a node drops off the network. VRRPv3 counts
	// in centiseconds: the value must be a multiple of 10. Defaults to 50:
	// a backup takes over about 0.17 s after the master vanishes. In the
	// lab 30 ms passed a 60 s overload of the master without a false
	// failover but not a burst of config changes (a backup starved for
	// three intervals during HAProxy reloads on every node); 50 ms passed
	// both. Raise it on nodes where a process may stall for more than
	// 100 ms (heavily overcommitted VMs), or when
	// status.nodes[].vrrpTransitions rises without a fault: the VIP flaps.
	// +optional
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=40950
	// +kubebuilder:validation:MultipleOf=10
	AdvertIntervalMilliseconds *int32 `json:"advertIntervalMilliseconds,omitempty"`

	// mode is Multicast (default) or Unicast. Unicast sends adverts to the
	// other selected nodes' InternalIPs, for networks without multicast.
	// +optional
	Mode VRRPMode `json:"mode,omitempty"`

	// preemption is Enabled (default) or Disabled.
	// +optional
	Preemption Preemption `json:"preemption,omitempty"`

	// preemptDelaySeconds is how long a recovered higher-priority node waits
	// before taking the virtual IPs back, so a flapping node does not cause
	// repeated interruptions. Defaults to 0. The agent enforces it: a node
	// runs at the lowest priority until its HAProxy has been healthy this
	// long, so it stays a backup meanwhile (keepalived's own preempt_delay
	// would also delay taking over from a master that fails).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	PreemptDelaySeconds *int32 `json:"preemptDelaySeconds,omitempty"`

	// priorities pin the VRRP priority of named nodes; the highest healthy
	// node holds the virtual IPs. Nodes not listed get stable derived
	// priorities of at most 100 (100, 50, 25, ... first) that do not change
	// when nodes come and go. Keep pinned priorities at least 50 apart:
	// backups with close priorities can both take over when the master
	// fails, which costs clients a second.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=node
	Priorities []NodePriority `json:"priorities,omitempty"`
}

// NodePriority pins one node's VRRP priority.
type NodePriority struct {
	// node is the name of the Node.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Node string `json:"node"`

	// priority is the node's VRRP priority, 1 to 254; higher wins.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=254
	Priority int32 `json:"priority"`
}

// Protocol is the kind of traffic a listener serves.
// +kubebuilder:validation:Enum=HTTP;TCP
type Protocol string

const (
	// ProtocolHTTP parses HTTP, so requests can be routed by host and path
	// and backends can use cookie stickiness. With tls it serves HTTPS.
	ProtocolHTTP Protocol = "HTTP"
	// ProtocolTCP forwards connections without looking inside them.
	ProtocolTCP Protocol = "TCP"
)

// Listener is one port HAProxy serves on the virtual IPs.
//
// +kubebuilder:validation:XValidation:rule="self.protocol == 'HTTP' || !has(self.routes)",message="routes need protocol HTTP",fieldPath=".routes"
// +kubebuilder:validation:XValidation:rule="self.protocol == 'HTTP' || has(self.defaultBackend)",message="a TCP listener needs a defaultBackend",fieldPath=".defaultBackend"
// +kubebuilder:validation:XValidation:rule="has(self.defaultBackend) || (has(self.routes) && size(self.routes) > 0)",message="a listener needs a defaultBackend or at least one route",fieldPath=".defaultBackend"
type Listener struct {
	// name identifies the listener; it names the HAProxy frontend.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// port is the TCP port HAProxy accepts connections on.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// protocol is HTTP or TCP.
	// +required
	Protocol Protocol `json:"protocol"`

	// defaultBackend receives what no route matches. Required for TCP.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	DefaultBackend string `json:"defaultBackend,omitempty"`

	// routes send HTTP requests to a backend by host and path prefix; the
	// first route that matches wins.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	Routes []Route `json:"routes,omitempty"`

	// tls terminates TLS on this listener with a certificate from a Secret.
	// +optional
	TLS *ListenerTLS `json:"tls,omitempty"`

	// bind tunes how HAProxy accepts connections on this listener.
	// +optional
	Bind BindOptions `json:"bind,omitempty,omitzero"`

	// allowedSourceRanges, when set, are the only client networks this
	// listener accepts: HAProxy closes a connection from anywhere else
	// before reading from it (a Service's loadBalancerSourceRanges). With
	// bind.proxyProtocol Accept, the client is the one the PROXY header
	// names.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",message="must be a network in CIDR notation, for example 203.0.113.0/24"
	// +listType=atomic
	AllowedSourceRanges []string `json:"allowedSourceRanges,omitempty"`
}

// Route sends matching HTTP requests to a backend. A request matches when
// both host (if set) and pathPrefix (if set) match.
//
// +kubebuilder:validation:XValidation:rule="has(self.host) || has(self.pathPrefix)",message="a route needs a host or a pathPrefix"
type Route struct {
	// host matches the request's Host header, case-insensitively and without
	// the port. A leading "*." matches any subdomain.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Host string `json:"host,omitempty"`

	// pathPrefix matches the start of the request path, for example /api.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/[A-Za-z0-9._~%!*+,;=:@/-]*$`
	PathPrefix string `json:"pathPrefix,omitempty"`

	// backend names the backend that serves matching requests.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Backend string `json:"backend"`
}

// TLSVersion is a minimum TLS protocol version.
// +kubebuilder:validation:Enum=TLSv1.2;TLSv1.3
type TLSVersion string

const (
	// TLSVersion12 accepts TLS 1.2 and newer.
	TLSVersion12 TLSVersion = "TLSv1.2"
	// TLSVersion13 accepts only TLS 1.3.
	TLSVersion13 TLSVersion = "TLSv1.3"
)

// ListenerTLS terminates TLS on a listener.
type ListenerTLS struct {
	// secretRef names a kubernetes.io/tls Secret in the LoadBalancer's
	// namespace. The agent writes its tls.crt and tls.key on each node with
	// mode 0600; they never pass through a ConfigMap.
	// +required
	SecretRef SecretReference `json:"secretRef"`

	// minVersion is the oldest TLS version accepted. Defaults to TLSv1.2.
	// +optional
	MinVersion TLSVersion `json:"minVersion,omitempty"`
}

// SecretReference names a Secret in the same namespace.
type SecretReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// ProxyProtocol says whether a listener expects the PROXY protocol header.
// +kubebuilder:validation:Enum=Disabled;Accept
type ProxyProtocol string

const (
	// ProxyProtocolDisabled reads connections as they come.
	ProxyProtocolDisabled ProxyProtocol = "Disabled"
	// ProxyProtocolAccept expects a PROXY protocol v1 or v2 header from an
	// upstream load balancer and uses the client address it carries.
	ProxyProtocolAccept ProxyProtocol = "Accept"
)

// BindOptions tune a listener's sockets.
type BindOptions struct {
	// proxyProtocol is Disabled (default) or Accept.
	// +optional
	ProxyProtocol ProxyProtocol `json:"proxyProtocol,omitempty"`

	// maxConnections caps concurrent connections on this listener. Defaults
	// to HAProxy's global maxConnections.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	MaxConnections *int32 `json:"maxConnections,omitempty"`
}

// BalanceAlgorithm picks a server for each new connection or request.
// +kubebuilder:validation:Enum=RoundRobin;LeastConn;Source;URI;Header
type BalanceAlgorithm string

const (
	// BalanceRoundRobin takes servers in turn, in proportion to their weights.
	BalanceRoundRobin BalanceAlgorithm = "RoundRobin"
	// BalanceLeastConn picks the server with the fewest connections; suits
	// long sessions such as databases.
	BalanceLeastConn BalanceAlgorithm = "LeastConn"
	// BalanceSource hashes the client address, so a client keeps its server.
	BalanceSource BalanceAlgorithm = "Source"
	// BalanceURI hashes the request URI (HTTP only), for caches.
	BalanceURI BalanceAlgorithm = "URI"
	// BalanceHeader hashes the value of hashHeader (HTTP only).
	BalanceHeader BalanceAlgorithm = "Header"
)

// Backend is a group of servers.
//
// +kubebuilder:validation:XValidation:rule="(has(self.servers) && size(self.servers) > 0) || has(self.serviceRef)",message="a backend needs servers or a serviceRef"
// +kubebuilder:validation:XValidation:rule="has(self.hashHeader) == (has(self.balance) && self.balance == 'Header')",message="hashHeader is required with balance Header and not allowed otherwise",fieldPath=".hashHeader"
type Backend struct {
	// name identifies the backend in listeners and routes.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// balance is the algorithm that picks a server: RoundRobin (default),
	// LeastConn, Source, URI or Header. Hashing algorithms use consistent
	// hashing, so adding a server moves few clients.
	// +optional
	Balance BalanceAlgorithm `json:"balance,omitempty"`

	// hashHeader is the request header hashed by balance Header.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9-]*$`
	HashHeader string `json:"hashHeader,omitempty"`

	// stickyCookie keeps an HTTP client on the server that answered it
	// first, through a cookie HAProxy inserts.
	// +optional
	StickyCookie *StickyCookie `json:"stickyCookie,omitempty"`

	// healthCheck probes every server; a server that fails it gets no
	// traffic until it passes again. Without it servers are always up.
	// +optional
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`

	// servers are static servers, inside or outside the cluster.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=name
	Servers []Server `json:"servers,omitempty"`

	// serviceRef adds the ready endpoints of a Service in the same namespace
	// as servers.
	// +optional
	ServiceRef *ServiceReference `json:"serviceRef,omitempty"`

	// sendProxyProtocol opens every connection to the servers, health
	// checks included, with a PROXY protocol header (V1 or V2) carrying the
	// client's address, which HAProxy, a full proxy, otherwise replaces
	// with its own. The servers must expect the header. Off by default.
	// +optional
	SendProxyProtocol ProxyProtocolVersion `json:"sendProxyProtocol,omitempty"`
}

// ProxyProtocolVersion is a version of the PROXY protocol.
// +kubebuilder:validation:Enum=V1;V2
type ProxyProtocolVersion string

const (
	// ProxyProtocolV1 is the text header (HAProxy's send-proxy).
	ProxyProtocolV1 ProxyProtocolVersion = "V1"
	// ProxyProtocolV2 is the binary header (send-proxy-v2).
	ProxyProtocolV2 ProxyProtocolVersion = "V2"
)

// StickyCookie configures cookie-based persistence.
type StickyCookie struct {
	// name of the cookie HAProxy inserts.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_-]+$`
	Name string `json:"name"`
}

// HealthCheckType is the kind of probe.
// +kubebuilder:validation:Enum=HTTP;TCP
type HealthCheckType string

const (
	// HealthCheckHTTP sends an HTTP request and checks the status code.
	HealthCheckHTTP HealthCheckType = "HTTP"
	// HealthCheckTCP only opens a connection.
	HealthCheckTCP HealthCheckType = "TCP"
)

// HealthCheck probes a backend's servers.
//
// +kubebuilder:validation:XValidation:rule="self.type == 'HTTP' || (!has(self.path) && !has(self.host) && !has(self.expectStatus))",message="path, host and expectStatus need type HTTP"
// +kubebuilder:validation:XValidation:rule="!has(self.timeoutMilliseconds) || self.timeoutMilliseconds <= (has(self.intervalMilliseconds) ? self.intervalMilliseconds : 2000)",message="timeoutMilliseconds must not exceed intervalMilliseconds",fieldPath=".timeoutMilliseconds"
type HealthCheck struct {
	// type is HTTP or TCP.
	// +required
	Type HealthCheckType `json:"type"`

	// path is the HTTP request path, with an optional query. Defaults to /.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/[A-Za-z0-9._~%!*+,;=:@/?&-]*$`
	Path string `json:"path,omitempty"`

	// host is the Host header of the HTTP check. Without it the check uses
	// HTTP/1.0 and sends no Host header.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Host string `json:"host,omitempty"`

	// expectStatus is the HTTP status that means healthy. Without it any
	// 2xx or 3xx passes.
	// +optional
	// +kubebuilder:validation:Minimum=100
	// +kubebuilder:validation:Maximum=599
	ExpectStatus *int32 `json:"expectStatus,omitempty"`

	// port is probed instead of each server's own port.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port *int32 `json:"port,omitempty"`

	// intervalMilliseconds between probes. Defaults to 2000.
	// +optional
	// +kubebuilder:validation:Minimum=100
	// +kubebuilder:validation:Maximum=3600000
	IntervalMilliseconds *int32 `json:"intervalMilliseconds,omitempty"`

	// timeoutMilliseconds a probe may take. Defaults to 1000, and must not
	// exceed the interval.
	// +optional
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=3600000
	TimeoutMilliseconds *int32 `json:"timeoutMilliseconds,omitempty"`

	// rise is how many probes in a row must pass before a down server gets
	// traffic again. Defaults to 2.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Rise *int32 `json:"rise,omitempty"`

	// fall is how many probes in a row must fail before a server is taken
	// out. Defaults to 3.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Fall *int32 `json:"fall,omitempty"`
}

// Server is one static backend server.
type Server struct {
	// name identifies the server in HAProxy's stats and the sticky cookie.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// address is the server's IP address, or a DNS name where the class
	// allows them (the addresses a name resolves to cannot be checked).
	// Loopback, link-local, multicast and unspecified addresses are
	// refused, as are the class's pools and the nodes' own addresses.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="isIP(self) ? ip(self).isGlobalUnicast() : (self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$') && self != 'localhost' && !self.endsWith('.localhost'))",message="must be a unicast IP address (not loopback, link-local, multicast, broadcast or unspecified) or a lower-case DNS name other than localhost"
	Address string `json:"address"`

	// port is the server's TCP port.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// weight is the server's share of traffic relative to the others, 0 to
	// 256; 0 drains it. Defaults to 100.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=256
	Weight *int32 `json:"weight,omitempty"`

	// backup servers get traffic only while no other server is up.
	// +optional
	Backup bool `json:"backup,omitempty"`
}

// ServiceReference takes a backend's servers from a Service's endpoints.
type ServiceReference struct {
	// name of the Service in the LoadBalancer's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// port is the Service port, by name or number; its target port on each
	// ready endpoint becomes a server.
	// +required
	// +kubebuilder:validation:XIntOrString
	Port intstr.IntOrString `json:"port"`

	// weight of each endpoint's server. Defaults to 100.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=256
	Weight *int32 `json:"weight,omitempty"`

	// serverSlots is how many servers HAProxy reserves for this Service, so
	// endpoints that come and go are applied through HAProxy's runtime API
	// without a reload. More endpoints than slots cause a reload that adds
	// slots. Defaults to 16.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1024
	ServerSlots *int32 `json:"serverSlots,omitempty"`
}

// HAProxySpec tunes HAProxy's global settings.
type HAProxySpec struct {
	// maxConnections caps concurrent connections per node. Defaults to 20000.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	MaxConnections *int32 `json:"maxConnections,omitempty"`

	// threads HAProxy runs. Defaults to one per available CPU.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=64
	Threads *int32 `json:"threads,omitempty"`

	// timeouts of connections and requests.
	// +optional
	Timeouts Timeouts `json:"timeouts,omitempty,omitzero"`
}

// Timeouts bound how long HAProxy waits.
type Timeouts struct {
	// connectMilliseconds to open a connection to a server. Defaults to 5000.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3600000
	ConnectMilliseconds *int32 `json:"connectMilliseconds,omitempty"`

	// clientSeconds of client inactivity. Defaults to 50.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	ClientSeconds *int32 `json:"clientSeconds,omitempty"`

	// serverSeconds of server inactivity. Defaults to 50.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	ServerSeconds *int32 `json:"serverSeconds,omitempty"`

	// httpRequestSeconds to receive a whole HTTP request header, which
	// limits slow-header attacks. Defaults to 10.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3600
	HTTPRequestSeconds *int32 `json:"httpRequestSeconds,omitempty"`

	// tunnelSeconds of inactivity on upgraded connections such as
	// WebSockets. Defaults to 3600.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	TunnelSeconds *int32 `json:"tunnelSeconds,omitempty"`

	// hardStopAfterSeconds bounds how long an old HAProxy process keeps
	// serving its connections after a reload. Defaults to 300.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	HardStopAfterSeconds *int32 `json:"hardStopAfterSeconds,omitempty"`
}

// Condition types of a LoadBalancer.
const (
	// LoadBalancerReadyCondition is True when the virtual IPs are held by a
	// node whose HAProxy runs the current config and has servers up.
	LoadBalancerReadyCondition = "Ready"
	// LoadBalancerProgressingCondition is True while a new config is being
	// rolled out to the nodes.
	LoadBalancerProgressingCondition = "Progressing"
	// LoadBalancerDegradedCondition is True when something needs attention:
	// a conflict, a config a node rejected, nodes down or servers down.
	LoadBalancerDegradedCondition = "Degraded"
	// LoadBalancerReconcilingCondition is True while the LoadBalancer is on
	// its way to Ready for its current generation: rolling out, waiting for
	// a node to hold the virtual IPs, or retrying. With Stalled it follows
	// the kstatus conventions Flux and `kubectl wait` read.
	LoadBalancerReconcilingCondition = "Reconciling"
	// LoadBalancerStalledCondition is True when it will not get there
	// without a change: the operator refused the spec, a node rejected the
	// config, or no node may run it. Its reason and message are those of
	// Degraded or Ready.
	LoadBalancerStalledCondition = "Stalled"
)

// Reasons for the conditions above.
const (
	// LoadBalancerAvailableReason: Ready is True.
	LoadBalancerAvailableReason = "Available"
	// LoadBalancerPendingReason: the first reconcile has not finished.
	LoadBalancerPendingReason = "Pending"
	// LoadBalancerReconcileErrorReason: the last reconcile failed (an API
	// error such as a permission the operator lacks) and is retried with
	// back-off; the message has the error.
	LoadBalancerReconcileErrorReason = "ReconcileError"
	// LoadBalancerRollingOutReason: nodes do not all run the current config.
	LoadBalancerRollingOutReason = "RollingOut"
	// LoadBalancerInvalidSpecReason: the spec failed validation the API
	// server cannot express; nothing of it was applied.
	LoadBalancerInvalidSpecReason = "InvalidSpec"
	// LoadBalancerConflictReason: another LoadBalancer holds (or asked
	// first for) one of the virtual IPs, or the same router ID on shared
	// nodes, or no router ID is free.
	LoadBalancerConflictReason = "Conflict"
	// LoadBalancerReferenceNotFoundReason: a Service or Service port, a
	// node address of the virtual IPs' family, or the TLS delegation the
	// spec needs does not exist; the rest is applied. (The agents read TLS
	// Secrets: a missing one is their ConfigRejected.)
	LoadBalancerReferenceNotFoundReason = "ReferenceNotFound"
	// LoadBalancerSplitBrainReason: more than one node holds the virtual
	// IPs, usually because VRRP adverts do not reach every node.
	LoadBalancerSplitBrainReason = "SplitBrain"
	// LoadBalancerConfigRejectedReason: a node did not apply the rendered
	// config: HAProxy or Keepalived rejected it, the agent's config guard
	// refused it, or a TLS Secret it needs was unreadable. The last good
	// config keeps serving.
	LoadBalancerConfigRejectedReason = "ConfigRejected"
	// LoadBalancerNoActiveNodeReason: no node holds the virtual IPs (as
	// the agents observe the interfaces), or no node matches the class.
	LoadBalancerNoActiveNodeReason = "NoActiveNode"
	// LoadBalancerNoMatchingNodesReason: no node matches the class's
	// data-plane nodes and spec.nodeSelector (Ready False, and Stalled:
	// only a change of labels, class or spec helps).
	LoadBalancerNoMatchingNodesReason = "NoMatchingNodes"
	// LoadBalancerServersDownReason: a backend has no server up.
	LoadBalancerServersDownReason = "ServersDown"
	// LoadBalancerClassNotFoundReason: the class named in spec.className,
	// or a default class, does not exist (or several claim to be default).
	LoadBalancerClassNotFoundReason = "ClassNotFound"
	// LoadBalancerNotAllowedByClassReason: the class does not allow this
	// namespace, an address, a server or a value of the spec.
	LoadBalancerNotAllowedByClassReason = "NotAllowedByClass"
	// LoadBalancerAddressUnavailableReason: a virtual IP cannot be had: the
	// pools are exhausted, or it is a node's address.
	LoadBalancerAddressUnavailableReason = "AddressUnavailable"
	// LoadBalancerLimitExceededReason: the namespace already has as many
	// LoadBalancers, or virtual IPs, as its class allows.
	LoadBalancerLimitExceededReason = "LimitExceeded"
	// LoadBalancerAdoptionRefusedReason: an object hakeeper would create
	// already exists and is not hakeeper's for this LoadBalancer.
	LoadBalancerAdoptionRefusedReason = "AdoptionRefused"
	// LoadBalancerAsExpectedReason: Degraded or Progressing is False.
	LoadBalancerAsExpectedReason = "AsExpected"
)

// VRRPRole is a node's Keepalived state.
// +kubebuilder:validation:Enum=MASTER;BACKUP;FAULT;Unknown
type VRRPRole string

const (
	// VRRPRoleMaster holds the virtual IPs.
	VRRPRoleMaster VRRPRole = "MASTER"
	// VRRPRoleBackup stands by.
	VRRPRoleBackup VRRPRole = "BACKUP"
	// VRRPRoleFault has given up: its HAProxy is down or unhealthy, or its
	// interface is down.
	VRRPRoleFault VRRPRole = "FAULT"
	// VRRPRoleUnknown has not reported yet, or its keepalived is not
	// running (killed, crashed, restarting).
	VRRPRoleUnknown VRRPRole = "Unknown"
)

// LoadBalancerStatus is the observed state of a LoadBalancer.
type LoadBalancerStatus struct {
	// observedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, Progressing and Degraded; Reconciling and Stalled
	// for kstatus (Flux, kubectl wait).
	// +optional
	// +kubebuilder:validation:MaxItems=8
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// className is the LoadBalancerClass in use: spec.className, or the
	// default class when this LoadBalancer was first reconciled.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ClassName string `json:"className,omitempty"`

	// virtualIPs in use, requested or allocated, with the prefix length
	// they get on the interface (for example 198.18.0.100/24). Allocated
	// addresses stay with this LoadBalancer until it is deleted.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=49
	// +listType=atomic
	VirtualIPs []string `json:"virtualIPs,omitempty"`

	// virtualRouterID in use, given or allocated.
	// +optional
	VirtualRouterID int32 `json:"virtualRouterID,omitempty"`

	// activeNode holds the virtual IPs now: the node whose interface
	// carries the first one, as its agent observes it (the highest
	// priority should several), or the one keepalived calls MASTER while
	// no agent reports its interface.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ActiveNode string `json:"activeNode,omitempty"`

	// holders are, per virtual IP, the nodes whose interface carries it now,
	// as their agents observe it: one is right, none leaves the address
	// unserved, several are a split brain.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=virtualIP
	Holders []VirtualIPHolders `json:"holders,omitempty"`

	// nodes are what each selected node reports.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	// +listType=map
	// +listMapKey=name
	Nodes []NodeStatus `json:"nodes,omitempty"`

	// readyNodes names the nodes whose HAProxy runs the current config and
	// is healthy, highest priority first, comma-separated: the nodes that
	// serve should the virtual IPs come to them (kubectl get -o wide shows
	// it, as a printer column shows only the first item of a list). Past
	// eight names it ends with how many more, e.g. ",+3 more".
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	ReadyNodes string `json:"readyNodes,omitempty"`

	// backends count servers up per backend, as HAProxy's checks see them.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=name
	Backends []BackendStatus `json:"backends,omitempty"`
}

// VirtualIPHolders are the nodes holding one virtual IP.
type VirtualIPHolders struct {
	// virtualIP is the address, without prefix.
	// +required
	// +kubebuilder:validation:MaxLength=45
	VirtualIP string `json:"virtualIP"`

	// nodes whose interface carries it.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=253
	// +listType=atomic
	Nodes []string `json:"nodes,omitempty"`
}

// NodeStatus is one node's report.
type NodeStatus struct {
	// name of the Node.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// role is the node's VRRP state.
	// +optional
	Role VRRPRole `json:"role,omitempty"`

	// priority is the node's VRRP priority, pinned or derived.
	// +optional
	Priority int32 `json:"priority,omitempty"`

	// configHash is the hash of the config the node runs.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	ConfigHash string `json:"configHash,omitempty"`

	// vrrpTransitions counts the VRRP state changes this node's keepalived
	// made since its agent started. A number that keeps rising on a healthy
	// node means the VIP flaps: raise vrrp.advertIntervalMilliseconds.
	// +optional
	// +kubebuilder:validation:Minimum=0
	VRRPTransitions int64 `json:"vrrpTransitions,omitempty"`

	// ready is true when the node's HAProxy runs the current config and is
	// healthy.
	// +optional
	Ready bool `json:"ready,omitempty"`

	// message explains a node that is not ready, for example the error
	// HAProxy gave for a rejected config.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Message string `json:"message,omitempty"`
}

// BackendStatus counts one backend's servers.
type BackendStatus struct {
	// name of the backend.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// serversUp pass their health check on the active node.
	// +optional
	ServersUp int32 `json:"serversUp"`

	// serversTotal is how many servers the backend has.
	// +optional
	ServersTotal int32 `json:"serversTotal"`
}

// LoadBalancer is a highly available load balancer: HAProxy on every
// selected node, Keepalived moving the virtual IPs to a healthy one.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 50",message="metadata.name must be at most 50 characters: it prefixes the names of the ConfigMaps and DaemonSet"
// +kubebuilder:resource:shortName=hlb;hklb,categories=hakeeper
// +kubebuilder:printcolumn:name="Class",type=string,JSONPath=`.status.className`
// +kubebuilder:printcolumn:name="VIP",type=string,JSONPath=`.status.virtualIPs[0]`
// +kubebuilder:printcolumn:name="Active",type=string,JSONPath=`.status.activeNode`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Router ID",type=integer,JSONPath=`.status.virtualRouterID`,priority=1
// +kubebuilder:printcolumn:name="Ready Nodes",type=string,JSONPath=`.status.readyNodes`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type LoadBalancer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state.
	// +required
	Spec LoadBalancerSpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status LoadBalancerStatus `json:"status,omitempty,omitzero"`
}

// LoadBalancerList is a list of LoadBalancers.
//
// +kubebuilder:object:root=true
type LoadBalancerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []LoadBalancer `json:"items"`
}

func init() {
	SchemeBuilder.Register(&LoadBalancer{}, &LoadBalancerList{})
}
