package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AnnotationDefaultClass marks the LoadBalancerClass that LoadBalancers
// without spec.className use, as IngressClass and StorageClass mark theirs.
const AnnotationDefaultClass = "hakeeper.io/is-default-class"

// LabelTLSDelegation, set to "allowed" on a Namespace by the platform
// admin, lets its LoadBalancers use TLS listeners. Namespace admins cannot
// write their namespace's labels, so they cannot opt themselves in; the
// RoleBinding to hakeeper-tls-delegation, which they could write, only
// gives the manager the rights it then uses.
const LabelTLSDelegation = "hakeeper.io/tls-delegation"

// TLSDelegationAllowed is LabelTLSDelegation's value that opts a namespace
// in.
const TLSDelegationAllowed = "allowed"

// FinalizerClassInUse keeps a LoadBalancerClass while LoadBalancers use it,
// as PVC protection keeps a claim a pod mounts: deleting it would leave
// their data planes serving with no policy behind them.
const FinalizerClassInUse = "hakeeper.io/class-in-use"

// AnnotationMaintenance, set to "true" on a Node, has the node hand over
// the virtual IPs it holds in a planned way, as cordoning it does: its
// claim drops to the lowest priority, so a backup takes over before the
// node is drained or stopped. The node stays a backup of last resort.
const AnnotationMaintenance = "hakeeper.io/maintenance"

// LoadBalancerClassSpec is what the platform admin decides for every
// LoadBalancer of the class: the addresses it may use, the nodes and image
// of its data plane, what its backends may be, and its limits. Tenants can
// read a class but not write it.
//
// +kubebuilder:validation:XValidation:rule="has(self.dataPlane) && has(self.dataPlane.nodeSelector) && size(self.dataPlane.nodeSelector) > 0",message="must name the data-plane nodes' labels: an empty selector runs HAProxy with NET_ADMIN on every node, control plane included",fieldPath=".dataPlane.nodeSelector"
type LoadBalancerClassSpec struct {
	// virtualIPPools are the address ranges LoadBalancers of this class take
	// their virtual IPs from, requested or allocated.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=name
	VirtualIPPools []VirtualIPPool `json:"virtualIPPools"`

	// namespaceSelector picks the namespaces whose LoadBalancers may use the
	// class. When absent, every namespace may.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// dataPlane places and runs the HAProxy and Keepalived pods.
	// +optional
	DataPlane DataPlaneSpec `json:"dataPlane,omitempty,omitzero"`

	// vrrp sets defaults for the LoadBalancers' spec.vrrp fields they leave
	// empty.
	// +optional
	VRRP VRRPDefaults `json:"vrrp,omitempty,omitzero"`

	// backends says what a LoadBalancer's servers may be.
	// +optional
	Backends BackendPolicy `json:"backends,omitempty,omitzero"`

	// limits bound what one LoadBalancer may ask of the data plane.
	// +optional
	Limits ClassLimits `json:"limits,omitempty,omitzero"`
}

// VirtualIPPool is one range of virtual IPs.
//
// +kubebuilder:validation:XValidation:rule="!has(self.prefixLength) || !isCIDR(self.cidr) || self.prefixLength <= cidr(self.cidr).prefixLength()",message="prefixLength must not be longer than the cidr's: the pool lies inside the subnet the addresses get on the interface",fieldPath=".prefixLength"
// +kubebuilder:validation:XValidation:rule="!has(self.prefixLength) || !isCIDR(self.cidr) || (cidr(self.cidr).ip().family() == 4 ? self.prefixLength <= 32 : self.prefixLength <= 128)",message="prefixLength is longer than the family allows",fieldPath=".prefixLength"
type VirtualIPPool struct {
	// name identifies the pool.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// cidr is the range handed out, for example 198.18.0.96/27 or
	// 2001:db8::100/120. It must be unicast: not loopback, link-local,
	// multicast or unspecified.
	// +required
	// +kubebuilder:validation:MaxLength=43
	// +kubebuilder:validation:XValidation:rule="isCIDR(self) && cidr(self) == cidr(self).masked() && cidr(self).ip().isGlobalUnicast()",message="must be a unicast network in CIDR notation with no host bits set, for example 198.18.0.96/27"
	CIDR string `json:"cidr"`

	// prefixLength is the prefix the addresses get on the interface: the
	// length of the subnet the pool lies in (for example 24 for a /27 pool
	// inside a /24). Defaults to the cidr's own length. The network and
	// broadcast addresses of that subnet are never handed out.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=128
	PrefixLength *int32 `json:"prefixLength,omitempty"`
}

// DataPlaneSpec places and runs a class's data-plane pods. Only the admin
// decides these: they choose which code runs with NET_ADMIN on which nodes.
type DataPlaneSpec struct {
	// nodeSelector picks the nodes that may run the data plane, and must
	// name at least one label. A LoadBalancer's spec.nodeSelector can only
	// narrow it.
	// +optional
	// +kubebuilder:validation:MinProperties=1
	// +kubebuilder:validation:MaxProperties=16
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// tolerations let the data-plane pods run on tainted nodes, for example
	// dedicated edge nodes.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// interface holds the virtual IPs and carries VRRP adverts. When empty,
	// each node uses the interface that holds its InternalIP.
	// +optional
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9_.-]*$`
	Interface string `json:"interface,omitempty"`

	// image runs HAProxy and Keepalived. Defaults to the operator's
	// data-plane image (--dataplane-image). The agent always runs the
	// operator's image.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image,omitempty"`

	// priorityClassName of the class's data-plane pods, instead of the
	// operator's (--dataplane-priority-class; the chart's and kustomize's
	// hakeeper-dataplane). The pods that hold the virtual IPs should be
	// the last a full node evicts. The data plane's ResourceQuota, if the
	// install has one, is scoped to the operator's PriorityClass: pods of
	// another PriorityClass are outside it.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	PriorityClassName string `json:"priorityClassName,omitempty"`

	// haproxyResources of the HAProxy container. Unset, it requests 20m
	// CPU and 64Mi memory and has no limits: what an idle LoadBalancer
	// needs; raise it for LoadBalancers that carry traffic.
	// +optional
	HAProxyResources corev1.ResourceRequirements `json:"haproxyResources,omitempty,omitzero"`

	// keepalivedResources of the Keepalived container. Unset, it requests
	// 20m CPU and 16Mi memory and has no limits: keepalived must get the
	// CPU to send its adverts in time when HAProxy is saturated, so its
	// CPU request should not be below HAProxy's.
	// +optional
	KeepalivedResources corev1.ResourceRequirements `json:"keepalivedResources,omitempty,omitzero"`
}

// VRRPDefaults are the class's defaults for spec.vrrp.
type VRRPDefaults struct {
	// advertIntervalMilliseconds for LoadBalancers that set none; see
	// LoadBalancer spec.vrrp.advertIntervalMilliseconds.
	// +optional
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=40950
	// +kubebuilder:validation:MultipleOf=10
	AdvertIntervalMilliseconds *int32 `json:"advertIntervalMilliseconds,omitempty"`

	// mode for LoadBalancers that set none: Multicast or Unicast, as the
	// network allows.
	// +optional
	Mode VRRPMode `json:"mode,omitempty"`

	// multicastGroups gives each of the class's multicast LoadBalancers a
	// group of its own for its adverts, instead of VRRP's 224.0.0.18 and
	// ff02::12 for all: the block's first address plus the LoadBalancer's
	// router ID. A node then receives only the adverts of the
	// LoadBalancers it runs and each keepalived only its own, where with
	// one group every keepalived reads and discards every LoadBalancer's
	// adverts (20 a second each at the default interval), a cost that
	// grows with the square of the LoadBalancers on a node. The network
	// must deliver these groups between the nodes: a switch that snoops
	// IGMP or MLD needs a querier on the segment (or snooping off), as
	// groups outside 224.0.0.0/24 and ff02::/16's well-known ones are not
	// flooded by default. Unicast LoadBalancers ignore it.
	// +optional
	MulticastGroups *VRRPMulticastGroups `json:"multicastGroups,omitempty"`
}

// VRRPMulticastGroups are blocks of multicast groups, one group per router
// ID (1 to 255): each block needs at least 8 host bits.
type VRRPMulticastGroups struct {
	// ipv4 is the block for LoadBalancers whose first virtual IP is IPv4,
	// in CIDR notation within 224.0.0.0/4, for example 239.255.18.0/24
	// (administratively scoped). Unset, they use 224.0.0.18.
	// +optional
	// +kubebuilder:validation:MaxLength=18
	// +kubebuilder:validation:XValidation:rule="isCIDR(self) && cidr(self).ip().family() == 4 && cidr(self) == cidr(self).masked() && cidr('224.0.0.0/4').containsCIDR(self) && cidr(self).prefixLength() <= 24",message="must be an IPv4 multicast block in CIDR notation with no host bits set and at least 8 host bits, for example 239.255.18.0/24"
	IPv4 string `json:"ipv4,omitempty"`

	// ipv6 is the block for LoadBalancers whose first virtual IP is IPv6,
	// in CIDR notation within ff00::/8, for example ff02::18:0/120
	// (link-local scope, as VRRP's own ff02::12). Unset, they use
	// ff02::12.
	// +optional
	// +kubebuilder:validation:MaxLength=43
	// +kubebuilder:validation:XValidation:rule="isCIDR(self) && cidr(self).ip().family() == 6 && cidr(self) == cidr(self).masked() && cidr('ff00::/8').containsCIDR(self) && cidr(self).prefixLength() <= 120",message="must be an IPv6 multicast block in CIDR notation with no host bits set and at least 8 host bits, for example ff02::18:0/120"
	IPv6 string `json:"ipv6,omitempty"`
}

// StaticServers says which static servers a class allows.
// +kubebuilder:validation:Enum=None;IPAddresses;IPAddressesAndDNSNames
type StaticServers string

const (
	// StaticServersNone allows only Service endpoints.
	StaticServersNone StaticServers = "None"
	// StaticServersIPAddresses allows static servers given by IP address,
	// which are checked against allowedCIDRs and the refused ranges.
	StaticServersIPAddresses StaticServers = "IPAddresses"
	// StaticServersIPAddressesAndDNSNames also allows DNS names. The
	// operator resolves them (every 60 s) and renders the addresses they
	// resolve to, each checked as an IP address would be: a name that
	// resolves to a refused address, or not at all, is left out.
	StaticServersIPAddressesAndDNSNames StaticServers = "IPAddressesAndDNSNames"
)

// BackendPolicy says what a class's LoadBalancers may send traffic to. Some
// addresses are always refused, whatever the policy: loopback, link-local
// (cloud metadata lives there), multicast, unspecified, the clouds'
// host-only endpoints outside link-local (Azure's 168.63.129.16, Alibaba's
// 100.100.100.200, AWS's fd00:ec2::/64), every address the nodes list or
// their agents report, and the class's virtual IP pools.
type BackendPolicy struct {
	// staticServers is IPAddresses (default), IPAddressesAndDNSNames or
	// None.
	// +optional
	StaticServers StaticServers `json:"staticServers,omitempty"`

	// allowedCIDRs, when set, are the only ranges servers and Service
	// endpoints may be in. Endpoints outside them are left out and reported.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",message="must be a network in CIDR notation, for example 10.0.0.0/8"
	// +listType=atomic
	AllowedCIDRs []string `json:"allowedCIDRs,omitempty"`
}

// ClassLimits bound what one LoadBalancer, and one namespace, may ask of
// the data plane every tenant of the class shares.
type ClassLimits struct {
	// maxLoadBalancersPerNamespace caps the class's LoadBalancers in one
	// namespace. The oldest are served; the rest are refused with reason
	// LimitExceeded until some go. Defaults to 16.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=255
	MaxLoadBalancersPerNamespace *int32 `json:"maxLoadBalancersPerNamespace,omitempty"`

	// maxVirtualIPsPerNamespace caps the virtual IPs the class's
	// LoadBalancers in one namespace hold and ask for. Defaults to 32.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4096
	MaxVirtualIPsPerNamespace *int32 `json:"maxVirtualIPsPerNamespace,omitempty"`

	// maxServers caps one LoadBalancer's static servers plus server slots
	// over all its backends. Defaults to 1024.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=16384
	MaxServers *int32 `json:"maxServers,omitempty"`

	// maxConnections caps spec.haproxy.maxConnections and every listener's
	// maxConnections. Defaults to 100000.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	MaxConnections *int32 `json:"maxConnections,omitempty"`

	// maxThreads caps spec.haproxy.threads; a LoadBalancer that sets none
	// runs this many. Unset, threads are not capped and default to one per
	// CPU of the node.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=64
	MaxThreads *int32 `json:"maxThreads,omitempty"`

	// maxTimeoutSeconds caps every timeout in spec.haproxy.timeouts (the
	// connect timeout too, in seconds): long timeouts hold connections,
	// and old processes after a reload, on nodes every tenant shares.
	// Defaults to 3600.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	MaxTimeoutSeconds *int32 `json:"maxTimeoutSeconds,omitempty"`

	// minAdvertIntervalMilliseconds is the shortest spec.vrrp
	// advertIntervalMilliseconds a LoadBalancer may ask for: every advert
	// wakes every data-plane node. Defaults to 50, the LoadBalancer's
	// default. The class's own vrrp.advertIntervalMilliseconds is not
	// bound by it.
	// +optional
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=40950
	MinAdvertIntervalMilliseconds *int32 `json:"minAdvertIntervalMilliseconds,omitempty"`

	// maxServersPerBackend caps a backend's static servers plus its
	// serviceRef's server slots. Defaults to 256.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=2048
	MaxServersPerBackend *int32 `json:"maxServersPerBackend,omitempty"`

	// maxServerSlots caps a serviceRef's serverSlots. Defaults to 256.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1024
	MaxServerSlots *int32 `json:"maxServerSlots,omitempty"`

	// minHealthCheckIntervalMilliseconds is the shortest health-check
	// interval allowed: every node probes every server. Defaults to 500.
	// +optional
	// +kubebuilder:validation:Minimum=100
	// +kubebuilder:validation:Maximum=3600000
	MinHealthCheckIntervalMilliseconds *int32 `json:"minHealthCheckIntervalMilliseconds,omitempty"`
}

// Class defaults.
const (
	DefaultMaxLoadBalancersPerNamespace       = 16
	DefaultMaxVirtualIPsPerNamespace          = 32
	DefaultMaxServers                         = 1024
	DefaultMaxConnectionsLimit                = 100000
	DefaultMaxTimeoutSeconds                  = 3600
	DefaultMinAdvertIntervalMilliseconds      = DefaultAdvertIntervalMilliseconds
	DefaultMaxServersPerBackend               = 256
	DefaultMaxServerSlots                     = 256
	DefaultMinHealthCheckIntervalMilliseconds = 500
)

// LoadBalancerClass is written by the platform admin: where LoadBalancers
// of the class run, which addresses they use, and what they may reach.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=hlbc,categories=hakeeper
// +kubebuilder:printcolumn:name="Default",type=string,JSONPath=`.metadata.annotations.hakeeper\.io/is-default-class`
// +kubebuilder:printcolumn:name="Pools",type=string,JSONPath=`.spec.virtualIPPools[*].cidr`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type LoadBalancerClass struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what the class decides.
	// +required
	Spec LoadBalancerClassSpec `json:"spec"`
}

// LoadBalancerClassList is a list of LoadBalancerClasses.
//
// +kubebuilder:object:root=true
type LoadBalancerClassList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []LoadBalancerClass `json:"items"`
}

func init() {
	SchemeBuilder.Register(&LoadBalancerClass{}, &LoadBalancerClassList{})
}
