// Package render turns a resolved LoadBalancer into haproxy.cfg and each
// node's keepalived.conf. It is pure: no client, no files, no clock. The
// caller gathers the facts (endpoints, nodes, the router ID in use) into an
// Input; rendering validates all of it first, so nothing unchecked reaches a
// config file.
package render

import (
	"net/netip"
	"path"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
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
	// Paths of files and sockets on the node. Zero means DefaultPaths.
	Paths Paths
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
	// Priority is the node's VRRP priority, 1 to 254.
	Priority int32
}

// Paths locate the files HAProxy and Keepalived share with the agent.
type Paths struct {
	// RunDir holds sockets, the track file, the notify FIFO and TLS
	// material: a tmpfs in the pod, so private keys never touch a disk.
	RunDir string
	// ConfigDir holds the rendered configs.
	ConfigDir string
}

// DefaultPaths are the paths inside the data-plane containers.
func DefaultPaths() Paths {
	return Paths{RunDir: "/var/run/hakeeper", ConfigDir: "/etc/hakeeper"}
}

// File names inside Paths, shared with the agent and the DaemonSet.
const (
	HAProxyConfigFile    = "haproxy.cfg"
	KeepalivedConfigFile = "keepalived.conf"
	RuntimeSocketFile    = "haproxy.sock"
	MasterSocketFile     = "haproxy-master.sock"
	ServerStateFile      = "haproxy.state"
	TrackFile            = "haproxy.health"
	PreemptHoldFile      = "preempt.hold"
	NotifyFIFOFile       = "keepalived.fifo"
	TLSDir               = "tls"
)

// RuntimeSocket is HAProxy's runtime API socket.
func (p Paths) RuntimeSocket() string { return path.Join(p.RunDir, RuntimeSocketFile) }

// MasterSocket is HAProxy's master CLI socket (given on the command line).
func (p Paths) MasterSocket() string { return path.Join(p.RunDir, MasterSocketFile) }

// ServerState is where server states are saved across reloads.
func (p Paths) ServerState() string { return path.Join(p.RunDir, ServerStateFile) }

// TrackFile is the file keepalived tracks: 0 means HAProxy is healthy.
func (p Paths) TrackFile() string { return path.Join(p.RunDir, TrackFile) }

// PreemptHold is the file keepalived tracks to hold a recovering node at
// the lowest priority: 1 holds, 0 releases.
func (p Paths) PreemptHold() string { return path.Join(p.RunDir, PreemptHoldFile) }

// NotifyFIFO is where keepalived reports state changes.
func (p Paths) NotifyFIFO() string { return path.Join(p.RunDir, NotifyFIFOFile) }

// CertificateFile is the PEM (certificate and key) of a TLS listener.
func (p Paths) CertificateFile(listener string) string {
	return path.Join(p.RunDir, TLSDir, listener+".pem")
}

// IPv4 tells the family VRRP runs on: the first virtual IP's.
func (in *Input) IPv4() bool {
	return len(in.VirtualIPs) == 0 || in.VirtualIPs[0].Addr().Is4()
}

func (in *Input) paths() Paths {
	if in.Paths == (Paths{}) {
		return DefaultPaths()
	}
	return in.Paths
}
