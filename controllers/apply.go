package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/render"
)

// apply writes the owned objects: the agent's identity first, then the
// configs, then the DaemonSet that reads them.
func (r *LoadBalancerReconciler) apply(ctx context.Context, s *scope) error {
	lb := s.lb
	objects := []client.Object{
		desired.AgentServiceAccount(lb),
		desired.AgentRole(lb),
		desired.AgentRoleBinding(lb),
		desired.ReportConfigMap(lb),
	}
	for _, obj := range objects {
		if _, err := r.applyOwned(ctx, obj); err != nil {
			return err
		}
	}
	haproxyCM := desired.HAProxyConfigMap(lb, s.haproxyCfg, slotKeys(s.endpoints))
	changed, err := r.applyOwned(ctx, haproxyCM)
	if err != nil {
		return err
	}
	if changed {
		r.Recorder.Eventf(lb, haproxyCM, corev1.EventTypeNormal, "ConfigUpdated", "Apply",
			"haproxy.cfg updated (%d bytes, servers: %v)", len(s.haproxyCfg), s.serversTotal)
	}
	record := desired.VRRPRecord{VirtualRouterID: s.routerID, Priorities: priorities(s.nodes),
		PreemptDelaySeconds: render.PreemptHoldSeconds(&lb.Spec.VRRP)}
	keepalivedCM := desired.KeepalivedConfigMap(lb, s.keepalived, record)
	if changed, err = r.applyOwned(ctx, keepalivedCM); err != nil {
		return err
	}
	if changed {
		r.Recorder.Eventf(lb, keepalivedCM, corev1.EventTypeNormal, "ConfigUpdated", "Apply",
			"keepalived.conf updated for %d nodes (router ID %d, priorities %v)", len(s.keepalived), s.routerID, record.Priorities)
	}
	ds := desired.DaemonSet(lb, r.DataPlane)
	if changed, err = r.applyOwned(ctx, ds); err != nil {
		return err
	}
	if changed {
		r.Recorder.Eventf(lb, ds, corev1.EventTypeNormal, "DaemonSetUpdated", "Apply", "DaemonSet %s applied", ds.Name)
	}
	s.daemonSet, err = getOptional(ctx, r.Client, client.ObjectKeyFromObject(ds), &appsv1.DaemonSet{})
	return err
}

// applyOwned server-side applies obj, complete, as the hakeeper field
// owner. It skips the request when the cached object carries the hash of
// exactly this desired state, so a reconcile that changes nothing writes
// nothing. It reports whether it wrote.
func (r *LoadBalancerReconciler) applyOwned(ctx context.Context, obj client.Object) (bool, error) {
	hash, err := desiredHash(obj)
	if err != nil {
		return false, err
	}
	current := reflect.New(reflect.TypeOf(obj).Elem()).Interface().(client.Object)
	err = r.Client.Get(ctx, client.ObjectKeyFromObject(obj), current)
	switch {
	case err == nil && current.GetAnnotations()[desired.AnnotationApplied] == hash:
		return false, nil
	case err != nil && !apierrors.IsNotFound(err):
		return false, err
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
	err = r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(&unstructured.Unstructured{Object: u}),
		client.FieldOwner(desired.FieldOwner), client.ForceOwnership)
	if err != nil {
		return false, fmt.Errorf("failed to apply %s %s: %w", u["kind"], obj.GetName(), err)
	}
	return true, nil
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
