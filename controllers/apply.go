package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/render"
)

// apply writes the owned objects: the agent's identity first, then the
// configs, then the DaemonSet that reads them.
func (r *LoadBalancerReconciler) apply(ctx context.Context, s *scope) error {
	lb := s.lb
	ns := r.DataPlane.Namespace
	objects := []client.Object{
		desired.AgentServiceAccount(lb, ns),
		desired.AgentRole(lb, ns),
		desired.AgentRoleBinding(lb, ns),
		desired.ReportConfigMap(lb, ns),
	}
	for _, obj := range objects {
		if _, err := r.applyOwned(ctx, s, obj); err != nil || s.stopped() {
			return err
		}
	}
	if err := r.applyTLSAccess(ctx, s); err != nil || s.stopped() {
		return err
	}
	haproxyCM := desired.HAProxyConfigMap(lb, ns, s.HAProxyConfig, s.Servers, slotKeys(s.Endpoints))
	changed, err := r.applyOwned(ctx, s, haproxyCM)
	if err != nil || s.stopped() {
		return err
	}
	if changed {
		r.Recorder.Eventf(lb, haproxyCM, corev1.EventTypeNormal, "ConfigUpdated", "Apply",
			"haproxy.cfg updated (%d bytes, servers: %v)", len(s.HAProxyConfig), s.ServersTotal)
	}
	record := contract.VRRPRecord{VirtualRouterID: s.RouterID, Priorities: s.Allocation.Priorities,
		PreemptDelaySeconds: render.PreemptHoldSeconds(&s.Spec.VRRP), Maintenance: s.Maintenance, Peers: s.VRRPPeers}
	for _, v := range s.VirtualIPs {
		record.VirtualIPs = append(record.VirtualIPs, v.Addr().String())
	}
	keepalivedCM := desired.KeepalivedConfigMap(lb, ns, s.Keepalived, record)
	if changed, err = r.applyOwned(ctx, s, keepalivedCM); err != nil || s.stopped() {
		return err
	}
	if changed {
		r.Recorder.Eventf(lb, keepalivedCM, corev1.EventTypeNormal, "ConfigUpdated", "Apply",
			"keepalived.conf updated for %d nodes (router ID %d, priorities %v, under maintenance %v)", len(s.Keepalived), s.RouterID, record.Priorities, record.Maintenance)
	}
	ds := s.desiredDaemonSet
	if changed, err = r.applyOwned(ctx, s, ds); err != nil || s.stopped() {
		return err
	}
	if changed {
		r.Recorder.Eventf(lb, ds, corev1.EventTypeNormal, "DaemonSetUpdated", "Apply", "DaemonSet %s/%s applied", ds.Namespace, ds.Name)
	}
	s.daemonSet, err = getOptional(ctx, r.Client, client.ObjectKeyFromObject(ds), &appsv1.DaemonSet{})
	return err
}

// applyTLSAccess lets the agents read the TLS Secrets the listeners name,
// through a Role and RoleBinding in the LoadBalancer's namespace, and
// removes them when no listener uses TLS. The API server lets the manager
// grant only what it holds itself: where the platform admin has not bound
// hakeeper-tls-delegation in the namespace, creating the Role is
// forbidden, which status reports with the API server's words.
func (r *LoadBalancerReconciler) applyTLSAccess(ctx context.Context, s *scope) error {
	role := desired.TLSRole(s.lb)
	binding := desired.TLSRoleBinding(s.lb, r.DataPlane.Namespace)
	if role == nil {
		return r.deleteTLSAccess(ctx, s.lb)
	}
	if _, err := r.applyOwned(ctx, s, role); err != nil {
		if apierrors.IsForbidden(err) {
			s.Missing = append(s.Missing, fmt.Sprintf("the agents cannot be given the TLS Secrets (has the platform admin bound hakeeper-tls-delegation in namespace %s?): %v", s.lb.Namespace, err))
			// No event follows the admin's RoleBinding: look again.
			s.retryAfter = tlsDelegationRetry
			return nil
		}
		return err
	}
	if s.stopped() {
		return nil
	}
	_, err := r.applyOwned(ctx, s, binding)
	return err
}

// deleteTLSAccess deletes the Role and RoleBinding that let lb's agents
// read its TLS Secrets, if lb owns them.
func (r *LoadBalancerReconciler) deleteTLSAccess(ctx context.Context, lb *v1alpha1.LoadBalancer) error {
	binding := desired.TLSRoleBinding(lb, r.DataPlane.Namespace)
	for _, obj := range []client.Object{binding, &rbacv1.Role{ObjectMeta: binding.ObjectMeta}} {
		current, err := getOptional(ctx, r.Client, client.ObjectKeyFromObject(obj), obj.DeepCopyObject().(client.Object))
		if err != nil {
			return err
		}
		if current != nil && ownedBy(current, lb) {
			if err := client.IgnoreNotFound(r.Client.Delete(ctx, current)); err != nil {
				return fmt.Errorf("failed to delete %s: %w", current.GetName(), err)
			}
		}
	}
	return nil
}

// tlsDelegationRetry is how soon a LoadBalancer whose agents could not be
// given their TLS Secrets is tried again.
const tlsDelegationRetry = 30 * time.Second

// ownedBy tells whether obj carries the labels of lb's objects.
func ownedBy(obj client.Object, lb *v1alpha1.LoadBalancer) bool {
	l := obj.GetLabels()
	return l[desired.LabelManagedBy] == desired.ManagedBy && l[desired.LabelLoadBalancer] == lb.Name &&
		l[desired.LabelLoadBalancerNamespace] == lb.Namespace
}

// foreignManagers lists who else has written obj: every field manager of
// the object itself (not its status) but hakeeper and, on the report
// ConfigMap, the agents. Any write by hand (kubectl edit, apply, patch)
// leaves one.
func foreignManagers(obj client.Object) []string {
	_, isConfigMap := obj.(*corev1.ConfigMap)
	report := isConfigMap && obj.GetLabels()[desired.LabelComponent] == desired.ComponentAgent
	var out []string
	for _, m := range obj.GetManagedFields() {
		if m.Subresource != "" || m.Manager == desired.FieldOwner || (report && m.Manager == contract.AgentFieldManager) {
			continue
		}
		out = append(out, m.Manager)
	}
	return out
}

// applyOwned server-side applies obj, complete, as the hakeeper field
// owner. It skips the request when the object carries the hash of exactly
// this desired state and nobody else has written it, so a reconcile that
// changes nothing writes nothing. An object someone else wrote is first
// replaced whole and its field ownership cleared, because an apply leaves
// fields another manager owns in place (a container added by hand would
// survive it). It refuses to take over an object that is not this
// LoadBalancer's (the scope is stopped with a condition naming it). It
// reports whether it wrote.
func (r *LoadBalancerReconciler) applyOwned(ctx context.Context, s *scope, obj client.Object) (bool, error) {
	hash, err := desiredHash(obj)
	if err != nil {
		return false, err
	}
	kind := reflect.TypeOf(obj).Elem().Name()
	current := reflect.New(reflect.TypeOf(obj).Elem()).Interface().(client.Object)
	err = r.Client.Get(ctx, client.ObjectKeyFromObject(obj), current)
	switch {
	case apierrors.IsNotFound(err):
		// The cache holds only objects with hakeeper's labels: ask the API
		// server whether one without them is in the way.
		meta := &metav1.PartialObjectMetadata{}
		gvk, gvkErr := apiutil.GVKForObject(obj, r.Client.Scheme())
		if gvkErr != nil {
			return false, gvkErr
		}
		meta.SetGroupVersionKind(gvk)
		switch err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(obj), meta); {
		case err == nil:
			current = meta
		case !apierrors.IsNotFound(err):
			return false, err
		default:
			current = nil
		}
	case err != nil:
		return false, err
	}
	if current != nil && !ownedBy(current, s.lb) {
		s.stop(v1alpha1.LoadBalancerAdoptionRefusedReason, fmt.Sprintf(
			"%s %s/%s exists and is not hakeeper's for this LoadBalancer (labels %s=%q, %s=%q); hakeeper does not take over objects it did not create: delete or rename it",
			kind, obj.GetNamespace(), obj.GetName(), desired.LabelLoadBalancerNamespace, current.GetLabels()[desired.LabelLoadBalancerNamespace],
			desired.LabelLoadBalancer, current.GetLabels()[desired.LabelLoadBalancer]))
		return false, nil
	}
	annotations := obj.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[desired.AnnotationApplied] = hash
	obj.SetAnnotations(annotations)
	replaced := false
	if current != nil {
		foreign := foreignManagers(current)
		if len(foreign) == 0 && current.GetAnnotations()[desired.AnnotationApplied] == hash {
			return false, nil
		}
		if len(foreign) > 0 {
			if err := r.replace(ctx, obj, current); err != nil {
				return false, fmt.Errorf("failed to put back %s %s, written by %v: %w", kind, obj.GetName(), foreign, err)
			}
			ctrl.LoggerFrom(ctx).Info("Put back an object written by someone else", "kind", kind, "name", obj.GetName(), "managers", foreign)
			replaced = true
		}
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return false, err
	}
	// A typed object carries empty status and creationTimestamp; applying
	// them would claim fields that are not ours.
	delete(u, "status")
	unstructured.RemoveNestedField(u, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u, "spec", "template", "metadata", "creationTimestamp")
	applied := &unstructured.Unstructured{Object: u}
	err = r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(applied),
		client.FieldOwner(desired.FieldOwner), client.ForceOwnership)
	if err != nil {
		return false, fmt.Errorf("failed to apply %s %s: %w", u["kind"], obj.GetName(), err)
	}
	// The version written: an event about obj then refers to this change,
	// not to the object in general, and is not folded into the series of
	// an earlier change's event (which keeps the first note).
	obj.SetResourceVersion(applied.GetResourceVersion())
	if replaced {
		return true, r.keepApplyOwnership(ctx, applied)
	}
	return true, nil
}

// keepApplyOwnership drops the field ownership the replacing update left
// behind (to hakeeper's update, and to "before-first-apply", which the API
// server names the owner of what an object held when first applied after
// a reset), so the apply alone owns the fields and a field the desired
// state later leaves out is removed.
func (r *LoadBalancerReconciler) keepApplyOwnership(ctx context.Context, applied *unstructured.Unstructured) error {
	var keep []metav1.ManagedFieldsEntry
	for _, m := range applied.GetManagedFields() {
		if m.Subresource != "" || m.Manager == contract.AgentFieldManager ||
			(m.Manager == desired.FieldOwner && m.Operation == metav1.ManagedFieldsOperationApply) {
			keep = append(keep, m)
		}
	}
	if len(keep) == len(applied.GetManagedFields()) {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"resourceVersion": applied.GetResourceVersion(), "managedFields": keep}})
	if err != nil {
		return err
	}
	return r.Client.Patch(ctx, applied, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(desired.FieldOwner))
}

// replace overwrites current with exactly the desired object and clears
// every field manager (the API's documented way: managedFields set to one
// empty entry), so the apply that follows owns everything and nothing
// added by hand remains. The report ConfigMap keeps the agents' keys.
func (r *LoadBalancerReconciler) replace(ctx context.Context, obj, current client.Object) error {
	replacement := obj.DeepCopyObject().(client.Object)
	replacement.SetResourceVersion(current.GetResourceVersion())
	replacement.SetManagedFields([]metav1.ManagedFieldsEntry{{}})
	if cm, ok := replacement.(*corev1.ConfigMap); ok && cm.Labels[desired.LabelComponent] == desired.ComponentAgent {
		if live, ok := current.(*corev1.ConfigMap); ok {
			cm.Data = live.Data
		}
	}
	return r.Client.Update(ctx, replacement, client.FieldOwner(desired.FieldOwner))
}

// desiredHash identifies a desired object's content.
func desiredHash(obj client.Object) (string, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8]), nil
}
