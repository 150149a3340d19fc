package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/priority"
	"github.com/hakeeper/hakeeper/internal/render"
	"github.com/hakeeper/hakeeper/internal/report"
	"github.com/hakeeper/hakeeper/internal/resolve"
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

	allNodes []corev1.Node
	nodes    []render.Node // selected, with address and priority
	ipv4     bool
	// pending nodes have not reported the interface holding their address.
	pending []string
	// missing lists references that do not resolve (Services, Secrets,
	// node addresses): applied anyway, reported as Degraded.
	missing []string

	routerID int32
	reports  map[string]report.NodeReport

	existingHAProxy, existingKeepalived, existingReport *corev1.ConfigMap

	endpoints     map[string][]render.Endpoint
	haproxyCfg    []byte
	keepalived    map[string][]byte
	expectedHash  map[string]string
	serversTotal  map[string]int32
	daemonSet     *appsv1.DaemonSet
	changedConfig bool
}

func (s *scope) stop(reason, message string) {
	s.stopReason, s.stopMessage = reason, message
}

func (s *scope) stopped() bool { return s.stopReason != "" }

// validate repeats the API's rules and those it cannot express; invalid
// input is reported in status and never retried until the spec changes.
func (r *LoadBalancerReconciler) validate(_ context.Context, s *scope) error {
	if errs := validation.Spec(&s.lb.Spec); len(errs) > 0 {
		s.stop(v1alpha1.LoadBalancerInvalidSpecReason, errs.ToAggregate().Error())
	}
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

// gatherNodes selects the nodes that run the data plane, their addresses,
// stable priorities and reported interfaces.
func (r *LoadBalancerReconciler) gatherNodes(ctx context.Context, s *scope) error {
	lb := s.lb
	names := desired.NamesFor(lb)
	var err error
	if s.existingHAProxy, err = getOptional(ctx, r.Client, client.ObjectKey{Namespace: lb.Namespace, Name: names.HAProxyConfigMap}, &corev1.ConfigMap{}); err != nil {
		return err
	}
	if s.existingKeepalived, err = getOptional(ctx, r.Client, client.ObjectKey{Namespace: lb.Namespace, Name: names.KeepalivedConfigMap}, &corev1.ConfigMap{}); err != nil {
		return err
	}
	if s.existingReport, err = getOptional(ctx, r.Client, client.ObjectKey{Namespace: lb.Namespace, Name: names.ReportConfigMap}, &corev1.ConfigMap{}); err != nil {
		return err
	}
	s.reports = map[string]report.NodeReport{}
	if s.existingReport != nil {
		s.reports = report.Parse(s.existingReport.Data)
	}

	var list corev1.NodeList
	if err := r.Client.List(ctx, &list); err != nil {
		return fmt.Errorf("failed to list nodes: %w", err)
	}
	s.allNodes = list.Items
	vip, _ := validation.ParseVirtualIP(lb.Spec.VirtualIPs[0])
	s.ipv4 = vip.Addr().Is4()
	selected := resolve.SelectNodes(list.Items, lb.Spec.NodeSelector, lb.Spec.Tolerations)
	record := desired.ParseVRRPRecord(s.existingKeepalived)
	nodeNames := make([]string, len(selected))
	for i, n := range selected {
		nodeNames[i] = n.Name
	}
	prios := priority.Assign(lb.Spec.VRRP.Priorities, nodeNames, record.Priorities)
	unicast := lb.Spec.VRRP.Mode == v1alpha1.VRRPModeUnicast
	for _, n := range selected {
		addr := resolve.InternalIP(n, s.ipv4)
		if addr == "" && unicast {
			s.missing = append(s.missing, fmt.Sprintf("node %s has no InternalIP of the virtual IPs' family, so it cannot be a unicast peer", n.Name))
			continue
		}
		iface := lb.Spec.Interface
		if iface == "" {
			iface = s.reports[n.Name].Interface
		}
		if iface == "" {
			s.pending = append(s.pending, n.Name)
		}
		s.nodes = append(s.nodes, render.Node{Name: n.Name, Address: addr, Interface: iface, Priority: prios[n.Name]})
	}
	return nil
}

// claimOf describes what a LoadBalancer holds, for conflict checks.
func claimOf(lb *v1alpha1.LoadBalancer, allNodes []corev1.Node) resolve.Claim {
	var ports []int32
	for _, l := range lb.Spec.Listeners {
		ports = append(ports, l.Port)
	}
	var nodes []string
	for _, n := range resolve.SelectNodes(allNodes, lb.Spec.NodeSelector, lb.Spec.Tolerations) {
		nodes = append(nodes, n.Name)
	}
	c := resolve.NewClaim(lb.Namespace+"/"+lb.Name, lb.CreationTimestamp.Time, lb.Spec.VirtualIPs, ports, nodes)
	c.RouterID = lb.Status.VirtualRouterID
	if id := lb.Spec.VRRP.VirtualRouterID; id != nil {
		c.RouterID, c.Explicit = *id, true
	}
	return c
}

// checkConflicts stops a LoadBalancer that claims what an older one holds,
// and settles the router ID.
func (r *LoadBalancerReconciler) checkConflicts(ctx context.Context, s *scope) error {
	var list v1alpha1.LoadBalancerList
	if err := r.Client.List(ctx, &list); err != nil {
		return fmt.Errorf("failed to list LoadBalancers: %w", err)
	}
	self := claimOf(s.lb, s.allNodes)
	others := make([]resolve.Claim, 0, len(list.Items))
	for i := range list.Items {
		other := &list.Items[i]
		if other.UID == s.lb.UID {
			continue
		}
		claim := claimOf(other, s.allNodes)
		if id, ok := r.allocations.Load(claim.Key); ok && !claim.Explicit {
			claim.RouterID = id.(int32) // newer than the cached status
		}
		others = append(others, claim)
	}
	if !self.Explicit {
		self.RouterID = 0 // allocated below; an allocation never conflicts
	}
	if conflicts := resolve.Conflicts(self, others); len(conflicts) > 0 {
		s.stop(v1alpha1.LoadBalancerConflictReason, strings.Join(conflicts, "; ")+"; nothing of this LoadBalancer is applied until the conflict ends")
		return nil
	}
	if self.Explicit {
		s.routerID = self.RouterID
		return nil
	}
	previous := s.lb.Status.VirtualRouterID
	if previous == 0 {
		previous = desired.ParseVRRPRecord(s.existingKeepalived).VirtualRouterID
	}
	if id, ok := r.allocations.Load(self.Key); ok {
		previous = id.(int32)
	}
	id, err := resolve.AllocateRouterID(self, others, previous)
	if err != nil {
		s.stop(v1alpha1.LoadBalancerConflictReason, err.Error())
		return nil
	}
	s.routerID = id
	r.allocations.Store(self.Key, id)
	return nil
}

// gatherEndpoints resolves each serviceRef to its ready endpoints, each kept
// in the server slot it had.
func (r *LoadBalancerReconciler) gatherEndpoints(ctx context.Context, s *scope) error {
	s.endpoints = map[string][]render.Endpoint{}
	previous := desired.ParseSlots(s.existingHAProxy)
	for i := range s.lb.Spec.Backends {
		b := &s.lb.Spec.Backends[i]
		if b.ServiceRef == nil {
			continue
		}
		ready, err := r.readyEndpoints(ctx, s, b.ServiceRef)
		if err != nil {
			return err
		}
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

// checkSecrets reports TLS Secrets that do not exist. Only their metadata
// is read: the operator never needs the keys themselves.
func (r *LoadBalancerReconciler) checkSecrets(ctx context.Context, s *scope) error {
	for _, name := range desired.TLSSecretNames(s.lb) {
		meta := &metav1.PartialObjectMetadata{}
		meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
		err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: s.lb.Namespace, Name: name}, meta)
		switch {
		case apierrors.IsNotFound(err):
			s.missing = append(s.missing, fmt.Sprintf("TLS Secret %s not found", name))
		case err != nil:
			return fmt.Errorf("failed to read Secret %s: %w", name, err)
		}
	}
	return nil
}

// render produces haproxy.cfg and each node's keepalived.conf. A node whose
// interface is unknown gets no keepalived.conf until its agent reports.
func (r *LoadBalancerReconciler) render(_ context.Context, s *scope) error {
	in := render.Input{
		Name: s.lb.Name, Namespace: s.lb.Namespace, Spec: s.lb.Spec,
		Endpoints: s.endpoints, Nodes: s.nodes, VirtualRouterID: s.routerID,
	}
	cfg, err := render.HAProxyConfig(in)
	if err != nil {
		s.stop(v1alpha1.LoadBalancerInvalidSpecReason, err.Error())
		return nil
	}
	s.haproxyCfg = cfg
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
		s.expectedHash[n.Name] = desired.NodeConfigHash(cfg, conf)
	}
	s.serversTotal = serversTotal(s.lb, s.endpoints)
	return nil
}

func serversTotal(lb *v1alpha1.LoadBalancer, endpoints map[string][]render.Endpoint) map[string]int32 {
	out := map[string]int32{}
	for _, b := range lb.Spec.Backends {
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
