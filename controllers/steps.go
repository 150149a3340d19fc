package controllers

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/plan"
	"github.com/hakeeper/hakeeper/internal/render"
	"github.com/hakeeper/hakeeper/internal/resolve"
	"github.com/hakeeper/hakeeper/internal/rollout"
)

// scope carries one reconcile: what was read (in), what was decided (the
// plan, or why not), and what applying it found.
type scope struct {
	lb *v1alpha1.LoadBalancer
	in *plan.Inputs
	// Plan is what plan.Decide returned; nil when it refused.
	*plan.Plan

	// stopReason is set when the LoadBalancer must not be applied: refused
	// by the decision, or an object it would own belongs to someone else.
	// Nothing is written but status, and the last applied config keeps
	// serving.
	stopReason  string
	stopMessage string
	// className is the class status records: the LoadBalancer's, when it
	// exists and allows the namespace.
	className string
	// revoked: the class no longer allows the LoadBalancer's namespace, or
	// is gone. Once status says so, its data plane is deleted and what it
	// held released; released: it is gone.
	revoked, released bool
	// retryAfter asks for another reconcile without an event to wait for.
	retryAfter time.Duration
	// splitBrainPending: several nodes hold a virtual IP, but not yet for
	// splitBrainAfter.
	splitBrainPending bool

	reports map[string]contract.NodeReport
	// daemonSet is the applied DaemonSet as read back; desiredDaemonSet
	// the one to apply, and rollout the next step of replacing the pods
	// made from an older template.
	daemonSet        *appsv1.DaemonSet
	desiredDaemonSet *appsv1.DaemonSet
	rollout          rollout.Plan
}

func (s *scope) stop(reason, message string) {
	s.stopReason, s.stopMessage = reason, message
}

func (s *scope) stopped() bool { return s.stopReason != "" }

// refused records the decision's refusal.
func (s *scope) refused(r *plan.Refusal) {
	s.stop(r.Reason, r.Message)
	s.className, s.revoked = r.Class, r.Revoke
}

// decided records the plan.
func (s *scope) decided(p *plan.Plan) {
	s.Plan, s.className = p, p.Class.Name
	if p.RetryAfter > 0 && (s.retryAfter == 0 || p.RetryAfter < s.retryAfter) {
		s.retryAfter = p.RetryAfter
	}
}

// gather reads everything the decision depends on, from the cache: the
// classes, the namespace, the nodes and their agents' reports, what was
// last applied, the Services the backends name with their EndpointSlices,
// and (through indexes, as the decision asks) what other LoadBalancers
// claim.
func (r *LoadBalancerReconciler) gather(ctx context.Context, s *scope) error {
	lb := s.lb
	in := &plan.Inputs{LoadBalancer: lb, Lookup: r.lookup, HealthBasePort: r.DataPlane.HealthBasePort}
	s.in = in
	var classes v1alpha1.LoadBalancerClassList
	if err := r.Client.List(ctx, &classes); err != nil {
		return fmt.Errorf("failed to list LoadBalancerClasses: %w", err)
	}
	in.Classes = classes.Items
	in.Namespace = &corev1.Namespace{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: lb.Namespace}, in.Namespace); err != nil {
		return fmt.Errorf("failed to read namespace %s: %w", lb.Namespace, err)
	}
	// Read in the cache, not copied: every node is looked at, nothing
	// written.
	var nodes corev1.NodeList
	if err := r.Client.List(ctx, &nodes, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("failed to list nodes: %w", err)
	}
	in.Nodes = nodes.Items
	names := desired.NamesFor(lb)
	ns := r.DataPlane.Namespace
	haproxyCM, err := getOptional(ctx, r.Client, client.ObjectKey{Namespace: ns, Name: names.HAProxyConfigMap}, &corev1.ConfigMap{})
	if err != nil {
		return err
	}
	in.PreviousSlots = contract.ParseSlots(haproxyCM)
	keepalivedCM, err := getOptional(ctx, r.Client, client.ObjectKey{Namespace: ns, Name: names.KeepalivedConfigMap}, &corev1.ConfigMap{})
	if err != nil {
		return err
	}
	in.PreviousVRRP = contract.ParseVRRPRecord(keepalivedCM)
	report, err := getOptional(ctx, r.Client, client.ObjectKey{Namespace: ns, Name: names.ReportConfigMap}, &corev1.ConfigMap{})
	if err != nil {
		return err
	}
	in.Reports = map[string]contract.NodeReport{}
	if report != nil {
		in.Reports = contract.ParseReports(report.Data)
	}
	s.reports = in.Reports
	if a, ok := r.allocations.get(keyOf(lb)); ok {
		in.Applied = &plan.Allocation{RouterID: a.routerID, VirtualIPs: a.virtualIPs, Priorities: a.priorities}
	}
	in.Services = map[string]plan.ServiceEndpoints{}
	for _, b := range lb.Spec.Backends {
		if b.ServiceRef == nil {
			continue
		}
		if _, done := in.Services[b.ServiceRef.Name]; done {
			continue
		}
		se, err := r.serviceEndpoints(ctx, lb.Namespace, b.ServiceRef.Name)
		if err != nil {
			return err
		}
		in.Services[b.ServiceRef.Name] = se
	}
	in.Others = r.claimsFor(ctx, lb, in.Classes)
	return nil
}

// serviceEndpoints reads a Service and its EndpointSlices; a Service not
// found has none.
func (r *LoadBalancerReconciler) serviceEndpoints(ctx context.Context, namespace, name string) (plan.ServiceEndpoints, error) {
	svc, err := getOptional(ctx, r.Client, client.ObjectKey{Namespace: namespace, Name: name}, &corev1.Service{})
	if err != nil || svc == nil {
		return plan.ServiceEndpoints{}, err
	}
	var slices discoveryv1.EndpointSliceList
	if err := r.Client.List(ctx, &slices, client.InNamespace(namespace), client.MatchingLabels{discoveryv1.LabelServiceName: name}); err != nil {
		return plan.ServiceEndpoints{}, fmt.Errorf("failed to list EndpointSlices of %s: %w", name, err)
	}
	return plan.ServiceEndpoints{Service: svc, Slices: slices.Items}, nil
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

// keyOf is a LoadBalancer's namespace/name.
func keyOf(lb *v1alpha1.LoadBalancer) string { return plan.KeyOf(lb) }

// vipAddrs are the addresses a LoadBalancer requests or holds.
func vipAddrs(lb *v1alpha1.LoadBalancer) []string {
	var out []string
	for _, a := range plan.ClaimedAddrs(lb) {
		out = append(out, a.String())
	}
	return out
}

func routerIDOf(lb *v1alpha1.LoadBalancer) int32 {
	if id := lb.Spec.VRRP.VirtualRouterID; id != nil {
		return *id
	}
	return lb.Status.VirtualRouterID
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
