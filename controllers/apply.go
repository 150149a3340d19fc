package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
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
	haproxyCM := desired.HAProxyConfigMap(lb, ns, s.haproxyCfg, s.servers, slotKeys(s.endpoints))
	changed, err := r.applyOwned(ctx, s, haproxyCM)
	if err != nil || s.stopped() {
		return err
	}
	if changed {
		r.Recorder.Eventf(lb, haproxyCM, corev1.EventTypeNormal, "ConfigUpdated", "Apply",
			"haproxy.cfg updated (%d bytes, servers: %v)", len(s.haproxyCfg), s.serversTotal)
	}
	record := desired.VRRPRecord{VirtualRouterID: s.routerID, Priorities: priorities(s.nodes),
		PreemptDelaySeconds: render.PreemptHoldSeconds(&s.spec.VRRP)}
	keepalivedCM := desired.KeepalivedConfigMap(lb, ns, s.keepalived, record)
	if changed, err = r.applyOwned(ctx, s, keepalivedCM); err != nil || s.stopped() {
		return err
	}
	if changed {
		r.Recorder.Eventf(lb, keepalivedCM, corev1.EventTypeNormal, "ConfigUpdated", "Apply",
			"keepalived.conf updated for %d nodes (router ID %d, priorities %v)", len(s.keepalived), s.routerID, record.Priorities)
	}
	ds := desired.DaemonSet(lb, desired.DataPlaneInput{Options: r.DataPlane, Class: s.class.Spec.DataPlane, NodeSelector: s.placement.NodeSelector})
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
		for _, obj := range []client.Object{binding, &rbacv1.Role{ObjectMeta: binding.ObjectMeta}} {
			current, err := getOptional(ctx, r.Client, client.ObjectKeyFromObject(obj), obj.DeepCopyObject().(client.Object))
			if err != nil {
				return err
			}
			if current != nil && ownedBy(current, s.lb) {
				if err := client.IgnoreNotFound(r.Client.Delete(ctx, current)); err != nil {
					return fmt.Errorf("failed to delete %s: %w", current.GetName(), err)
				}
			}
		}
		return nil
	}
	if _, err := r.applyOwned(ctx, s, role); err != nil {
		if apierrors.IsForbidden(err) {
			s.missing = append(s.missing, fmt.Sprintf("the agents cannot be given the TLS Secrets: %v", err))
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

// ownedBy tells whether obj carries the labels of lb's objects.
func ownedBy(obj client.Object, lb *v1alpha1.LoadBalancer) bool {
	l := obj.GetLabels()
	return l[desired.LabelManagedBy] == desired.ManagedBy && l[desired.LabelLoadBalancer] == lb.Name &&
		l[desired.LabelLoadBalancerNamespace] == lb.Namespace
}

// writtenKey identifies an owned object in the written record.
func writtenKey(obj client.Object) string {
	return fmt.Sprintf("%T/%s/%s", obj, obj.GetNamespace(), obj.GetName())
}

// version is what changes when someone other than the agents edits an
// object: a DaemonSet's generation (its status changes all the time), a
// report ConfigMap's nothing (agents write its data), anything else's
// resourceVersion.
func version(obj client.Object) string {
	switch {
	case obj.GetLabels()[desired.LabelComponent] == desired.ComponentAgent && strings.HasSuffix(obj.GetName(), "-report"):
		return "report"
	case obj.GetObjectKind().GroupVersionKind().Kind == "DaemonSet":
		return fmt.Sprint(obj.GetGeneration())
	default:
		if _, ok := obj.(*appsv1.DaemonSet); ok {
			return fmt.Sprint(obj.GetGeneration())
		}
		return obj.GetResourceVersion()
	}
}

// applyOwned server-side applies obj, complete, as the hakeeper field
// owner. It skips the request when the object carries the hash of exactly
// this desired state and nobody has written it since this process did, so
// a reconcile that changes nothing writes nothing while a hand edit is put
// back. It refuses to take over an object that is not this LoadBalancer's
// (the scope is stopped with a condition naming it). It reports whether it
// wrote.
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
	key := writtenKey(obj)
	if current != nil && current.GetAnnotations()[desired.AnnotationApplied] == hash {
		if last, ok := r.written.Load(key); ok && last == version(current) {
			return false, nil
		}
	}
	annotations := obj.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[desired.AnnotationApplied] = hash
	obj.SetAnnotations(annotations)
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
	r.written.Store(key, version(applied))
	return current == nil || current.GetAnnotations()[desired.AnnotationApplied] != hash, nil
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
