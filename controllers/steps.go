package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/priority"
	"github.com/hakeeper/hakeeper/internal/render"
	"github.com/hakeeper/hakeeper/internal/resolve"
	"github.com/hakeeper/hakeeper/internal/rollout"
	"github.com/hakeeper/hakeeper/internal/validation"
)

// scope carries one reconcile's facts from step to step.
type scope struct {
	lb *v1alpha1.LoadBalancer

	// stopReason is set when the LoadBalancer must not be applied: invalid
	// or in conflict. Nothing is written but status, and the last applied
	// config keeps serving.
	stopReason  string
	stopMessage string
	// retryAfter asks for another reconcile without an event to wait for.
	retryAfter time.Duration
	// splitBrainPending: several nodes hold a virtual IP, but not yet for
	// splitBrainAfter.
	splitBrainPending bool

	class *v1alpha1.LoadBalancerClass
	// classes are all of them, to tell another LoadBalancer's.
	classes []v1alpha1.LoadBalancerClass
	// revoked: the class no longer allows the LoadBalancer's namespace, or
	// is gone. Once status says so, its data plane is deleted and what it
	// held released.
	revoked bool
	// released: the revoked LoadBalancer's data plane is gone.
	released bool
	// siblings are the namespace's other LoadBalancers of the class that
	// are not refused for their spec, for its limits.
	siblings []resolve.Tenancy
	// backendRefused are the addresses no server may have: the nodes'
	// (listed in Node objects, and reported by the agents), each with its
	// node.
	backendRefused map[netip.Addr]string
	// classUsable: the class exists and allows this namespace; only then
	// is it recorded in status (a default class that refuses the
	// namespace must not pin the LoadBalancer to it).
	classUsable bool
	placement   resolve.Placement
	pools       []resolve.Pool
	// spec is the LoadBalancer's spec with the class's defaults.
	spec       v1alpha1.LoadBalancerSpec
	nodeAddrs  map[netip.Addr]string
	policy     resolve.BackendPolicy
	virtualIPs []netip.Prefix
	// claims answers what other LoadBalancers hold and ask for.
	claims *claims

	allNodes []corev1.Node
	nodes    []render.Node // selected, with address and priority
	// maintenance are the selected nodes to hand the VIPs over from:
	// cordoned, or annotated for maintenance.
	maintenance []string
	// pending nodes have not reported the interface holding their address
	// (or, for IPv6 multicast VRRP, its link-local address).
	pending []string
	// vrrpPeers are the addresses the nodes send VRRP adverts from.
	vrrpPeers []string
	// missing lists references that do not resolve (Services, node
	// addresses): applied anyway, reported as Degraded.
	missing []string
	// refused lists endpoints the class does not allow: left out,
	// reported as Degraded.
	refused []string

	routerID int32
	reports  map[string]contract.NodeReport

	existingHAProxy, existingKeepalived, existingReport *corev1.ConfigMap

	endpoints    map[string][]render.Endpoint
	haproxyCfg   []byte
	servers      contract.ServerSet
	keepalived   map[string][]byte
	expectedHash map[string]string
	serversTotal map[string]int32
	daemonSet    *appsv1.DaemonSet
	// desiredDaemonSet is the DaemonSet to apply; rollout is the next
	// step of replacing the pods made from an older template.
	desiredDaemonSet *appsv1.DaemonSet
	rollout          rollout.Plan
}

func (s *scope) stop(reason, message string) {
	s.stopReason, s.stopMessage = reason, message
}

func (s *scope) stopped() bool { return s.stopReason != "" }

// classOf is the class another LoadBalancer uses, or "" when it has none.
func (s *scope) classOf(lb *v1alpha1.LoadBalancer) string {
	name, _ := resolve.ClassName(lb, s.classes)
	return name
}

// validate repeats the API's rules and those it cannot express; invalid
// input is reported in status and never retried until the spec changes.
func (r *LoadBalancerReconciler) validate(_ context.Context, s *scope) error {
	if errs := validation.Spec(&s.lb.Spec); len(errs) > 0 {
		s.stop(v1alpha1.LoadBalancerInvalidSpecReason, errs.ToAggregate().Error())
	}
	return nil
}

// gatherClass finds the LoadBalancer's class and checks the namespace may
// use it. Without a usable class nothing is applied; a LoadBalancer whose
// namespace the class no longer allows, or whose class is gone, loses its
// data plane (revoke).
func (r *LoadBalancerReconciler) gatherClass(ctx context.Context, s *scope) error {
	var classes v1alpha1.LoadBalancerClassList
	if err := r.Client.List(ctx, &classes); err != nil {
		return fmt.Errorf("failed to list LoadBalancerClasses: %w", err)
	}
	name, err := resolve.ClassName(s.lb, classes.Items)
	if err != nil {
		s.stop(v1alpha1.LoadBalancerClassNotFoundReason, err.Error())
		return nil
	}
	i := slices.IndexFunc(classes.Items, func(c v1alpha1.LoadBalancerClass) bool { return c.Name == name })
	if i < 0 {
		s.stop(v1alpha1.LoadBalancerClassNotFoundReason, fmt.Sprintf("LoadBalancerClass %s not found", name))
		s.revoked = true
		return nil
	}
	s.class, s.classes = &classes.Items[i], classes.Items
	if s.class.DeletionTimestamp != nil && s.lb.Status.ClassName != name {
		// Those that hold it keep it until they go; nobody new joins.
		s.stop(v1alpha1.LoadBalancerClassNotFoundReason, fmt.Sprintf("LoadBalancerClass %s is being deleted", name))
		return nil
	}
	ns := &corev1.Namespace{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: s.lb.Namespace}, ns); err != nil {
		return fmt.Errorf("failed to read namespace %s: %w", s.lb.Namespace, err)
	}
	allowed, err := resolve.NamespaceAllowed(s.class, ns)
	switch {
	case err != nil:
		s.stop(v1alpha1.LoadBalancerNotAllowedByClassReason, err.Error())
		return nil
	case !allowed:
		s.stop(v1alpha1.LoadBalancerNotAllowedByClassReason, fmt.Sprintf("LoadBalancerClass %s does not allow namespace %s (its namespaceSelector does not match)", name, s.lb.Namespace))
		s.revoked = true
		return nil
	}
	if msg := resolve.TLSNotAllowed(&s.lb.Spec, ns); msg != "" {
		s.stop(v1alpha1.LoadBalancerNotAllowedByClassReason, msg)
		return nil
	}
	if s.pools, err = resolve.Pools(s.class); err != nil {
		s.stop(v1alpha1.LoadBalancerNotAllowedByClassReason, err.Error())
		return nil
	}
	if s.placement, err = resolve.PlacementOf(s.class, s.lb); err != nil {
		s.stop(v1alpha1.LoadBalancerNotAllowedByClassReason, err.Error())
		return nil
	}
	s.classUsable = true
	return nil
}

// getOptional reads an object from the cache; a missing one is nil.
func getOptional[T client.Object](ctx context.Context, c client.Client, key client.ObjectKey, obj T) (T, error) {
	var zero T
	if err := c.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return zero, nil
		}
		return zero, err
	}
	return obj, nil
}

// gatherNodes reads what the data plane reported and every node with its
// addresses.
func (r *LoadBalancerReconciler) gatherNodes(ctx context.Context, s *scope) error {
	lb := s.lb
	names := desired.NamesFor(lb)
	var err error
	ns := r.DataPlane.Namespace
	if s.existingHAProxy, err = getOptional(ctx, r.Client, client.ObjectKey{Namespace: ns, Name: names.HAProxyConfigMap}, &corev1.ConfigMap{}); err != nil {
		return err
	}
	if s.existingKeepalived, err = getOptional(ctx, r.Client, client.ObjectKey{Namespace: ns, Name: names.KeepalivedConfigMap}, &corev1.ConfigMap{}); err != nil {
		return err
	}
	if s.existingReport, err = getOptional(ctx, r.Client, client.ObjectKey{Namespace: ns, Name: names.ReportConfigMap}, &corev1.ConfigMap{}); err != nil {
		return err
	}
	s.reports = map[string]contract.NodeReport{}
	if s.existingReport != nil {
		s.reports = contract.ParseReports(s.existingReport.Data)
	}

	// Read in the cache, not copied: every node is looked at, nothing
	// written.
	var list corev1.NodeList
	if err := r.Client.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("failed to list nodes: %w", err)
	}
	s.allNodes = list.Items
	s.nodeAddrs = resolve.NodeAddresses(list.Items)
	s.backendRefused = maps.Clone(s.nodeAddrs)
	for node, report := range s.reports {
		for _, a := range report.Addresses {
			if addr, err := netip.ParseAddr(a); err == nil {
				if _, listed := s.backendRefused[addr]; !listed {
					s.backendRefused[addr] = node
				}
			}
		}
	}
	return nil
}

// selectNodes picks the class's nodes the LoadBalancer narrows to, with
// their address of the VRRP family, stable priorities and reported
// interfaces.
func (r *LoadBalancerReconciler) selectNodes(_ context.Context, s *scope) error {
	lb := s.lb
	selected := resolve.SelectNodes(s.allNodes, s.placement.NodeSelector, s.placement.Tolerations)
	record := contract.ParseVRRPRecord(s.existingKeepalived)
	nodeNames := make([]string, len(selected))
	for i, n := range selected {
		nodeNames[i] = n.Name
	}
	prios := priority.Assign(lb.Spec.VRRP.Priorities, nodeNames, record.Priorities, s.claims.load(nodeNames))
	if s.claims.err != nil {
		return s.claims.err
	}
	unicast := s.spec.VRRP.Mode == v1alpha1.VRRPModeUnicast
	// VRRP runs on the first virtual IP's family.
	ipv4 := s.virtualIPs[0].Addr().Is4()
	for _, n := range selected {
		addr := resolve.InternalIP(n, ipv4)
		// Every node's VRRP filter accepts adverts only from the nodes'
		// known sources: an IPv4 InternalIP (IPv6 unicast too), or the
		// link-local address the agent reports (IPv6 multicast).
		if addr == "" && (unicast || ipv4) {
			s.missing = append(s.missing, fmt.Sprintf("node %s has no InternalIP of the virtual IPs' family, which its VRRP adverts come from", n.Name))
			continue
		}
		iface := s.class.Spec.DataPlane.Interface
		if iface == "" {
			iface = s.reports[n.Name].Interface
		}
		linkLocal := s.reports[n.Name].LinkLocal
		if iface == "" || (!ipv4 && !unicast && linkLocal == "") {
			s.pending = append(s.pending, n.Name)
		}
		s.nodes = append(s.nodes, render.Node{Name: n.Name, Address: addr, Interface: iface, LinkLocal: linkLocal, Priority: prios[n.Name]})
		if underMaintenance(n) {
			s.maintenance = append(s.maintenance, n.Name)
		}
	}
	return nil
}

// underMaintenance: a cordoned node (kubectl drain cordons first) or one
// annotated for maintenance hands over the VIPs it holds before it goes.
func underMaintenance(n *corev1.Node) bool {
	return n.Spec.Unschedulable || n.Annotations[v1alpha1.AnnotationMaintenance] == "true"
}

// requestedAddrs are the addresses a LoadBalancer's spec asks for.
func requestedAddrs(lb *v1alpha1.LoadBalancer) []netip.Addr {
	var out []netip.Addr
	for _, v := range lb.Spec.VirtualIPs {
		if a, err := netip.ParseAddr(v); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// heldAddrs are the addresses a LoadBalancer was last applied with: its
// data plane may serve them whatever its spec says now.
func heldAddrs(lb *v1alpha1.LoadBalancer) []netip.Addr {
	var out []netip.Addr
	for _, v := range lb.Status.VirtualIPs {
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out
}

// claimedAddrs are the addresses a LoadBalancer holds or asks for.
func claimedAddrs(lb *v1alpha1.LoadBalancer) []netip.Addr {
	out := heldAddrs(lb)
	for _, a := range requestedAddrs(lb) {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// refusedForItsSpec tells whether a LoadBalancer is stopped because of
// what it asks for: such a request claims nothing.
func refusedForItsSpec(lb *v1alpha1.LoadBalancer) bool {
	c := meta.FindStatusCondition(lb.Status.Conditions, v1alpha1.LoadBalancerDegradedCondition)
	if c == nil || c.Status != metav1.ConditionTrue || lb.Status.ObservedGeneration != lb.Generation {
		return false
	}
	switch c.Reason {
	case v1alpha1.LoadBalancerInvalidSpecReason, v1alpha1.LoadBalancerClassNotFoundReason, v1alpha1.LoadBalancerNotAllowedByClassReason,
		v1alpha1.LoadBalancerAddressUnavailableReason, v1alpha1.LoadBalancerConflictReason, v1alpha1.LoadBalancerLimitExceededReason:
		return true
	}
	return false
}

// refusedFor tells whether a LoadBalancer's current generation is
// refused with reason.
func refusedFor(lb *v1alpha1.LoadBalancer, reason string) bool {
	c := meta.FindStatusCondition(lb.Status.Conditions, v1alpha1.LoadBalancerDegradedCondition)
	return c != nil && c.Status == metav1.ConditionTrue && c.Reason == reason && lb.Status.ObservedGeneration == lb.Generation
}

// checkClassPolicy refuses what the class does not allow in the spec (its
// limits, kinds of servers, slots and health-check intervals), and settles
// the spec to render: the class's defaults, and static servers each at an
// address the class allows, names resolved; the others are left out and
// reported.
func (r *LoadBalancerReconciler) checkClassPolicy(ctx context.Context, s *scope) error {
	var err error
	if s.policy, err = resolve.NewBackendPolicy(s.class, s.pools, s.backendRefused); err != nil {
		s.stop(v1alpha1.LoadBalancerNotAllowedByClassReason, err.Error())
		return nil
	}
	admission := resolve.Admit(ctx, s.class, s.policy, &s.lb.Spec, r.lookup)
	if len(admission.Errors) > 0 {
		s.stop(v1alpha1.LoadBalancerNotAllowedByClassReason, admission.Errors.ToAggregate().Error())
		return nil
	}
	if len(admission.LeftOut) > 0 && len(s.lb.Status.VirtualIPs) == 0 {
		// Never applied: refused, as `hakeeper render` refuses it. Once
		// applied, a tightened policy takes the servers away instead.
		s.stop(v1alpha1.LoadBalancerNotAllowedByClassReason, strings.Join(admission.LeftOut, "; "))
		return nil
	}
	s.spec = admission.Spec
	s.refused = append(s.refused, admission.LeftOut...)
	s.missing = append(s.missing, admission.Unresolved...)
	if admission.Named {
		// No event follows a DNS change: look again.
		s.retryAfter = nameRecheck
	}
	return nil
}

// nameRecheck is how often the servers given by DNS name are resolved
// again.
const nameRecheck = time.Minute

// checkNamespaceLimits refuses a LoadBalancer beyond its namespace's share
// of the class: the LoadBalancers that precede it (holders first, then the
// older) are served first.
func (r *LoadBalancerReconciler) checkNamespaceLimits(_ context.Context, s *scope) error {
	self := tenancyOf(s.lb)
	if msg := resolve.LimitsOf(s.class).CheckNamespace(s.lb.Namespace, self, s.siblings); msg != "" {
		s.stop(v1alpha1.LoadBalancerLimitExceededReason, msg+"; nothing of this LoadBalancer is applied until others in the namespace go")
	}
	return nil
}

// tenancyOf is what a LoadBalancer takes of its namespace's share: the
// virtual IPs it holds, or asks for (one per family, at least one).
func tenancyOf(lb *v1alpha1.LoadBalancer) resolve.Tenancy {
	vips := int32(max(len(lb.Spec.VirtualIPs), len(lb.Spec.IPFamilies), 1))
	if held := int32(len(lb.Status.VirtualIPs)); held > vips {
		vips = held
	}
	return resolve.Tenancy{Key: keyOf(lb), Created: lb.CreationTimestamp.Time, Holds: len(lb.Status.VirtualIPs) > 0, VirtualIPs: vips}
}

// claimOf describes what a LoadBalancer holds and asks for, for conflict
// checks: the addresses it asks for, those it holds, its ports, nodes and
// router ID.
func claimOf(lb *v1alpha1.LoadBalancer, vips []netip.Addr, nodes []string) resolve.Claim {
	var ports []int32
	for _, l := range lb.Spec.Listeners {
		ports = append(ports, l.Port)
	}
	c := resolve.NewClaim(keyOf(lb), lb.CreationTimestamp.Time, vips, ports, nodes)
	c.Held = heldAddrs(lb)
	c.RouterID, c.HeldRouterID = lb.Status.VirtualRouterID, lb.Status.VirtualRouterID
	if id := lb.Spec.VRRP.VirtualRouterID; id != nil {
		c.RouterID, c.Explicit = *id, true
	}
	return c
}

// gatherClaims prepares the questions about what other LoadBalancers hold
// or ask for (answered from indexes as allocation and conflicts ask), and
// reads the namespace's share of the class.
func (r *LoadBalancerReconciler) gatherClaims(ctx context.Context, s *scope) error {
	s.claims = r.claimsFor(ctx, s.lb, s.classes)
	s.siblings = s.claims.siblings(s.class.Name)
	return s.claims.err
}

// assignVirtualIPs settles the virtual IPs: requested and checked against
// the class's pools and every node's addresses, or kept, or allocated from
// the pools.
func (r *LoadBalancerReconciler) assignVirtualIPs(_ context.Context, s *scope) error {
	previous := s.lb.Status.VirtualIPs
	if a, ok := r.allocations.get(keyOf(s.lb)); ok {
		previous = a.virtualIPs
	}
	vips, err := resolve.AssignVirtualIPs(resolve.VIPInput{
		Class: s.class.Name, Requested: s.lb.Spec.VirtualIPs, Families: s.lb.Spec.IPFamilies, Previous: previous,
		Pools: s.pools, NodeAddresses: ownAddressesAllowed(s.nodeAddrs, heldAddrs(s.lb)), Others: s.claims,
	})
	if s.claims.err != nil {
		return s.claims.err
	}
	if err != nil {
		reason := v1alpha1.LoadBalancerNotAllowedByClassReason
		var ae *resolve.AddressError
		if errors.As(err, &ae) {
			reason = ae.Reason
		}
		s.stop(reason, err.Error())
		return nil
	}
	s.virtualIPs = vips
	return nil
}

func keyOf(lb *v1alpha1.LoadBalancer) string { return lb.Namespace + "/" + lb.Name }

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

// checkConflicts stops a LoadBalancer that claims what an older one holds,
// settles the router ID, and records this reconcile's allocations.
func (r *LoadBalancerReconciler) checkConflicts(_ context.Context, s *scope) error {
	addrs := make([]netip.Addr, len(s.virtualIPs))
	for i, v := range s.virtualIPs {
		addrs[i] = v.Addr()
	}
	nodeNames := make([]string, len(s.nodes))
	for i, n := range s.nodes {
		nodeNames[i] = n.Name
	}
	self := claimOf(s.lb, addrs, nodeNames)
	if a, ok := r.allocations.get(self.Key); ok {
		self.HeldRouterID = a.routerID
	}
	if !self.Explicit {
		self.RouterID = 0 // allocated below; an allocation never conflicts
	}
	conflicts := resolve.Conflicts(self, s.claims.contenders(self))
	if s.claims.err != nil {
		return s.claims.err
	}
	if len(conflicts) > 0 {
		s.stop(v1alpha1.LoadBalancerConflictReason, strings.Join(conflicts, "; ")+"; nothing of this LoadBalancer is applied until the conflict ends")
		return nil
	}
	if self.Explicit {
		s.routerID = self.RouterID
	} else {
		prevID := s.lb.Status.VirtualRouterID
		if prevID == 0 {
			prevID = contract.ParseVRRPRecord(s.existingKeepalived).VirtualRouterID
		}
		if a, ok := r.allocations.get(self.Key); ok {
			prevID = a.routerID
		}
		id, err := resolve.AllocateRouterID(self, plain(s.claims.onNodes(nodeNames)), s.claims.routerIDUsed, prevID)
		if s.claims.err != nil {
			return s.claims.err
		}
		if err != nil {
			s.stop(v1alpha1.LoadBalancerConflictReason, err.Error())
			return nil
		}
		s.routerID = id
	}
	held := make([]string, len(s.virtualIPs))
	for i, v := range s.virtualIPs {
		held[i] = v.String()
	}
	priorities := make(map[string]int32, len(s.nodes))
	for _, n := range s.nodes {
		priorities[n.Name] = n.Priority
	}
	r.allocations.set(self.Key, allocation{routerID: s.routerID, virtualIPs: held, priorities: priorities})
	return nil
}

// gatherEndpoints resolves each serviceRef to its ready endpoints, each kept
// in the server slot it had.
func (r *LoadBalancerReconciler) gatherEndpoints(ctx context.Context, s *scope) error {
	s.endpoints = map[string][]render.Endpoint{}
	previous := contract.ParseSlots(s.existingHAProxy)
	for i := range s.lb.Spec.Backends {
		b := &s.lb.Spec.Backends[i]
		if b.ServiceRef == nil {
			continue
		}
		ready, err := r.readyEndpoints(ctx, s, b.ServiceRef)
		if err != nil {
			return err
		}
		ready, leftOut := s.policy.AdmitEndpoints(b, ready)
		s.refused = append(s.refused, leftOut...)
		s.endpoints[b.Name] = resolve.AssignSlots(b.ServiceRef, ready, previous[b.Name])
	}
	return nil
}

func (r *LoadBalancerReconciler) readyEndpoints(ctx context.Context, s *scope, ref *v1alpha1.ServiceReference) ([]render.Endpoint, error) {
	ns := s.lb.Namespace
	svc, err := getOptional(ctx, r.Client, client.ObjectKey{Namespace: ns, Name: ref.Name}, &corev1.Service{})
	if err != nil {
		return nil, err
	}
	if svc == nil {
		s.missing = append(s.missing, fmt.Sprintf("Service %s not found", ref.Name))
		return nil, nil
	}
	portName, ok := resolve.ServicePortName(svc, ref.Port)
	if !ok {
		s.missing = append(s.missing, fmt.Sprintf("Service %s has no port %s", ref.Name, ref.Port.String()))
		return nil, nil
	}
	var slices discoveryv1.EndpointSliceList
	if err := r.Client.List(ctx, &slices, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelServiceName: ref.Name}); err != nil {
		return nil, fmt.Errorf("failed to list EndpointSlices of %s: %w", ref.Name, err)
	}
	return resolve.ReadyEndpoints(slices.Items, portName), nil
}

// render produces haproxy.cfg and each node's keepalived.conf. A node whose
// interface is unknown gets no keepalived.conf until its agent reports.
func (r *LoadBalancerReconciler) render(_ context.Context, s *scope) error {
	_, haproxyHealth := desired.HealthPorts(r.DataPlane.HealthBasePort, s.routerID)
	in := render.Input{
		Name: s.lb.Name, Namespace: s.lb.Namespace, Spec: s.spec,
		VirtualIPs: s.virtualIPs, Interface: s.class.Spec.DataPlane.Interface,
		Endpoints: s.endpoints, Nodes: s.nodes, VirtualRouterID: s.routerID,
		HealthPort: haproxyHealth,
	}
	if g := s.class.Spec.VRRP.MulticastGroups; g != nil {
		in.MulticastGroups = *g
	}
	cfg, servers, err := render.HAProxyConfigAndServers(in)
	if err != nil {
		s.stop(v1alpha1.LoadBalancerInvalidSpecReason, err.Error())
		return nil
	}
	s.haproxyCfg, s.servers = cfg, servers
	s.vrrpPeers = render.VRRPPeers(in)
	s.keepalived = map[string][]byte{}
	s.expectedHash = map[string]string{}
	for _, n := range s.nodes {
		if slices.Contains(s.pending, n.Name) {
			continue
		}
		conf, err := render.KeepalivedConfig(in, n.Name)
		if err != nil {
			s.stop(v1alpha1.LoadBalancerInvalidSpecReason, err.Error())
			return nil
		}
		s.keepalived[n.Name] = conf
		s.expectedHash[n.Name] = contract.NodeConfigHash(cfg, conf)
	}
	s.serversTotal = serversTotal(&s.spec, s.endpoints)
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

func slotKeys(endpoints map[string][]render.Endpoint) map[string][]string {
	out := map[string][]string{}
	for backend, eps := range endpoints {
		keys := make([]string, len(eps))
		for i, ep := range eps {
			keys[i] = resolve.SlotKey(ep)
		}
		out[backend] = keys
	}
	return out
}

func priorities(nodes []render.Node) map[string]int32 {
	out := make(map[string]int32, len(nodes))
	for _, n := range nodes {
		out[n.Name] = n.Priority
	}
	return out
}
