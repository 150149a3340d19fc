// Package plan decides what one LoadBalancer becomes: from everything read
// beforehand (Inputs), one function (Decide) returns the plan to apply or
// a refusal with its reason. It does no I/O of its own: what other
// LoadBalancers claim and what DNS names resolve to are asked through the
// Inputs' interfaces. The operator gathers the inputs from the cluster and
// applies the plan; `hakeeper render` gathers them from files and prints
// it, so a preview refuses, allocates and names what the operator would.
package plan

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/priority"
	"github.com/hakeeper/hakeeper/internal/render"
	"github.com/hakeeper/hakeeper/internal/resolve"
	"github.com/hakeeper/hakeeper/internal/validation"
)

// Inputs is everything a LoadBalancer's plan depends on.
type Inputs struct {
	LoadBalancer *v1alpha1.LoadBalancer
	// Classes are every LoadBalancerClass (the default is one of them).
	Classes []v1alpha1.LoadBalancerClass
	// Namespace is the LoadBalancer's, whose labels the class selects.
	Namespace *corev1.Namespace
	// Nodes are every node of the cluster, with their addresses.
	Nodes []corev1.Node
	// Reports are the agents' reports, by node.
	Reports map[string]contract.NodeReport
	// PreviousSlots are the server slots last applied, by backend;
	// PreviousVRRP what the keepalived ConfigMap last recorded.
	PreviousSlots map[string][]string
	PreviousVRRP  contract.VRRPRecord
	// Applied is what this process last applied, newer than the status it
	// may not have seen yet (nil: nothing).
	Applied *Allocation
	// Others tells what other LoadBalancers claim.
	Others Others
	// Services are the Services the backends' serviceRefs name, by name,
	// with their EndpointSlices; a name missing is a Service not found.
	Services map[string]ServiceEndpoints
	// Lookup resolves static servers' DNS names.
	Lookup resolve.Lookup
	// HealthBasePort places HAProxy's health frontend (desired.HealthPorts).
	HealthBasePort int
}

// ServiceEndpoints is a Service and its EndpointSlices.
type ServiceEndpoints struct {
	Service *corev1.Service
	Slices  []discoveryv1.EndpointSlice
}

// Others is what the other LoadBalancers claim, as the operator reads it
// from its cache's indexes (or render from nothing).
type Others interface {
	resolve.AddressClaims
	// Contenders are those that share one of self's addresses or its
	// router ID.
	Contenders(self resolve.Claim) []resolve.Claim
	// OnNodes are those on any of nodes.
	OnNodes(nodes []string) []resolve.Claim
	// Load counts, for each of nodes, the others it leads or backs first.
	Load(nodes []string) priority.Load
	// RouterIDUsed tells whether another anywhere uses or asks for id.
	RouterIDUsed(id int32) bool
	// Siblings are the namespace's others of class that count against
	// its share.
	Siblings(class string) []resolve.Tenancy
	// Err is the first read that failed; the plan is not trusted then.
	Err() error
}

// Allocation is what a plan allocates: recorded by the operator until the
// status shows it.
type Allocation struct {
	RouterID   int32
	VirtualIPs []string
	Priorities map[string]int32
}

// Refusal is why a LoadBalancer is not applied: its reason (a Degraded
// reason of the API), the message status shows, and whether a data plane
// it had must go (its class is gone or no longer allows its namespace).
type Refusal struct {
	Reason, Message string
	// Causes are the message's parts, one per error, when there are
	// several (render prints a line each).
	Causes []string
	Revoke bool
	// Class is the class the LoadBalancer uses, when it exists and allows
	// its namespace (status records it), else "".
	Class string
}

func (r *Refusal) Error() string { return r.Reason + ": " + r.Message }

func refuse(reason, message string) *Refusal { return &Refusal{Reason: reason, Message: message} }

// refuseAll refuses for every error of errs, the message as the API
// aggregates them.
func refuseAll(reason string, errs field.ErrorList) *Refusal {
	r := refuse(reason, errs.ToAggregate().Error())
	for _, e := range errs {
		r.Causes = append(r.Causes, e.Error())
	}
	return r
}

// Plan is what to apply.
type Plan struct {
	Class *v1alpha1.LoadBalancerClass
	// Placement is where the data plane runs.
	Placement resolve.Placement
	// Spec is the LoadBalancer's spec with the class's defaults and only
	// the servers it allows.
	Spec       v1alpha1.LoadBalancerSpec
	VirtualIPs []netip.Prefix
	RouterID   int32
	// Nodes are the selected nodes with address and priority.
	Nodes []render.Node
	// Maintenance are the selected nodes to hand the VIPs over from;
	// Pending, those whose agent has not reported what keepalived needs.
	Maintenance, Pending []string
	// Missing are references that do not resolve (applied anyway);
	// Refused, servers and endpoints the class does not allow (left out).
	Missing, Refused []string
	Endpoints        map[string][]render.Endpoint
	HAProxyConfig    []byte
	Servers          contract.ServerSet
	// Keepalived is each ready node's keepalived.conf; ExpectedHash what
	// its agent reports once it runs the plan.
	Keepalived   map[string][]byte
	ExpectedHash map[string]string
	ServersTotal map[string]int32
	VRRPPeers    []string
	Allocation   Allocation
	// RetryAfter asks to decide again without an event to wait for (DNS
	// names), 0 for none.
	RetryAfter time.Duration
}

// NameRecheck is how often servers given by DNS name are resolved again.
const NameRecheck = time.Minute

// Decide returns the plan for in's LoadBalancer, or why it is refused (a
// *Refusal), or the error of a read through Others.
func Decide(ctx context.Context, in *Inputs) (*Plan, error) {
	lb := in.LoadBalancer
	if errs := validation.Spec(&lb.Spec); len(errs) > 0 {
		return nil, refuseAll(v1alpha1.LoadBalancerInvalidSpecReason, errs)
	}
	p := &Plan{}
	className, refusal := classOf(in, p)
	if refusal != nil {
		return nil, refusal
	}
	pools, err := resolve.Pools(p.Class)
	if err != nil {
		return nil, &Refusal{Reason: v1alpha1.LoadBalancerNotAllowedByClassReason, Message: err.Error()}
	}
	if p.Placement, err = resolve.PlacementOf(p.Class, lb); err != nil {
		return nil, &Refusal{Reason: v1alpha1.LoadBalancerNotAllowedByClassReason, Message: err.Error()}
	}
	usable := func(r *Refusal) *Refusal { r.Class = className; return r }

	nodeAddrs := resolve.NodeAddresses(in.Nodes)
	backendRefused := maps.Clone(nodeAddrs)
	for node, report := range in.Reports {
		for _, a := range report.Addresses {
			if addr, err := netip.ParseAddr(a); err == nil {
				if _, listed := backendRefused[addr]; !listed {
					backendRefused[addr] = node
				}
			}
		}
	}
	policy, err := resolve.NewBackendPolicy(p.Class, pools, backendRefused)
	if err != nil {
		return nil, usable(refuse(v1alpha1.LoadBalancerNotAllowedByClassReason, err.Error()))
	}
	admission := resolve.Admit(ctx, p.Class, policy, &lb.Spec, in.Lookup)
	if len(admission.Errors) > 0 {
		return nil, usable(refuseAll(v1alpha1.LoadBalancerNotAllowedByClassReason, admission.Errors))
	}
	if len(admission.LeftOut) > 0 && len(lb.Status.VirtualIPs) == 0 {
		// Never applied: refused. Once applied, a tightened policy takes
		// the servers away instead.
		r := refuse(v1alpha1.LoadBalancerNotAllowedByClassReason, strings.Join(admission.LeftOut, "; "))
		r.Causes = admission.LeftOut
		return nil, usable(r)
	}
	p.Spec = admission.Spec
	p.Refused = append(p.Refused, admission.LeftOut...)
	p.Missing = append(p.Missing, admission.Unresolved...)
	if admission.Named {
		// No event follows a DNS change: look again.
		p.RetryAfter = NameRecheck
	}

	// The namespace's share of the class: the LoadBalancers that precede
	// this one (holders first, then the older) are served first.
	siblings := in.Others.Siblings(p.Class.Name)
	if err := in.Others.Err(); err != nil {
		return nil, err
	}
	if msg := resolve.LimitsOf(p.Class).CheckNamespace(lb.Namespace, TenancyOf(lb), siblings); msg != "" {
		return nil, usable(refuse(v1alpha1.LoadBalancerLimitExceededReason, msg+"; nothing of this LoadBalancer is applied until others in the namespace go"))
	}

	previous := lb.Status.VirtualIPs
	if in.Applied != nil {
		previous = in.Applied.VirtualIPs
	}
	p.VirtualIPs, err = resolve.AssignVirtualIPs(resolve.VIPInput{
		Class: p.Class.Name, Requested: lb.Spec.VirtualIPs, Families: lb.Spec.IPFamilies, Previous: previous,
		Pools: pools, NodeAddresses: ownAddressesAllowed(nodeAddrs, HeldAddrs(lb)), Others: in.Others,
	})
	if e := in.Others.Err(); e != nil {
		return nil, e
	}
	if err != nil {
		reason := v1alpha1.LoadBalancerNotAllowedByClassReason
		var ae *resolve.AddressError
		if errors.As(err, &ae) {
			reason = ae.Reason
		}
		return nil, usable(refuse(reason, err.Error()))
	}

	if err := selectNodes(in, p); err != nil {
		return nil, err
	}
	if refusal, err := settleRouterID(in, p); err != nil || refusal != nil {
		if refusal != nil {
			return nil, usable(refusal)
		}
		return nil, err
	}
	if refusal := endpoints(in, p, policy); refusal != nil {
		return nil, usable(refusal)
	}
	if refusal := renderConfigs(in, p); refusal != nil {
		return nil, usable(refusal)
	}
	return p, nil
}

// classOf finds the LoadBalancer's class and checks its namespace may use
// it. A class gone, or one no longer allowing the namespace, revokes the
// data plane.
func classOf(in *Inputs, p *Plan) (string, *Refusal) {
	lb := in.LoadBalancer
	name, err := resolve.ClassName(lb, in.Classes)
	if err != nil {
		return "", refuse(v1alpha1.LoadBalancerClassNotFoundReason, err.Error())
	}
	i := slices.IndexFunc(in.Classes, func(c v1alpha1.LoadBalancerClass) bool { return c.Name == name })
	if i < 0 {
		return "", &Refusal{Reason: v1alpha1.LoadBalancerClassNotFoundReason, Message: fmt.Sprintf("LoadBalancerClass %s not found", name), Revoke: true}
	}
	p.Class = &in.Classes[i]
	if p.Class.DeletionTimestamp != nil && lb.Status.ClassName != name {
		// Those that hold it keep it until they go; nobody new joins.
		return "", refuse(v1alpha1.LoadBalancerClassNotFoundReason, fmt.Sprintf("LoadBalancerClass %s is being deleted", name))
	}
	allowed, err := resolve.NamespaceAllowed(p.Class, in.Namespace)
	switch {
	case err != nil:
		return "", refuse(v1alpha1.LoadBalancerNotAllowedByClassReason, err.Error())
	case !allowed:
		return "", &Refusal{Reason: v1alpha1.LoadBalancerNotAllowedByClassReason, Revoke: true,
			Message: fmt.Sprintf("LoadBalancerClass %s does not allow namespace %s (its namespaceSelector does not match)", name, lb.Namespace)}
	}
	if msg := resolve.TLSNotAllowed(&lb.Spec, in.Namespace); msg != "" {
		return "", refuse(v1alpha1.LoadBalancerNotAllowedByClassReason, msg)
	}
	return name, nil
}

// selectNodes picks the class's nodes the LoadBalancer narrows to, with
// their address of the VRRP family, stable priorities and reported
// interfaces.
func selectNodes(in *Inputs, p *Plan) error {
	lb := in.LoadBalancer
	selected := resolve.SelectNodes(in.Nodes, p.Placement.NodeSelector, p.Placement.Tolerations)
	names := make([]string, len(selected))
	for i, n := range selected {
		names[i] = n.Name
	}
	load := in.Others.Load(names)
	if err := in.Others.Err(); err != nil {
		return err
	}
	prios := priority.Assign(lb.Spec.VRRP.Priorities, names, in.PreviousVRRP.Priorities, load)
	unicast := p.Spec.VRRP.Mode == v1alpha1.VRRPModeUnicast
	// VRRP runs on the first virtual IP's family.
	ipv4 := p.VirtualIPs[0].Addr().Is4()
	for _, n := range selected {
		addr := resolve.InternalIP(n, ipv4)
		// Every node's VRRP filter accepts adverts only from the nodes'
		// known sources: an IPv4 InternalIP (IPv6 unicast too), or the
		// link-local address the agent reports (IPv6 multicast).
		if addr == "" && (unicast || ipv4) {
			p.Missing = append(p.Missing, fmt.Sprintf("node %s has no InternalIP of the virtual IPs' family, which its VRRP adverts come from", n.Name))
			continue
		}
		iface := p.Class.Spec.DataPlane.Interface
		if iface == "" {
			iface = in.Reports[n.Name].Interface
		}
		linkLocal := in.Reports[n.Name].LinkLocal
		if iface == "" || (!ipv4 && !unicast && linkLocal == "") {
			p.Pending = append(p.Pending, n.Name)
		}
		p.Nodes = append(p.Nodes, render.Node{Name: n.Name, Address: addr, Interface: iface, LinkLocal: linkLocal, Priority: prios[n.Name]})
		if UnderMaintenance(n) {
			p.Maintenance = append(p.Maintenance, n.Name)
		}
	}
	return nil
}

// UnderMaintenance: a cordoned node (kubectl drain cordons first) or one
// annotated for maintenance hands over the VIPs it holds before it goes.
func UnderMaintenance(n *corev1.Node) bool {
	return n.Spec.Unschedulable || n.Annotations[v1alpha1.AnnotationMaintenance] == "true"
}

// settleRouterID refuses a LoadBalancer that claims what an older one
// holds, and settles the router ID and the allocation.
func settleRouterID(in *Inputs, p *Plan) (*Refusal, error) {
	lb := in.LoadBalancer
	addrs := make([]netip.Addr, len(p.VirtualIPs))
	for i, v := range p.VirtualIPs {
		addrs[i] = v.Addr()
	}
	nodeNames := make([]string, len(p.Nodes))
	for i, n := range p.Nodes {
		nodeNames[i] = n.Name
	}
	self := ClaimOf(lb, addrs, nodeNames)
	if in.Applied != nil {
		self.HeldRouterID = in.Applied.RouterID
	}
	if !self.Explicit {
		self.RouterID = 0 // allocated below; an allocation never conflicts
	}
	conflicts := resolve.Conflicts(self, in.Others.Contenders(self))
	if err := in.Others.Err(); err != nil {
		return nil, err
	}
	if len(conflicts) > 0 {
		return refuse(v1alpha1.LoadBalancerConflictReason, strings.Join(conflicts, "; ")+"; nothing of this LoadBalancer is applied until the conflict ends"), nil
	}
	if self.Explicit {
		p.RouterID = self.RouterID
	} else {
		prevID := lb.Status.VirtualRouterID
		if prevID == 0 {
			prevID = in.PreviousVRRP.VirtualRouterID
		}
		if in.Applied != nil {
			prevID = in.Applied.RouterID
		}
		id, err := resolve.AllocateRouterID(self, in.Others.OnNodes(nodeNames), in.Others.RouterIDUsed, prevID)
		if e := in.Others.Err(); e != nil {
			return nil, e
		}
		if err != nil {
			return refuse(v1alpha1.LoadBalancerConflictReason, err.Error()), nil
		}
		p.RouterID = id
	}
	p.Allocation = Allocation{RouterID: p.RouterID, Priorities: map[string]int32{}}
	for _, v := range p.VirtualIPs {
		p.Allocation.VirtualIPs = append(p.Allocation.VirtualIPs, v.String())
	}
	for _, n := range p.Nodes {
		p.Allocation.Priorities[n.Name] = n.Priority
	}
	return nil, nil
}

// endpoints resolves each serviceRef to its ready endpoints the class
// allows, each kept in the server slot it had.
func endpoints(in *Inputs, p *Plan, policy resolve.BackendPolicy) *Refusal {
	p.Endpoints = map[string][]render.Endpoint{}
	for i := range in.LoadBalancer.Spec.Backends {
		b := &in.LoadBalancer.Spec.Backends[i]
		if b.ServiceRef == nil {
			continue
		}
		var ready []render.Endpoint
		se, ok := in.Services[b.ServiceRef.Name]
		switch {
		case !ok || se.Service == nil:
			p.Missing = append(p.Missing, fmt.Sprintf("Service %s not found", b.ServiceRef.Name))
		default:
			portName, ok := resolve.ServicePortName(se.Service, b.ServiceRef.Port)
			if !ok {
				p.Missing = append(p.Missing, fmt.Sprintf("Service %s has no port %s", b.ServiceRef.Name, b.ServiceRef.Port.String()))
				break
			}
			ready = resolve.ReadyEndpoints(se.Slices, portName)
		}
		ready, leftOut := policy.AdmitEndpoints(b, ready)
		p.Refused = append(p.Refused, leftOut...)
		p.Endpoints[b.Name] = resolve.AssignSlots(b.ServiceRef, ready, in.PreviousSlots[b.Name])
	}
	return nil
}

// renderConfigs produces haproxy.cfg and each node's keepalived.conf. A
// node whose interface is unknown gets no keepalived.conf until its agent
// reports.
func renderConfigs(in *Inputs, p *Plan) *Refusal {
	_, haproxyHealth := desired.HealthPorts(in.HealthBasePort, p.RouterID)
	r := render.Input{
		Name: in.LoadBalancer.Name, Namespace: in.LoadBalancer.Namespace, Spec: p.Spec,
		VirtualIPs: p.VirtualIPs, Interface: p.Class.Spec.DataPlane.Interface,
		Endpoints: p.Endpoints, Nodes: p.Nodes, VirtualRouterID: p.RouterID,
		HealthPort: haproxyHealth,
	}
	if g := p.Class.Spec.VRRP.MulticastGroups; g != nil {
		r.MulticastGroups = *g
	}
	cfg, servers, err := render.HAProxyConfigAndServers(r)
	if err != nil {
		return refuse(v1alpha1.LoadBalancerInvalidSpecReason, err.Error())
	}
	p.HAProxyConfig, p.Servers = cfg, servers
	p.VRRPPeers = render.VRRPPeers(r)
	p.Keepalived = map[string][]byte{}
	p.ExpectedHash = map[string]string{}
	for _, n := range p.Nodes {
		if slices.Contains(p.Pending, n.Name) {
			continue
		}
		conf, err := render.KeepalivedConfig(r, n.Name)
		if err != nil {
			return refuse(v1alpha1.LoadBalancerInvalidSpecReason, err.Error())
		}
		p.Keepalived[n.Name] = conf
		p.ExpectedHash[n.Name] = contract.NodeConfigHash(cfg, conf)
	}
	p.ServersTotal = serversTotal(&p.Spec, p.Endpoints)
	return nil
}

// serversTotal counts each backend's servers as rendered: the static
// servers the class let through and the filled slots.
func serversTotal(spec *v1alpha1.LoadBalancerSpec, endpoints map[string][]render.Endpoint) map[string]int32 {
	out := map[string]int32{}
	for _, b := range spec.Backends {
		n := int32(len(b.Servers))
		for _, ep := range endpoints[b.Name] {
			if ep.Address != "" {
				n++
			}
		}
		out[b.Name] = n
	}
	return out
}

// ownAddressesAllowed leaves out of the node addresses those this
// LoadBalancer holds: some providers list every address on a node's
// interfaces, the VIP its keepalived holds included.
func ownAddressesAllowed(nodes map[netip.Addr]string, held []netip.Addr) map[netip.Addr]string {
	if len(held) == 0 {
		return nodes
	}
	out := make(map[netip.Addr]string, len(nodes))
	for a, n := range nodes {
		if !slices.Contains(held, a) {
			out[a] = n
		}
	}
	return out
}
