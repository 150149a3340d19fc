package render

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
)

// TrackName is the vrrp_track_file keepalived watches. The agent writes 0
// there while HAProxy answers and anything else when it does not; with
// weight 0 a non-zero value puts the node in FAULT at once, so it gives up
// the virtual IPs without waiting for a polling script.
const TrackName = "haproxy"

// NoServersTrackName is the vrrp_track_file the agent sets while HAProxy
// runs but no backend has a server up. It lowers the node's claim instead
// of removing it (weight holdWeight, down to priority 1): the VIP goes to
// a node that still sees servers up if there is one, and when none does
// it stays on one node, whose HAProxy answers 503, rather than on none,
// where clients get no answer at all. (keepalived clamps each tracked
// file's weight at -254 for FAULT on its own and the sum of all to a
// priority of 1, so this file and the preempt hold together still leave
// the node at 1, not in FAULT.)
const NoServersTrackName = "no_servers"

// MaintenanceTrackName is the vrrp_track_file the agent sets while its
// node is cordoned or annotated for maintenance: the node drops to
// priority 1, so a backup with preemption takes the VIP over at once, a
// planned move (the node's HAProxy still serves while it goes), before the
// node is drained or stopped. It stays a backup of last resort.
const MaintenanceTrackName = "maintenance"

// HoldTrackName is the vrrp_track_file that implements the preempt delay.
// keepalived 2.2.7's own preempt_delay also applies when the master fails
// (a backup then waits the whole delay before taking over, measured here:
// 5 s of delay, 5.3 s of outage). Instead, the agent writes 1 to this file
// until the node's HAProxy has been healthy for the delay; with weight
// -253 that lowers the node to priority 1, so it stays a backup and does
// not preempt, yet can still take over if it is the last node standing.
const HoldTrackName = "preempt_hold"

// holdWeight takes any priority (1 to 254) down to keepalived's floor of 1
// without reaching -254, which would mean FAULT.
const holdWeight = -253

// PreemptHoldSeconds is the preempt delay the agents enforce: 0 when
// preemption is off or immediate.
func PreemptHoldSeconds(v *v1alpha1.VRRPSpec) int32 {
	if v.Preemption == v1alpha1.PreemptionDisabled {
		return 0
	}
	return v1alpha1.Int32Or(v.PreemptDelaySeconds, v1alpha1.DefaultPreemptDelaySeconds)
}

type keepalivedModel struct {
	Name, Namespace  string
	Node             string
	Paths            contract.Paths
	Version          int32
	Instance         string
	Interface        string
	VirtualRouterID  int32
	Priority         int32
	AdvertInterval   string
	Preempt          bool
	PreemptHold      bool
	HoldTrack        string
	HoldWeight       int32
	Unicast          bool
	MulticastGroup   string
	MulticastIPv6    bool
	UnicastSource    string
	UnicastPeers     []string
	VirtualIPs       []string
	ExcludedIPs      []string
	TrackFile        string
	NoServersTrack   string
	MaintenanceTrack string
}

// KeepalivedConfig renders keepalived.conf for one node. Nodes differ only
// in priority, interface and unicast addresses.
func KeepalivedConfig(in Input, node string) ([]byte, error) {
	if errs := Validate(&in); len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	i := slices.IndexFunc(in.Nodes, func(n Node) bool { return n.Name == node })
	if i < 0 {
		return nil, fmt.Errorf("node %q does not run this load balancer", node)
	}
	if in.Interface == "" && in.Nodes[i].Interface == "" {
		return nil, fmt.Errorf("node %q: no interface: the class names none and the node has not reported the interface holding its address", node)
	}
	return execute("keepalived.conf.tmpl", newKeepalivedModel(&in, i))
}

func newKeepalivedModel(in *Input, self int) keepalivedModel {
	v := &in.Spec.VRRP
	node := in.Nodes[self]
	m := keepalivedModel{
		Name:             in.Name,
		Namespace:        in.Namespace,
		Node:             node.Name,
		Paths:            in.paths(),
		Version:          v1alpha1.Int32Or(v.Version, v1alpha1.DefaultVRRPVersion),
		Instance:         InstanceName(in.Namespace, in.Name),
		Interface:        in.Interface,
		VirtualRouterID:  in.VirtualRouterID,
		Priority:         node.Priority,
		AdvertInterval:   seconds(v1alpha1.Int32Or(v.AdvertIntervalMilliseconds, v1alpha1.DefaultAdvertIntervalMilliseconds)),
		Preempt:          v.Preemption != v1alpha1.PreemptionDisabled,
		PreemptHold:      PreemptHoldSeconds(v) > 0,
		HoldTrack:        HoldTrackName,
		HoldWeight:       holdWeight,
		Unicast:          v.Mode == v1alpha1.VRRPModeUnicast,
		MulticastGroup:   in.MulticastGroup(),
		MulticastIPv6:    !in.IPv4(),
		TrackFile:        TrackName,
		NoServersTrack:   NoServersTrackName,
		MaintenanceTrack: MaintenanceTrackName,
	}
	if m.Interface == "" {
		m.Interface = node.Interface
	}
	if m.Unicast {
		m.UnicastSource = node.Address
		for i, peer := range in.Nodes {
			if i != self {
				m.UnicastPeers = append(m.UnicastPeers, peer.Address)
			}
		}
		slices.Sort(m.UnicastPeers)
	}
	m.VirtualIPs, m.ExcludedIPs = splitAdvertised(in.VirtualIPs, in.IPv4())
	return m
}

// InstanceName is the vrrp_instance name, unique per LoadBalancer.
func InstanceName(namespace, name string) string {
	return "hk_" + namespace + "_" + name
}

// splitAdvertised puts the first virtual IP of the instance's family in
// the VRRP instance, which advertises it; every other one goes to
// virtual_ipaddress_excluded, which keepalived moves with the instance
// without advertising it (an instance carries one address family). A
// backup discards adverts whose address list differs from its own
// ("received an unexpected ip number count"), and the nodes reload one
// after another: with every VIP advertised, adding or removing one made
// the backups that had reloaded first stop hearing the master and take
// over (the lab's CI run saw 18 transitions on each backup over 13 such
// changes). With one advertised address only replacing that one changes
// the adverts, and skip_check_adv_addr covers it for a master already
// heard.
func splitAdvertised(vips []netip.Prefix, ipv4 bool) (advertised, excluded []string) {
	for _, prefix := range vips {
		if prefix.Addr().Is4() == ipv4 && len(advertised) == 0 {
			advertised = append(advertised, prefix.String())
		} else {
			excluded = append(excluded, prefix.String())
		}
	}
	return advertised, excluded
}

// seconds prints milliseconds as keepalived's decimal seconds (100 -> 0.1).
func seconds(ms int32) string {
	return strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64)
}

// VRRPPeers are the addresses the nodes send VRRP adverts from, which
// every node's filter accepts adverts for the router ID from (see
// internal/vrrpfilter): the nodes' InternalIPs for IPv4 and for IPv6
// unicast, their interfaces' link-local addresses for IPv6 multicast
// (keepalived sends those from the link-local address, as VRRPv3
// requires). A node whose address is not known yet is left out: its
// keepalived.conf is not rendered either (see MissingVRRPSource).
func VRRPPeers(in Input) []string {
	var out []string
	for _, n := range in.Nodes {
		if a := vrrpSource(&in, n); a != "" {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func vrrpSource(in *Input, n Node) string {
	if !in.IPv4() && in.Spec.VRRP.Mode != v1alpha1.VRRPModeUnicast {
		return n.LinkLocal
	}
	return n.Address
}
