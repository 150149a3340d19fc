package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/rollout"
)

// rolloutRecheck is how often a rollout in progress is looked at again
// when no pod, report or DaemonSet event comes first.
const rolloutRecheck = 2 * time.Second

// planRollout builds the DaemonSet to apply and plans the next step of
// replacing the pods made from an older template. It runs before apply:
// a node handing the virtual IPs over is listed under maintenance in the
// keepalived ConfigMap, which its agent, of the old pod, already reads.
func (r *LoadBalancerReconciler) planRollout(ctx context.Context, s *scope) error {
	s.desiredDaemonSet = desired.DaemonSet(s.lb, desired.DataPlaneInput{Options: r.DataPlane, Class: s.Class.Spec.DataPlane,
		NodeSelector: s.Placement.NodeSelector, RouterID: s.RouterID})
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.InNamespace(r.DataPlane.Namespace), client.MatchingFields{indexPodLoadBalancer: keyOf(s.lb)}); err != nil {
		return fmt.Errorf("failed to list the data plane's pods: %w", err)
	}
	want := s.desiredDaemonSet.Spec.Template.Annotations[desired.AnnotationTemplate]
	perNode := map[string]int{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			perNode[p.Spec.NodeName]++
		}
	}
	in := make([]rollout.Pod, 0, len(pods.Items))
	for _, p := range pods.Items {
		since, _ := time.Parse(time.RFC3339, p.Annotations[desired.AnnotationHandover])
		in = append(in, rollout.Pod{Name: p.Name, UID: string(p.UID), Node: p.Spec.NodeName,
			Current: p.Annotations[desired.AnnotationTemplate] == want, Terminating: p.DeletionTimestamp != nil,
			Ready: podReady(&p), HandoverSince: since})
	}
	nodes := map[string]rollout.Node{}
	wanted := make([]string, 0, len(s.Nodes))
	for _, n := range s.Nodes {
		wanted = append(wanted, n.Name)
		rep, ok := s.reports[n.Name]
		if !ok {
			continue
		}
		var node rollout.Node
		if rep.HoldsObserved {
			node.Holds = len(rep.Holds) > 0
		} else {
			node.Holds = rep.Role == v1alpha1.VRRPRoleMaster
		}
		if rep.Healthy && rep.ConfigHash == s.ExpectedHash[n.Name] {
			node.ServingPod = rep.Pod
			// An agent from before reports named their pod speaks for
			// the one pod on its node.
			if rep.Pod == "" && perNode[n.Name] == 1 {
				i := slices.IndexFunc(pods.Items, func(p corev1.Pod) bool { return p.Spec.NodeName == n.Name && p.DeletionTimestamp == nil })
				node.ServingPod = pods.Items[i].Name
			}
		}
		nodes[n.Name] = node
	}
	s.rollout = rollout.Next(in, nodes, wanted, r.now())
	for _, n := range s.rollout.Handover {
		if !slices.Contains(s.Maintenance, n) {
			s.Maintenance = append(s.Maintenance, n)
		}
	}
	return nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// rollOut carries out the planned step once the DaemonSet controller runs
// the applied template: a pod deleted earlier would come back from the
// older one.
func (r *LoadBalancerReconciler) rollOut(ctx context.Context, s *scope) error {
	p := s.rollout
	for _, pod := range p.Unmark {
		if err := r.annotatePod(ctx, pod, nil); err != nil {
			return err
		}
	}
	if p.Done {
		return nil
	}
	if s.retryAfter == 0 || rolloutRecheck < s.retryAfter {
		s.retryAfter = rolloutRecheck
	}
	want := s.desiredDaemonSet.Spec.Template.Annotations[desired.AnnotationTemplate]
	if ds := s.daemonSet; ds == nil || ds.Spec.Template.Annotations[desired.AnnotationTemplate] != want || ds.Status.ObservedGeneration < ds.Generation {
		s.rollout.Waiting = "the DaemonSet controller has not seen the current template yet"
		return nil
	}
	switch p.Action {
	case rollout.MarkHandover:
		if err := r.annotatePod(ctx, p.Pod, ptr.To(r.now().UTC().Format(time.RFC3339))); err != nil {
			return err
		}
		r.Recorder.Eventf(s.lb, nil, corev1.EventTypeNormal, "HandingOver", "RollOut", "%s", p.Reason)
	case rollout.Delete:
		pod := &corev1.Pod{}
		pod.Namespace, pod.Name = r.DataPlane.Namespace, p.Pod.Name
		// Preconditioned on the pod planned with: a pod that replaced it
		// meanwhile is not deleted.
		err := r.Client.Delete(ctx, pod, client.Preconditions{UID: ptr.To(types.UID(p.Pod.UID))})
		if err := client.IgnoreNotFound(err); err != nil {
			return fmt.Errorf("failed to delete pod %s to roll it: %w", p.Pod.Name, err)
		}
		s.rollout.Waiting = fmt.Sprintf("replacing pod %s on node %s", p.Pod.Name, p.Pod.Node)
		r.Recorder.Eventf(s.lb, nil, corev1.EventTypeNormal, "PodReplaced", "RollOut",
			"Deleted pod %s on node %s to run the current template: %s", p.Pod.Name, p.Pod.Node, p.Reason)
	}
	return nil
}

// annotatePod sets or (nil) removes the handover mark.
func (r *LoadBalancerReconciler) annotatePod(ctx context.Context, p rollout.Pod, value *string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"uid":         p.UID,
		"annotations": map[string]*string{desired.AnnotationHandover: value},
	}})
	if err != nil {
		return err
	}
	pod := &corev1.Pod{}
	pod.Namespace, pod.Name = r.DataPlane.Namespace, p.Name
	// The uid makes the patch fail on a pod that replaced the one planned
	// with; that one is not to be marked.
	err = r.Client.Patch(ctx, pod, client.RawPatch(types.MergePatchType, patch))
	if err := client.IgnoreNotFound(err); err != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("failed to mark pod %s for a handover: %w", p.Name, err)
	}
	return nil
}
