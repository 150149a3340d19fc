package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/plan"
	"github.com/hakeeper/hakeeper/internal/resolve"
)

// LoadBalancerReconciler renders each LoadBalancer, within what its class
// allows, into its ConfigMaps, DaemonSet and agent RBAC in the data-plane
// namespace, and folds what the nodes report into status.
type LoadBalancerReconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	Client client.Client
	// APIReader reads what the cache does not hold: objects without
	// hakeeper's labels, to refuse adopting them.
	APIReader client.Reader
	Recorder  events.EventRecorder
	DataPlane desired.DataPlaneOptions
	// Resolve looks up static servers' DNS names; nil uses the system's
	// resolver.
	Resolve resolve.Lookup
	// Clock tells the time to the split-brain wait, the rollout's and the
	// names' cache (nil: the real one), so tests can move it.
	Clock clock.PassiveClock

	// allocations are what this process applied (claims.go).
	allocations allocations
	// names caches what static servers' DNS names resolve to (names.go).
	names sync.Map
	// splitSince is when several holders of a virtual IP were first seen,
	// by namespace/name, while they still are.
	splitSince sync.Map
	// holders remember each LoadBalancer's holder for its events
	// (announce.go), by namespace/name.
	holders sync.Map
}

// now is the reconciler's clock's time.
func (r *LoadBalancerReconciler) now() time.Time {
	if r.Clock == nil {
		return time.Now()
	}
	return r.Clock.Now()
}

// RBAC: exactly what the reconciler reads and writes. Cluster-wide it only
// reads, and writes LoadBalancer status and finalizers and Events.
// Everything else it writes lives in the data-plane namespace, through the
// namespaced Role below. The one exception, the Role and RoleBinding that
// give a TLS listener's agents its Secrets in the LoadBalancer's
// namespace, it may write only where the platform admin has bound
// hakeeper-tls-delegation (config/rbac/tls_delegation_role.yaml), which
// also lets it hold what that Role grants. Owned objects are server-side
// applied (create and patch); update only puts back an object someone else
// wrote (see applyOwned). loadbalancers/finalizers: the TLS Role's owner
// reference blocks the LoadBalancer's deletion until it is gone. Pods:
// the operator replaces the data-plane pods itself (rollout.go), marking
// the one that hands the virtual IPs over; it lists them live too, to
// delete the data plane's other objects only once they are gone.
//
// +kubebuilder:rbac:groups=hakeeper.io,resources=loadbalancers,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=hakeeper.io,resources=loadbalancers/status,verbs=get;patch
// +kubebuilder:rbac:groups=hakeeper.io,resources=loadbalancers/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=services;nodes;namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch
// +kubebuilder:rbac:groups="",namespace=hakeeper-system,resources=configmaps;serviceaccounts,verbs=get;list;watch;create;patch;update;delete
// +kubebuilder:rbac:groups=apps,namespace=hakeeper-system,resources=daemonsets,verbs=get;list;watch;create;patch;update;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,namespace=hakeeper-system,resources=roles;rolebindings,verbs=create;patch;update;delete
// +kubebuilder:rbac:groups="",namespace=hakeeper-system,resources=pods,verbs=list;watch;patch;delete

// Reconcile brings one LoadBalancer's owned objects and status up to date.
func (r *LoadBalancerReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	lb := &v1alpha1.LoadBalancer{}
	if err := r.Client.Get(ctx, req.NamespacedName, lb); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		// Gone without the finalizer having run (someone removed it): the
		// data plane must not outlive it, serving addresses nobody claims.
		done, err := r.deleteDataPlane(ctx, req.Namespace, req.Name)
		if err != nil || !done {
			return ctrl.Result{RequeueAfter: dataPlaneGone}, err
		}
		r.allocations.delete(req.String())
		r.splitSince.Delete(req.String())
		r.holders.Delete(req.String())
		forgetMetrics(req.Namespace, req.Name)
		return ctrl.Result{}, nil
	}
	if lb.DeletionTimestamp != nil {
		return r.finalize(ctx, lb)
	}
	if !controllerutil.ContainsFinalizer(lb, desired.Finalizer) {
		// Before anything is created in the data-plane namespace, where no
		// owner reference can reach.
		patch := client.MergeFrom(lb.DeepCopy())
		controllerutil.AddFinalizer(lb, desired.Finalizer)
		if err := r.Client.Patch(ctx, lb, patch); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	log := ctrl.LoggerFrom(ctx)
	orig := lb.DeepCopy()
	s := &scope{lb: lb}
	defer func() {
		lb.Status = computeStatus(lb, s, retErr)
		recordReconcile(lb, s, retErr)
		key := keyOf(lb)
		remembered, _ := r.holders.Load(key)
		mem, _ := remembered.(holderMemory)
		news, mem, recheck := announce(lb.UID, &orig.Status, &lb.Status, mem, s.faults(), r.now(), s.whyMoved)
		if retErr == nil && recheck > 0 && (result.RequeueAfter == 0 || recheck < result.RequeueAfter) {
			result.RequeueAfter = recheck
		}
		// Write status only when it changed: a write per pass would fan out
		// to every watcher.
		if !equality.Semantic.DeepEqual(orig.Status, lb.Status) {
			if err := r.Client.Status().Patch(ctx, lb, client.MergeFrom(orig)); err != nil {
				if !apierrors.IsNotFound(err) {
					retErr = errors.Join(retErr, fmt.Errorf("failed to patch status: %w", err))
				}
				// Not written: the next reconcile sees the same change and
				// tells it then, once.
				return
			}
		}
		r.holders.Store(key, mem)
		// Each event refers to the LoadBalancer as written (its resource
		// version), so events of one reason about different changes are
		// not folded into one series that keeps the first note.
		for _, a := range news {
			r.Recorder.Eventf(lb, nil, a.eventType, a.reason, a.action, "%s", a.note)
		}
	}()
	// Gather, decide, apply. A refusal is a value: status says why, and a
	// data plane the class no longer allows goes once status has said so.
	if err := r.gather(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	p, err := plan.Decide(ctx, s.in)
	var refusal *plan.Refusal
	switch {
	case errors.As(err, &refusal):
		s.refused(refusal)
		log.V(1).Info("Not applied", "reason", refusal.Reason)
		if s.revoked && len(lb.Status.VirtualIPs) > 0 {
			return r.revoke(ctx, s)
		}
		return ctrl.Result{}, nil
	case err != nil:
		return ctrl.Result{}, err
	}
	s.decided(p)
	r.allocations.set(keyOf(lb), allocation{routerID: p.Allocation.RouterID, virtualIPs: p.Allocation.VirtualIPs, priorities: p.Allocation.Priorities})
	for _, step := range []func(context.Context, *scope) error{
		r.planRollout,
		r.apply,
		r.rollOut,
		r.observeHolders,
	} {
		if err := step(ctx, s); err != nil {
			return ctrl.Result{}, err
		}
		if s.stopped() {
			log.V(1).Info("Stopping before apply", "reason", s.stopReason)
			return ctrl.Result{}, nil
		}
	}
	return ctrl.Result{RequeueAfter: s.retryAfter}, nil
}

// SetupWithManager registers the controller and everything it watches.
func (r *LoadBalancerReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := setupIndexes(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	if err := setupClaimIndexes(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.LoadBalancer{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, finalizersChanged))).
		// Another LoadBalancer appearing, changing or going away can start
		// or end a conflict.
		Watches(&v1alpha1.LoadBalancer{}, handler.EnqueueRequestsFromMapFunc(r.contendersOf),
			builder.WithPredicates(claimChanged)).
		Watches(&v1alpha1.LoadBalancerClass{}, handler.EnqueueRequestsFromMapFunc(r.forClass)).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.forNamespace), builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.forService)).
		Watches(&discoveryv1.EndpointSlice{}, handler.EnqueueRequestsFromMapFunc(r.forEndpointSlice)).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(r.forNode), builder.WithPredicates(nodeChanged))
	// Owned objects live in another namespace than their LoadBalancer (or,
	// for the TLS Role, carry its labels too): map them back by label.
	for _, obj := range []client.Object{&corev1.ConfigMap{}, &appsv1.DaemonSet{}, &corev1.Pod{}, &corev1.ServiceAccount{}, &rbacv1.Role{}, &rbacv1.RoleBinding{}} {
		b = b.Watches(obj, handler.EnqueueRequestsFromMapFunc(ownerOf))
	}
	return b.Named("loadbalancer").Complete(r)
}
