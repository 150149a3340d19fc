package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/desired"
)

// LoadBalancerReconciler renders each LoadBalancer into its ConfigMaps,
// DaemonSet and agent RBAC, and folds what the nodes report into status.
type LoadBalancerReconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	Client client.Client
	// APIReader reads what the cache does not hold (Secrets).
	APIReader client.Reader
	Recorder  events.EventRecorder
	DataPlane desired.DataPlaneOptions

	// allocations remembers the router IDs this process allocated, by
	// namespace/name, until the cache shows them in status: without it two
	// LoadBalancers reconciled in quick succession could both take the same
	// free ID from a cache that lags the status patch.
	allocations sync.Map
}

// RBAC: exactly what the reconciler reads and writes. Owned objects are
// server-side applied (create and patch, never update); the garbage
// collector deletes them. Creating the agent's Role requires holding what it
// grants: get/list/watch on ConfigMaps and Secrets, patch on ConfigMaps.
//
// +kubebuilder:rbac:groups=hakeeper.io,resources=loadbalancers,verbs=get;list;watch
// +kubebuilder:rbac:groups=hakeeper.io,resources=loadbalancers/status,verbs=get;patch
// +kubebuilder:rbac:groups="",resources=configmaps;serviceaccounts,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=apps,resources=daemonsets,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=services;nodes;secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one LoadBalancer's owned objects and status up to date.
func (r *LoadBalancerReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	lb := &v1alpha1.LoadBalancer{}
	if err := r.Client.Get(ctx, req.NamespacedName, lb); err != nil {
		if apierrors.IsNotFound(err) {
			r.allocations.Delete(req.String())
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if lb.DeletionTimestamp != nil {
		// Owner references let the garbage collector remove the rest.
		return ctrl.Result{}, nil
	}
	log := ctrl.LoggerFrom(ctx)
	orig := lb.DeepCopy()
	s := &scope{lb: lb}
	defer func() {
		lb.Status = computeStatus(lb, s, retErr)
		// Write status only when it changed: a write per pass would fan out
		// to every watcher.
		if equality.Semantic.DeepEqual(orig.Status, lb.Status) {
			return
		}
		if err := client.IgnoreNotFound(r.Client.Status().Patch(ctx, lb, client.MergeFrom(orig))); err != nil {
			retErr = errors.Join(retErr, fmt.Errorf("failed to patch status: %w", err))
		}
	}()
	for _, step := range []func(context.Context, *scope) error{
		r.validate,
		r.gatherNodes,
		r.checkConflicts,
		r.gatherEndpoints,
		r.checkSecrets,
		r.render,
		r.apply,
	} {
		if err := step(ctx, s); err != nil {
			return ctrl.Result{}, err
		}
		if s.stopped() {
			log.V(1).Info("Stopping before apply", "reason", s.stopReason)
			return ctrl.Result{}, nil
		}
	}
	return ctrl.Result{}, nil
}

// SetupWithManager registers the controller and everything it watches.
func (r *LoadBalancerReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := setupIndexes(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.LoadBalancer{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&corev1.ConfigMap{}).
		Owns(&appsv1.DaemonSet{}).
		Owns(&corev1.ServiceAccount{}).
		Owns(&rbacv1.Role{}).
		Owns(&rbacv1.RoleBinding{}).
		// Another LoadBalancer appearing, changing or going away can start
		// or end a conflict.
		Watches(&v1alpha1.LoadBalancer{}, handler.EnqueueRequestsFromMapFunc(r.contendersOf),
			builder.WithPredicates(claimChanged)).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.forService)).
		Watches(&discoveryv1.EndpointSlice{}, handler.EnqueueRequestsFromMapFunc(r.forEndpointSlice)).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(r.forNode), builder.WithPredicates(nodeChanged)).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.forSecret), builder.OnlyMetadata).
		Named("loadbalancer").
		Complete(r)
}
