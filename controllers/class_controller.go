package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
)

// ClassReconciler keeps a LoadBalancerClass while LoadBalancers use it, as
// PVC protection keeps a claim a pod mounts: deleting it would leave their
// data planes serving with no policy behind them. A class being deleted
// says, in a Warning event, which LoadBalancers hold it.
type ClassReconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
}

// +kubebuilder:rbac:groups=hakeeper.io,resources=loadbalancerclasses,verbs=get;list;watch;patch

// Reconcile adds the finalizer to a class, and removes it from a class
// being deleted once no LoadBalancer uses it.
func (r *ClassReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	class := &v1alpha1.LoadBalancerClass{}
	if err := r.Client.Get(ctx, req.NamespacedName, class); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if class.DeletionTimestamp == nil {
		if controllerutil.ContainsFinalizer(class, v1alpha1.FinalizerClassInUse) {
			return ctrl.Result{}, nil
		}
		patch := client.MergeFrom(class.DeepCopy())
		controllerutil.AddFinalizer(class, v1alpha1.FinalizerClassInUse)
		return ctrl.Result{}, client.IgnoreNotFound(r.Client.Patch(ctx, class, patch))
	}
	if !controllerutil.ContainsFinalizer(class, v1alpha1.FinalizerClassInUse) {
		return ctrl.Result{}, nil
	}
	users, err := r.users(ctx, class.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	if len(users) > 0 {
		shown := users
		if len(shown) > 10 {
			shown = append(slices.Clone(shown[:10]), fmt.Sprintf("and %d more", len(users)-10))
		}
		r.Recorder.Eventf(class, nil, corev1.EventTypeWarning, "InUse", "Delete",
			"Deletion waits for the %d LoadBalancers that use the class: %s", len(users), strings.Join(shown, ", "))
		return ctrl.Result{}, nil // a LoadBalancer going away enqueues the class
	}
	patch := client.MergeFrom(class.DeepCopy())
	controllerutil.RemoveFinalizer(class, v1alpha1.FinalizerClassInUse)
	if err := r.Client.Patch(ctx, class, patch); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, nil
}

// users are the LoadBalancers that name the class or were applied with
// it, as namespace/name, sorted.
func (r *ClassReconciler) users(ctx context.Context, class string) ([]string, error) {
	items, err := listLoadBalancers(ctx, r.Client, client.MatchingFields{indexClass: class})
	if err != nil {
		return nil, fmt.Errorf("failed to list LoadBalancers: %w", err)
	}
	var out []string
	for i := range items {
		out = append(out, keyOf(&items[i]))
	}
	slices.Sort(out)
	return out, nil
}

// SetupWithManager registers the controller. A LoadBalancer's change
// matters only to a class being deleted.
func (r *ClassReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.LoadBalancerClass{}).
		Watches(&v1alpha1.LoadBalancer{}, handler.EnqueueRequestsFromMapFunc(r.deletingClassesOf)).
		Named("loadbalancerclass").
		Complete(r)
}

func (r *ClassReconciler) deletingClassesOf(ctx context.Context, obj client.Object) []reconcile.Request {
	lb, ok := obj.(*v1alpha1.LoadBalancer)
	if !ok {
		return nil
	}
	var out []reconcile.Request
	for _, name := range []string{lb.Spec.ClassName, lb.Status.ClassName} {
		if name == "" || slices.ContainsFunc(out, func(r reconcile.Request) bool { return r.Name == name }) {
			continue
		}
		class := &v1alpha1.LoadBalancerClass{}
		if err := r.Client.Get(ctx, client.ObjectKey{Name: name}, class); err == nil && class.DeletionTimestamp != nil {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: name}})
		}
	}
	return out
}
