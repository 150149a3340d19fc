package controllers_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
)

// TestRolloutHandsOverLast: the API server here runs no DaemonSet
// controller and no kubelet, so the test plays both (it makes the pods,
// marks them ready, finishes their deletion) and the agents (their
// reports). Pods made from an older template are replaced one at a time,
// the backups first, each after the last replaced one serves; the node
// holding the virtual IP is lowered first (listed under maintenance for
// its agent) and its pod deleted only once it no longer holds it.
func TestRolloutHandsOverLast(t *testing.T) {
	ns := namespace(t, "rollout")
	nodes := []string{"r-1", "r-2", "r-3"}
	for i, n := range nodes {
		node(t, n, fmt.Sprintf("198.18.7.%d", i+1), map[string]string{"pool": "rollout"})
	}
	service(t, ns, "web", "http", 80, 8080, "198.18.7.11")
	createClass(t, testClass("rollout", "198.18.7.96/27"))
	lb := smallLB(ns, "rollout", "198.18.7.100", "rollout")
	createLB(t, lb)
	names := desired.NamesFor(lb)
	vipAddr := "198.18.7.100"

	ds := &appsv1.DaemonSet{}
	eventually(t, "the DaemonSet, and every node's keepalived.conf", func() error {
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: dataPlaneNamespace, Name: names.DaemonSet}, ds); err != nil {
			return err
		}
		if n := len(configMap(t, dataPlaneNamespace, names.KeepalivedConfigMap).Data); n != len(nodes)+1 {
			return fmt.Errorf("%d keys", n)
		}
		return nil
	})
	if ds.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType {
		t.Fatalf("update strategy %q: the operator must drive the rollout", ds.Spec.UpdateStrategy.Type)
	}
	current := ds.Spec.Template.Annotations[desired.AnnotationTemplate]
	if current == "" {
		t.Fatal("the pod template carries no template hash")
	}
	// The DaemonSet controller has seen the template.
	ds.Status.ObservedGeneration = ds.Generation
	if err := k8s.Status().Update(ctx, ds); err != nil {
		t.Fatal(err)
	}

	hash := func(node string) string {
		h := configMap(t, dataPlaneNamespace, names.HAProxyConfigMap).Data[contract.KeyHAProxyConfig]
		k := configMap(t, dataPlaneNamespace, names.KeepalivedConfigMap).Data[node+".conf"]
		return contract.NodeConfigHash([]byte(h), []byte(k))
	}
	holder := "r-1"
	report := func(node, pod string) {
		var holds []string
		if node == holder {
			holds = []string{vipAddr}
		}
		reportNode(t, lb, node, contract.NodeReport{Pod: pod, Role: v1alpha1.VRRPRoleBackup, ConfigHash: hash(node), Healthy: true,
			HoldsObserved: true, Holds: holds, Backends: map[string]contract.BackendCount{"web": {Up: 1, Total: 1}}})
	}
	// startPod plays the agent, the DaemonSet controller and the kubelet:
	// the agent's report naming the pod (first: an old pod that does not
	// serve would be replaced before the backups), then a ready pod made
	// from the template with this hash.
	startPod := func(node, name, templateHash string) {
		t.Helper()
		report(node, name)
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: dataPlaneNamespace, Name: name, Labels: ds.Spec.Template.Labels,
				Annotations: map[string]string{desired.AnnotationTemplate: templateHash}},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "haproxy", Image: "haproxy"}}},
		}
		create(t, pod)
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		if err := k8s.Status().Update(ctx, pod); err != nil {
			t.Fatal(err)
		}
	}
	maintenance := func() []string {
		return contract.ParseVRRPRecord(configMap(t, dataPlaneNamespace, names.KeepalivedConfigMap)).Maintenance
	}
	// replaced waits for the operator to delete node's old pod, checks
	// that the nodes under maintenance are lowered while it stops, and
	// finishes the deletion as the kubelet would.
	replaced := func(node string, lowered ...string) {
		t.Helper()
		pod := &corev1.Pod{}
		key := client.ObjectKey{Namespace: dataPlaneNamespace, Name: "old-" + node}
		eventually(t, "the operator deleting "+key.Name, func() error {
			if err := k8s.Get(ctx, key, pod); apierrors.IsNotFound(err) {
				return nil
			} else if err != nil {
				return err
			}
			if pod.DeletionTimestamp == nil {
				return fmt.Errorf("not deleted; %+v", condition(getLB(t, lb), v1alpha1.LoadBalancerProgressingCondition))
			}
			return nil
		})
		// One at a time: no other old pod is being deleted.
		var pods corev1.PodList
		if err := k8s.List(ctx, &pods, client.InNamespace(dataPlaneNamespace), client.MatchingLabels(ds.Spec.Template.Labels)); err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if p.Name != key.Name && p.DeletionTimestamp != nil {
				t.Fatalf("%s deleted together with %s", p.Name, key.Name)
			}
		}
		if m := maintenance(); !slices.Equal(m, lowered) {
			t.Errorf("while %s stops, maintenance %v, want %v", key.Name, m, lowered)
		}
		if err := k8s.Delete(ctx, pod, client.GracePeriodSeconds(0)); client.IgnoreNotFound(err) != nil {
			t.Fatal(err)
		}
		eventually(t, key.Name+" gone", func() error {
			if err := k8s.Get(ctx, key, &corev1.Pod{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("still there (%v)", err)
			}
			return nil
		})
	}

	for _, n := range nodes {
		startPod(n, "old-"+n, "older-template")
	}
	t.Cleanup(func() {
		var pods corev1.PodList
		_ = k8s.List(ctx, &pods, client.InNamespace(dataPlaneNamespace), client.MatchingLabels(ds.Spec.Template.Labels))
		for i := range pods.Items {
			_ = k8s.Delete(ctx, &pods.Items[i], client.GracePeriodSeconds(0))
		}
	})

	// The backups first, by name, each once the last serves.
	replaced("r-2")
	startPod("r-2", "new-r-2", current)
	replaced("r-3")
	startPod("r-3", "new-r-3", current)

	// The holder last: marked, lowered, and not deleted while it holds.
	eventually(t, "r-1 marked and under maintenance", func() error {
		pod := &corev1.Pod{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: dataPlaneNamespace, Name: "old-r-1"}, pod); err != nil {
			return err
		}
		if pod.Annotations[desired.AnnotationHandover] == "" {
			return fmt.Errorf("not marked: %v", pod.Annotations)
		}
		if m := maintenance(); !slices.Equal(m, []string{"r-1"}) {
			return fmt.Errorf("maintenance %v", m)
		}
		return nil
	})
	waitEvent(t, lb, "HandingOver")
	// Reconciled twice more (the rollout rechecks while it waits): the
	// holder's pod is still there, not merely not reached yet.
	reconciledAgain(t, lb, reconciles(t, lb), 2)
	pod := &corev1.Pod{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: dataPlaneNamespace, Name: "old-r-1"}, pod); err != nil || pod.DeletionTimestamp != nil {
		t.Fatalf("the holder's pod went before it handed over: %v, deletion %v", err, pod.DeletionTimestamp)
	}
	eventually(t, "Progressing naming the handover", func() error {
		c := condition(getLB(t, lb), v1alpha1.LoadBalancerProgressingCondition)
		if c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "node r-1 hands the virtual IPs over") {
			return fmt.Errorf("progressing %+v", c)
		}
		return nil
	})

	// r-2 takes the VIP: r-1's pod goes, still lowered until replaced.
	holder = "r-2"
	report("r-1", "old-r-1")
	report("r-2", "new-r-2")
	// Still lowered while its pod stops, so the keepalived in it cannot
	// take the VIP back.
	replaced("r-1", "r-1")
	startPod("r-1", "new-r-1", current)
	eventually(t, "rolled: nothing under maintenance, Progressing false", func() error {
		if m := maintenance(); len(m) != 0 {
			return fmt.Errorf("maintenance %v", m)
		}
		c := condition(getLB(t, lb), v1alpha1.LoadBalancerProgressingCondition)
		if c == nil || c.Status != metav1.ConditionFalse {
			return fmt.Errorf("progressing %+v", c)
		}
		return nil
	})
	waitEvent(t, lb, "PodReplaced")
	var pods corev1.PodList
	if err := k8s.List(ctx, &pods, client.InNamespace(dataPlaneNamespace), client.MatchingLabels(ds.Spec.Template.Labels)); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Annotations[desired.AnnotationTemplate] != current {
			t.Errorf("pod %s: deleting %v, template %s", p.Name, p.DeletionTimestamp, p.Annotations[desired.AnnotationTemplate])
		}
	}
}
