package controllers

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/desired"
)

// dataPlaneGone is how often a deletion waits for the data plane's pods.
const dataPlaneGone = time.Second

// finalize deletes a LoadBalancer's data plane from the data-plane
// namespace, then releases the LoadBalancer. Its virtual IPs and router ID
// stay claimed (in its status) until its pods are gone, so they are never
// handed to another LoadBalancer while an old keepalived may still hold
// them. The TLS Role in its own namespace carries an owner reference and
// goes with it.
func (r *LoadBalancerReconciler) finalize(ctx context.Context, lb *v1alpha1.LoadBalancer) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(lb, desired.Finalizer) {
		return ctrl.Result{}, nil
	}
	done, err := r.deleteDataPlane(ctx, lb.Namespace, lb.Name)
	if err != nil || !done {
		return ctrl.Result{RequeueAfter: dataPlaneGone}, err
	}
	patch := client.MergeFrom(lb.DeepCopy())
	forgetMetrics(lb.Namespace, lb.Name)
	// Forgotten here too, not only once it is gone: one created again
	// under its name may be reconciled before its deletion is seen.
	r.splitSince.Delete(keyOf(lb))
	r.holders.Delete(keyOf(lb))
	controllerutil.RemoveFinalizer(lb, desired.Finalizer)
	return ctrl.Result{}, client.IgnoreNotFound(r.Client.Patch(ctx, lb, patch))
}

// revoke takes the data plane away from a LoadBalancer its class no
// longer allows (its namespace stopped matching, or the class is gone),
// once its status says why: the tenant learns it from the LoadBalancer
// before the virtual IPs go. Its addresses and router ID are released
// only when its pods are gone, as on deletion.
func (r *LoadBalancerReconciler) revoke(ctx context.Context, s *scope) (ctrl.Result, error) {
	c := meta.FindStatusCondition(s.lb.Status.Conditions, v1alpha1.LoadBalancerDegradedCondition)
	if c == nil || c.Reason != s.stopReason || c.Message != s.stopMessage || c.ObservedGeneration != s.lb.Generation {
		return ctrl.Result{RequeueAfter: dataPlaneGone}, nil // told by this pass's status
	}
	done, err := r.deleteDataPlane(ctx, s.lb.Namespace, s.lb.Name)
	if err != nil || !done {
		return ctrl.Result{RequeueAfter: dataPlaneGone}, err
	}
	if err := r.deleteTLSAccess(ctx, s.lb); err != nil {
		return ctrl.Result{}, err
	}
	r.Recorder.Eventf(s.lb, nil, corev1.EventTypeWarning, "Revoked", "Revoke", "Data plane deleted and virtual IPs released: %s", s.stopMessage)
	r.allocations.delete(keyOf(s.lb))
	s.released = true
	return ctrl.Result{}, nil
}

// deleteDataPlane deletes a LoadBalancer's objects in the data-plane
// namespace by name, read live (an object created a moment ago may not be
// in the cache yet): the DaemonSet first, and the rest once its pods are
// gone too (the garbage collector deletes them after the DaemonSet). It
// reports whether all are gone. It also serves a LoadBalancer that
// vanished without its finalizer running.
func (r *LoadBalancerReconciler) deleteDataPlane(ctx context.Context, namespace, name string) (bool, error) {
	lb := &v1alpha1.LoadBalancer{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	names := desired.NamesFor(lb)
	ns := r.DataPlane.Namespace
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: names.DaemonSet}}
	if err := r.deleteIfOwned(ctx, lb, ds); err != nil {
		return false, err
	}
	var pods corev1.PodList
	if err := r.APIReader.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels(desired.DataPlaneSelector(lb))); err != nil {
		return false, fmt.Errorf("failed to list the data plane's pods: %w", err)
	}
	for _, p := range pods.Items {
		if r.nodeUnreachable(ctx, p.Spec.NodeName) {
			// Its kubelet will not report the pod gone until the node is
			// back or deleted: waiting would hang the deletion (and the
			// namespace's) for as long. Whether its keepalived still holds
			// a virtual IP cannot be known; once the node is back, the pod
			// is deleted and its supervisor releases the addresses.
			continue
		}
		return false, nil
	}
	for _, obj := range []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: names.HAProxyConfigMap}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: names.KeepalivedConfigMap}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: names.ReportConfigMap}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: names.Role}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: names.Role}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: names.ServiceAccount}},
	} {
		if err := r.deleteIfOwned(ctx, lb, obj); err != nil {
			return false, err
		}
	}
	return true, nil
}

// nodeUnreachable tells whether a pod's node cannot report the pod gone:
// the node is deleted, or says it is not Ready (False or Unknown, as the
// node lifecycle controller sets it when the kubelet stops reporting).
// A node that reports no Ready condition at all is waited for.
func (r *LoadBalancerReconciler) nodeUnreachable(ctx context.Context, name string) bool {
	if name == "" {
		return true // never scheduled: nothing runs
	}
	node := &corev1.Node{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Name: name}, node); err != nil {
		return apierrors.IsNotFound(err)
	}
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status != corev1.ConditionTrue
		}
	}
	return false
}

// deleteIfOwned deletes obj, read live, only if it carries lb's labels: an
// object hakeeper refused to adopt stays where it is.
func (r *LoadBalancerReconciler) deleteIfOwned(ctx context.Context, lb *v1alpha1.LoadBalancer, obj client.Object) error {
	gvk, err := apiutil.GVKForObject(obj, r.Client.Scheme())
	if err != nil {
		return err
	}
	live := &metav1.PartialObjectMetadata{}
	live.SetGroupVersionKind(gvk)
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(obj), live); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !ownedBy(live, lb) {
		return nil
	}
	// Preconditioned on the version read, so an object replaced meanwhile
	// by someone else's is not deleted.
	err = r.Client.Delete(ctx, obj, client.Preconditions{UID: ptr.To(live.UID), ResourceVersion: ptr.To(live.ResourceVersion)})
	if err := client.IgnoreNotFound(err); err != nil {
		return fmt.Errorf("failed to delete %s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	return nil
}
