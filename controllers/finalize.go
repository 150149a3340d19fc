package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/desired"
)

// finalize deletes a LoadBalancer's data plane from the data-plane
// namespace (the DaemonSet first, so no agent reports into a deleted
// ConfigMap), then releases the LoadBalancer. Its virtual IPs and router
// ID are free once it is gone. The TLS Role in its own namespace carries an
// owner reference and goes with it.
func (r *LoadBalancerReconciler) finalize(ctx context.Context, lb *v1alpha1.LoadBalancer) error {
	if !controllerutil.ContainsFinalizer(lb, desired.Finalizer) {
		return nil
	}
	sel := client.MatchingLabels{
		desired.LabelManagedBy:             desired.ManagedBy,
		desired.LabelLoadBalancer:          lb.Name,
		desired.LabelLoadBalancerNamespace: lb.Namespace,
	}
	// Listed from the cache and deleted one by one: the manager holds
	// delete, not deletecollection.
	for _, list := range []client.ObjectList{&appsv1.DaemonSetList{}, &corev1.ConfigMapList{}, &rbacv1.RoleBindingList{}, &rbacv1.RoleList{}, &corev1.ServiceAccountList{}} {
		if err := r.Client.List(ctx, list, client.InNamespace(r.DataPlane.Namespace), sel); err != nil {
			return fmt.Errorf("failed to list the data plane's objects: %w", err)
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return err
		}
		for _, item := range items {
			obj := item.(client.Object)
			if err := client.IgnoreNotFound(r.Client.Delete(ctx, obj, client.PropagationPolicy(metav1.DeletePropagationBackground))); err != nil {
				return fmt.Errorf("failed to delete %s: %w", obj.GetName(), err)
			}
		}
	}
	patch := client.MergeFrom(lb.DeepCopy())
	controllerutil.RemoveFinalizer(lb, desired.Finalizer)
	return client.IgnoreNotFound(r.Client.Patch(ctx, lb, patch))
}
