// Package render turns a resolved LoadBalancer into haproxy.cfg and each
// node's keepalived.conf. It is pure: no client, no files, no clock. The
// caller gathers the facts (endpoints, nodes, the router ID in use) into an
// Input; rendering validates all of it first, so nothing unchecked reaches a
// config file.
package render

import (
	"net/netip"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
)

// Input is everything rendering needs.
type Input struct {
	// Name and Namespace of the LoadBalancer, used in comments and in the
	// Keepalived instance name.
	Name      string
	Namespace string
	// Spec as stored, with the class's VRRP defaults filled in; empty
	// optional fields take the v1alpha1 defaults.
	Spec v1alpha1.LoadBalancerSpec
	// VirtualIPs in use (requested or allocated, see internal/resolve), with
	// the prefix length each gets on the interface. The first one's family
	// is the one VRRP runs on.
	VirtualIPs []netip.Prefix
	// Interface holds the virtual IPs on every node (the class's); when
	// empty, each node's own Interface is used.
	Interface string
	// Endpoints holds, for each backend with a serviceRef, the ready
	// endpoints of the Service, in the order they fill the backend's server
	// slots; an Endpoint with no Address leaves its slot empty. Keeping each
	// endpoint in its slot lets endpoint changes reach HAProxy through its
	// runtime API without a reload (see internal/resolve.AssignSlots).
	Endpoints map[string][]Endpoint
	// Nodes run this load balancer. Each has its VRRP priority decided
	// (see internal/priority); spec.vrrp.priorities, if it names the node,
	// must agree.
	Nodes []Node
	// VirtualRouterID in use: spec.vrrp.virtualRouterID or an allocated one.
	VirtualRouterID int32
	// Paths of files and sockets on the node. Zero means contract.DefaultPaths.
	Paths contract.Paths
	// MulticastGroups are the class's blocks of VRRP multicast groups
	// (see MulticastGroup); zero means VRRP's well-known group.
	MulticastGroups v1alpha1.VRRPMulticastGroups
	// HealthPort is where HAProxy answers the kubelet's liveness probe on
	// the node's loopback (desired.HealthPorts); 0 renders no such
	// frontend.
	HealthPort int32
}

// Endpoint is one ready address:port of a Service backend.
type Endpoint struct {
	Address string
	Port    int32
}

// Node is one node that runs the load balancer.
type Node struct {
	// Name of the Node object.
	Name string
	// Address is the node's InternalIP: the unicast source and peer address.
	Address string
	// Interface holding Address; used when Input.Interface is empty.
	Interface string
	// LinkLocal is the IPv6 link-local address of the node's interface, as
	// its agent reports it: the source of its IPv6 multicast adverts.
	LinkLocal string
	// Priority is the node's VRRP priority, 1 to 254.
	Priority int32
}

// IPv4 tells the family VRRP runs on: the first virtual IP's.
func (in *Input) IPv4() bool {
	return len(in.VirtualIPs) == 0 || in.VirtualIPs[0].Addr().Is4()
}

// MulticastGroup is the group this LoadBalancer's adverts go to: its
// class's block of VRRP's family plus the router ID, or "" for VRRP's own
// group (224.0.0.18, ff02::12), and for unicast VRRP. A block that does
// not parse gives "" too; Validate reports it.
func (in *Input) MulticastGroup() string {
	if in.Spec.VRRP.Mode == v1alpha1.VRRPModeUnicast {
		return ""
	}
	block := in.MulticastGroups.IPv4
	if !in.IPv4() {
		block = in.MulticastGroups.IPv6
	}
	if block == "" {
		return ""
	}
	prefix, err := netip.ParsePrefix(block)
	if err != nil || in.VirtualRouterID < 1 || in.VirtualRouterID > 255 {
		return ""
	}
	// The router ID fills the last byte, which the block's at least 8
	// host bits leave free.
	b := prefix.Masked().Addr().AsSlice()
	b[len(b)-1] = byte(in.VirtualRouterID)
	group, _ := netip.AddrFromSlice(b)
	return group.String()
}

func (in *Input) paths() contract.Paths {
	if in.Paths == (contract.Paths{}) {
		return contract.DefaultPaths()
	}
	return in.Paths
}
