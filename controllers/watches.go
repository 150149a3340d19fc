package controllers

import (
	"context"
	"maps"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/desired"
)

// indexServiceRef indexes LoadBalancers by the Services their backends
// name, so a Service or EndpointSlice event finds the LoadBalancers that
// use it without scanning them all. (Secrets are the agents' to watch:
// the operator never reads them.)
const indexServiceRef = "spec.backends.serviceRef.name"

func setupIndexes(ctx context.Context, indexer client.FieldIndexer) error {
	return indexer.IndexField(ctx, &v1alpha1.LoadBalancer{}, indexServiceRef, func(obj client.Object) []string {
		var out []string
		for _, b := range obj.(*v1alpha1.LoadBalancer).Spec.Backends {
			if b.ServiceRef != nil {
				out = append(out, b.ServiceRef.Name)
			}
		}
		return out
	})
}

func (r *LoadBalancerReconciler) byIndex(ctx context.Context, namespace, index, value string) []reconcile.Request {
	items, err := listLoadBalancers(ctx, r.Client, client.InNamespace(namespace), client.MatchingFields{index: value})
	if err != nil {
		return nil
	}
	return requests(items, func(*v1alpha1.LoadBalancer) bool { return true })
}

func requests(lbs []v1alpha1.LoadBalancer, keep func(*v1alpha1.LoadBalancer) bool) []reconcile.Request {
	var out []reconcile.Request
	for i := range lbs {
		if keep(&lbs[i]) {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: lbs[i].Namespace, Name: lbs[i].Name}})
		}
	}
	return out
}

func (r *LoadBalancerReconciler) forService(ctx context.Context, obj client.Object) []reconcile.Request {
	return r.byIndex(ctx, obj.GetNamespace(), indexServiceRef, obj.GetName())
}

func (r *LoadBalancerReconciler) forEndpointSlice(ctx context.Context, obj client.Object) []reconcile.Request {
	svc := obj.GetLabels()[discoveryv1.LabelServiceName]
	if svc == "" {
		return nil
	}
	return r.byIndex(ctx, obj.GetNamespace(), indexServiceRef, svc)
}

// forNode enqueues the LoadBalancers a node matters to: those whose
// selector matches it, those that list it in status (it may just have
// stopped matching), those refused for an address (the node may hold or
// have freed it), and those whose virtual IPs or static servers are one of
// its addresses. Selectors are narrowed by the class; matching the
// LoadBalancer's own is enough to be asked.
//
// Every LoadBalancer is looked at (read in the cache, not copied): one with
// no selector of its own matches every node. The filter (nodeChanged) lets
// through only the rare changes that can matter.
func (r *LoadBalancerReconciler) forNode(ctx context.Context, obj client.Object) []reconcile.Request {
	items, err := listLoadBalancers(ctx, r.Client)
	if err != nil {
		return nil
	}
	set := labels.Set(obj.GetLabels())
	var addrs []string
	if n, ok := obj.(*corev1.Node); ok {
		for _, a := range n.Status.Addresses {
			addrs = append(addrs, a.Address)
		}
	}
	return requests(items, func(lb *v1alpha1.LoadBalancer) bool {
		if labels.SelectorFromSet(lb.Spec.NodeSelector).Matches(set) {
			return true
		}
		if slices.ContainsFunc(lb.Status.Nodes, func(n v1alpha1.NodeStatus) bool { return n.Name == obj.GetName() }) {
			return true
		}
		if c := meta.FindStatusCondition(lb.Status.Conditions, v1alpha1.LoadBalancerDegradedCondition); c != nil &&
			(c.Reason == v1alpha1.LoadBalancerAddressUnavailableReason || c.Reason == v1alpha1.LoadBalancerNotAllowedByClassReason) {
			return true
		}
		return slices.ContainsFunc(addrs, func(a string) bool {
			return slices.Contains(vipAddrs(lb), a) || slices.ContainsFunc(lb.Spec.Backends, func(b v1alpha1.Backend) bool {
				return slices.ContainsFunc(b.Servers, func(s v1alpha1.Server) bool { return s.Address == a })
			})
		})
	})
}

// contendersOf enqueues the LoadBalancers whose conflict or allocation
// may change because obj changed: those in conflict or waiting for an
// address now (or for room in the namespace's share), and those sharing a
// virtual IP or router ID with it, each found through an index.
func (r *LoadBalancerReconciler) contendersOf(ctx context.Context, obj client.Object) []reconcile.Request {
	changed, ok := obj.(*v1alpha1.LoadBalancer)
	if !ok {
		return nil
	}
	var out []reconcile.Request
	add := func(opts ...client.ListOption) {
		items, err := listLoadBalancers(ctx, r.Client, opts...)
		if err != nil {
			return
		}
		for _, req := range requests(items, func(lb *v1alpha1.LoadBalancer) bool { return lb.UID != changed.UID }) {
			if !slices.Contains(out, req) {
				out = append(out, req)
			}
		}
	}
	add(client.MatchingFields{indexWaiting: v1alpha1.LoadBalancerConflictReason})
	add(client.MatchingFields{indexWaiting: v1alpha1.LoadBalancerAddressUnavailableReason})
	add(client.MatchingFields{indexWaiting: v1alpha1.LoadBalancerLimitExceededReason}, client.InNamespace(changed.Namespace))
	if id := routerIDOf(changed); id != 0 {
		add(client.MatchingFields{indexRouterID: strconv.Itoa(int(id))})
	}
	for _, a := range vipAddrs(changed) {
		add(client.MatchingFields{indexClaimedAddr: a})
	}
	return out
}

// nodeChanged passes node events that can change a LoadBalancer: creation,
// deletion, and changes of labels, taints, addresses or schedulability. The
// kubelet's heartbeats, which rewrite status every few seconds, do not pass.
var nodeChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		old, oldOK := e.ObjectOld.(*corev1.Node)
		cur, curOK := e.ObjectNew.(*corev1.Node)
		if !oldOK || !curOK {
			return true
		}
		return !maps.Equal(old.Labels, cur.Labels) ||
			!equality.Semantic.DeepEqual(old.Spec.Taints, cur.Spec.Taints) ||
			old.Spec.Unschedulable != cur.Spec.Unschedulable ||
			old.Annotations[v1alpha1.AnnotationMaintenance] != cur.Annotations[v1alpha1.AnnotationMaintenance] ||
			!equality.Semantic.DeepEqual(old.Status.Addresses, cur.Status.Addresses) ||
			(old.DeletionTimestamp == nil) != (cur.DeletionTimestamp == nil)
	},
}

// claimChanged passes LoadBalancer events that can start or end a conflict:
// creation, deletion, a spec change, or a new router ID or virtual IPs in
// status.
var claimChanged = predicate.Or(predicate.GenerationChangedPredicate{}, predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		old, oldOK := e.ObjectOld.(*v1alpha1.LoadBalancer)
		cur, curOK := e.ObjectNew.(*v1alpha1.LoadBalancer)
		return !oldOK || !curOK || old.Status.VirtualRouterID != cur.Status.VirtualRouterID ||
			!slices.Equal(old.Status.VirtualIPs, cur.Status.VirtualIPs)
	},
	CreateFunc:  func(event.CreateEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
})

// ownerOf maps an object hakeeper owns to its LoadBalancer by the labels
// every owned object carries.
func ownerOf(_ context.Context, obj client.Object) []reconcile.Request {
	l := obj.GetLabels()
	if l[desired.LabelManagedBy] != desired.ManagedBy || l[desired.LabelLoadBalancer] == "" || l[desired.LabelLoadBalancerNamespace] == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: l[desired.LabelLoadBalancerNamespace], Name: l[desired.LabelLoadBalancer]}}}
}

// forClass enqueues the LoadBalancers that use a class or may (those that
// name none take the default, which this class may have become).
func (r *LoadBalancerReconciler) forClass(ctx context.Context, obj client.Object) []reconcile.Request {
	var out []reconcile.Request
	for _, class := range []string{obj.GetName(), noClass} {
		items, err := listLoadBalancers(ctx, r.Client, client.MatchingFields{indexClass: class})
		if err != nil {
			return nil
		}
		for _, req := range requests(items, func(*v1alpha1.LoadBalancer) bool { return true }) {
			if !slices.Contains(out, req) {
				out = append(out, req)
			}
		}
	}
	return out
}

// forNamespace enqueues a namespace's LoadBalancers when its labels, which
// a class's namespaceSelector reads, change.
func (r *LoadBalancerReconciler) forNamespace(ctx context.Context, obj client.Object) []reconcile.Request {
	items, err := listLoadBalancers(ctx, r.Client, client.InNamespace(obj.GetName()))
	if err != nil {
		return nil
	}
	return requests(items, func(*v1alpha1.LoadBalancer) bool { return true })
}

// finalizersChanged passes the update that sets a deletion timestamp, so
// the finalizer runs, and one that changes the finalizers, so a finalizer
// removed by someone else is put back.
var finalizersChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return (e.ObjectOld.GetDeletionTimestamp() == nil && e.ObjectNew.GetDeletionTimestamp() != nil) ||
			!slices.Equal(e.ObjectOld.GetFinalizers(), e.ObjectNew.GetFinalizers())
	},
}
