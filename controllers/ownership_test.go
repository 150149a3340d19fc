package controllers_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
)

// container finds a container of the pod by name, init containers too.
func container(t *testing.T, pod *corev1.PodSpec, name string) *corev1.Container {
	t.Helper()
	for _, list := range [][]corev1.Container{pod.InitContainers, pod.Containers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	t.Fatalf("the pod has no container %s", name)
	return nil
}

func getDaemonSet(t *testing.T, lb *v1alpha1.LoadBalancer) *appsv1.DaemonSet {
	t.Helper()
	ds := &appsv1.DaemonSet{}
	eventually(t, "DaemonSet of "+lb.Name, func() error {
		return k8s.Get(ctx, client.ObjectKey{Namespace: dataPlaneNamespace, Name: desired.NamesFor(lb).DaemonSet}, ds)
	})
	return ds
}

// TestHandEditsArePutBack: whoever edits or deletes hakeeper's objects in
// the data-plane namespace by hand, the operator puts back what it
// rendered.
func TestHandEditsArePutBack(t *testing.T) {
	ns := namespace(t, "handedits")
	node(t, "he-1", "198.18.20.1", map[string]string{"pool": "handedits"})
	service(t, ns, "web", "http", 80, 8080, "198.18.12.11")
	createClass(t, testClass("handedits", "198.18.20.96/27"))
	lb := smallLB(ns, "handedits", "", "handedits")
	createLB(t, lb)
	names := desired.NamesFor(lb)
	waitApplied(t, lb)
	getDaemonSet(t, lb)
	settle(t)
	rendered := configMap(t, dataPlaneNamespace, names.HAProxyConfigMap).DeepCopy()
	renderedKeepalived := configMap(t, dataPlaneNamespace, names.KeepalivedConfigMap).DeepCopy()
	renderedDS := getDaemonSet(t, lb).DeepCopy()

	edited := rendered.DeepCopy()
	edited.Data[contract.KeyHAProxyConfig] = "global\n    # edited by hand\n"
	edited.Data[contract.KeySlots] = "{}"
	if err := k8s.Update(ctx, edited); err != nil {
		t.Fatal(err)
	}
	ds := renderedDS.DeepCopy()
	container(t, &ds.Spec.Template.Spec, desired.ContainerHAProxy).Image = "example.com/evil:latest"
	if err := k8s.Update(ctx, ds); err != nil {
		t.Fatal(err)
	}
	if ds.Generation == renderedDS.Generation {
		t.Fatalf("the hand edit did not change the DaemonSet's generation (%d)", ds.Generation)
	}
	eventually(t, "haproxy ConfigMap put back", func() error {
		cm := &corev1.ConfigMap{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(rendered), cm); err != nil {
			return err
		}
		if cm.Data[contract.KeyHAProxyConfig] != rendered.Data[contract.KeyHAProxyConfig] {
			return fmt.Errorf("haproxy.cfg differs:\n%s", lineDiff(cm.Data[contract.KeyHAProxyConfig], rendered.Data[contract.KeyHAProxyConfig]))
		}
		if !reflect.DeepEqual(cm.Data, rendered.Data) {
			return fmt.Errorf("data keys %v, want %v", keys(cm.Data), keys(rendered.Data))
		}
		return nil
	})
	eventually(t, "DaemonSet image put back", func() error {
		got := &appsv1.DaemonSet{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(renderedDS), got); err != nil {
			return err
		}
		if img := container(t, &got.Spec.Template.Spec, desired.ContainerHAProxy).Image; img != operatorImage {
			return fmt.Errorf("haproxy image %s, want %s", img, operatorImage)
		}
		return nil
	})

	// Deleted by hand: created again.
	if err := k8s.Delete(ctx, renderedKeepalived); err != nil {
		t.Fatal(err)
	}
	eventually(t, "keepalived ConfigMap created again", func() error {
		cm := &corev1.ConfigMap{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(renderedKeepalived), cm); err != nil {
			return err
		}
		if cm.UID == renderedKeepalived.UID {
			return fmt.Errorf("not deleted yet")
		}
		if !reflect.DeepEqual(cm.Data, renderedKeepalived.Data) {
			return fmt.Errorf("data keys %v, want %v", keys(cm.Data), keys(renderedKeepalived.Data))
		}
		return nil
	})

	// Once put back, nothing more is written: the operator does not fight
	// its own writes.
	before := settle(t)
	touch(t, lb)
	if after := settle(t); after != before {
		_, kinds := writes.snapshot()
		t.Errorf("a reconcile with nothing to put back wrote %d times (totals by kind %v)", after-before, kinds)
	}

	// What a hand edit adds (a key the agent would read for a node, an
	// environment variable) is no more what hakeeper rendered than what it
	// changes.
	t.Run("a ConfigMap key added by hand is removed", func(t *testing.T) {
		cm := configMap(t, dataPlaneNamespace, names.KeepalivedConfigMap)
		want := cm.DeepCopy().Data
		// The agent of node he-2 would run this, were he-2 selected while
		// its interface is not known yet.
		cm.Data["he-2.conf"] = "vrrp_instance hand_written {}\n"
		if err := k8s.Update(ctx, cm); err != nil {
			t.Fatal(err)
		}
		eventually(t, "keepalived ConfigMap put back", func() error {
			got := configMap(t, dataPlaneNamespace, names.KeepalivedConfigMap)
			if !reflect.DeepEqual(got.Data, want) {
				return fmt.Errorf("data keys %v, want %v", keys(got.Data), keys(want))
			}
			return nil
		})
	})

	t.Run("a DaemonSet field added by hand is removed", func(t *testing.T) {
		ds := getDaemonSet(t, lb)
		c := container(t, &ds.Spec.Template.Spec, desired.ContainerHAProxy)
		c.Env = append(c.Env, corev1.EnvVar{Name: "ADDED_BY_HAND", Value: "1"})
		if err := k8s.Update(ctx, ds); err != nil {
			t.Fatal(err)
		}
		eventually(t, "DaemonSet put back", func() error {
			got := getDaemonSet(t, lb)
			for _, e := range container(t, &got.Spec.Template.Spec, desired.ContainerHAProxy).Env {
				if e.Name == "ADDED_BY_HAND" {
					return fmt.Errorf("haproxy still has env %s=%s", e.Name, e.Value)
				}
			}
			return nil
		})
	})
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return sorted(out)
}

// touch changes an annotation of the LoadBalancer, which makes the manager
// reconcile it without changing its spec.
func touch(t *testing.T, lb *v1alpha1.LoadBalancer) {
	t.Helper()
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{"test.hakeeper.io/touched":%q}}}`, metav1.Now().Format("15:04:05.000000"))
	if err := k8s.Patch(ctx, &v1alpha1.LoadBalancer{ObjectMeta: metav1.ObjectMeta{Namespace: lb.Namespace, Name: lb.Name}},
		client.RawPatch("application/merge-patch+json", patch)); err != nil {
		t.Fatal(err)
	}
}

// TestAdoptionRefused: an object in the data-plane namespace with the name
// a LoadBalancer's would have, but not its labels, is neither taken over
// nor changed: the LoadBalancer is Degraded, naming it.
func TestAdoptionRefused(t *testing.T) {
	ns := namespace(t, "adoption")
	node(t, "ad-1", "198.18.21.1", map[string]string{"pool": "adoption"})
	service(t, ns, "web", "http", 80, 8080, "198.18.12.11")
	createClass(t, testClass("adoption", "198.18.21.96/27"))

	for _, tc := range []struct {
		name   string
		labels map[string]string
	}{
		{"unlabelled", nil},
		// In the manager's cache (managed by hakeeper) but another
		// LoadBalancer's.
		{"someone-elses", map[string]string{
			desired.LabelManagedBy: desired.ManagedBy, desired.LabelLoadBalancer: "other", desired.LabelLoadBalancerNamespace: "elsewhere"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lb := smallLB(ns, "adoption", "", "adoption")
			lb.Name = tc.name
			name := desired.NamesFor(lb).HAProxyConfigMap
			foreign := &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Namespace: dataPlaneNamespace, Name: name, Labels: tc.labels},
				Data:       map[string]string{contract.KeyHAProxyConfig: "# not hakeeper's\n", "owner": "someone"},
			}
			create(t, foreign)
			t.Cleanup(func() { deleteAndWait(t, foreign) })
			createLB(t, lb)
			waitDegraded(t, lb, v1alpha1.LoadBalancerAdoptionRefusedReason, "ConfigMap "+dataPlaneNamespace+"/"+name)
			settle(t)
			got := &corev1.ConfigMap{}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(foreign), got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Data, foreign.Data) || !reflect.DeepEqual(got.Labels, foreign.Labels) ||
				got.Annotations[desired.AnnotationApplied] != "" || got.ResourceVersion != foreign.ResourceVersion {
				t.Errorf("the foreign ConfigMap was changed: labels %v annotations %v data %v", got.Labels, got.Annotations, got.Data)
			}
			for _, owned := range gatherManagedFields(got) {
				if owned == desired.FieldOwner {
					t.Errorf("hakeeper became a field manager of the foreign ConfigMap")
				}
			}
			// Nothing that would read the foreign config is created.
			for _, obj := range []client.Object{
				&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: dataPlaneNamespace, Name: desired.NamesFor(lb).KeepalivedConfigMap}},
				&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: dataPlaneNamespace, Name: desired.NamesFor(lb).DaemonSet}},
			} {
				if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); !apierrors.IsNotFound(err) {
					t.Errorf("%T %s was created beside a refused ConfigMap (err %v)", obj, obj.GetName(), err)
				}
			}
			// Deleting the LoadBalancer leaves the foreign object alone.
			deleteAndWait(t, lb)
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(foreign), got); err != nil {
				t.Errorf("the foreign ConfigMap went with the LoadBalancer: %v", err)
			}
		})
	}
}

func gatherManagedFields(obj client.Object) []string {
	var out []string
	for _, m := range obj.GetManagedFields() {
		out = append(out, m.Manager)
	}
	return out
}

// TestFinalizerDeletesDataPlane: the data plane lives in another namespace
// than its LoadBalancer, where no owner reference reaches; deleting the
// LoadBalancer deletes every object of it there, then lets the
// LoadBalancer go (envtest runs no garbage collector: the finalizer alone
// does it).
func TestFinalizerDeletesDataPlane(t *testing.T) {
	ns := namespace(t, "finalizer")
	setNamespaceLabel(t, ns, v1alpha1.LabelTLSDelegation, v1alpha1.TLSDelegationAllowed)
	node(t, "fz-1", "198.18.22.1", map[string]string{"pool": "finalizer"})
	service(t, ns, "web", "http", 80, 8080, "198.18.12.11")
	createClass(t, testClass("finalizer", "198.18.22.96/27"))
	lb := smallLB(ns, "finalizer", "", "finalizer")
	lb.Spec.Listeners = append(lb.Spec.Listeners, v1alpha1.Listener{Name: "https", Port: 443, Protocol: v1alpha1.ProtocolHTTP,
		DefaultBackend: "web", TLS: &v1alpha1.ListenerTLS{SecretRef: v1alpha1.SecretReference{Name: "web-tls"}}})
	createLB(t, lb)
	// Another LoadBalancer's data plane, which must survive.
	other := smallLB(ns, "finalizer", "", "finalizer")
	other.Name = "other"
	createLB(t, other)
	checkOwnership(t, lb)
	checkOwnership(t, other)

	if err := k8s.Delete(ctx, lb); err != nil {
		t.Fatal(err)
	}
	waitDataPlaneGone(t, lb)
	eventually(t, "LoadBalancer gone", func() error {
		err := k8s.Get(ctx, client.ObjectKeyFromObject(lb), &v1alpha1.LoadBalancer{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (err %v)", err)
	})
	for _, obj := range dataPlaneObjects(other) {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			t.Errorf("%T %s of another LoadBalancer: %v", obj, obj.GetName(), err)
		}
	}
}

// TestDaemonSetShape: the pod holds no API token but in the agent, a
// native sidecar; HAProxy and Keepalived run the class's image with its
// resources, the agent the operator's; the pods go where the class and the
// LoadBalancer together say, with the class's tolerations only.
func TestDaemonSetShape(t *testing.T) {
	ns := namespace(t, "shape")
	class := testClass("shape", "198.18.23.96/27")
	class.Spec.DataPlane.NodeSelector = map[string]string{"hakeeper.io/tier": "edge"}
	class.Spec.DataPlane.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "lb", Effect: corev1.TaintEffectNoSchedule}}
	class.Spec.DataPlane.Image = "registry.example.com/dataplane:class"
	class.Spec.DataPlane.HAProxyResources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
	}
	createClass(t, class)
	node(t, "sh-1", "198.18.23.1", map[string]string{"hakeeper.io/tier": "edge", "pool": "shape"},
		corev1.Taint{Key: "dedicated", Value: "lb", Effect: corev1.TaintEffectNoSchedule})
	// Matches the LoadBalancer's selector but not the class's.
	node(t, "sh-2", "198.18.23.2", map[string]string{"pool": "shape"})
	service(t, ns, "web", "http", 80, 8080, "198.18.12.11")
	lb := smallLB(ns, "shape", "", "shape")
	createLB(t, lb)
	names := desired.NamesFor(lb)
	pod := getDaemonSet(t, lb).Spec.Template.Spec

	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("the pod must not automount a token: %v", pod.AutomountServiceAccountToken)
	}
	if pod.ServiceAccountName != names.ServiceAccount {
		t.Errorf("service account %q, want %q", pod.ServiceAccountName, names.ServiceAccount)
	}
	if len(pod.InitContainers) != 1 || pod.InitContainers[0].Name != desired.ContainerAgent {
		t.Fatalf("want the agent as the only init container, got %d", len(pod.InitContainers))
	}
	agent := &pod.InitContainers[0]
	if agent.RestartPolicy == nil || *agent.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("the agent must be a native sidecar (restartPolicy Always): %v", agent.RestartPolicy)
	}
	const tokenPath = "/var/run/secrets/kubernetes.io/serviceaccount"
	found := false
	for _, m := range agent.VolumeMounts {
		if m.Name == "agent-token" {
			found = m.MountPath == tokenPath && m.ReadOnly
		}
	}
	if !found {
		t.Errorf("the agent must mount volume agent-token read-only at %s: %+v", tokenPath, agent.VolumeMounts)
	}
	var tokenVolume *corev1.Volume
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == "agent-token" {
			tokenVolume = &pod.Volumes[i]
		}
	}
	if tokenVolume == nil || tokenVolume.Projected == nil || len(tokenVolume.Projected.Sources) == 0 ||
		tokenVolume.Projected.Sources[0].ServiceAccountToken == nil {
		t.Errorf("volume agent-token must project the service account token: %+v", tokenVolume)
	}
	for _, name := range []string{desired.ContainerHAProxy, desired.ContainerKeepalived} {
		c := container(t, &pod, name)
		for _, m := range c.VolumeMounts {
			if m.Name == "agent-token" || strings.HasPrefix(m.MountPath, "/var/run/secrets") {
				t.Errorf("%s mounts %s at %s: it must hold no credential", name, m.Name, m.MountPath)
			}
		}
		if c.Image != class.Spec.DataPlane.Image {
			t.Errorf("%s runs %s, want the class's image %s", name, c.Image, class.Spec.DataPlane.Image)
		}
	}
	if agent.Image != operatorImage {
		t.Errorf("the agent runs %s, want the operator's image %s", agent.Image, operatorImage)
	}
	if got := container(t, &pod, desired.ContainerHAProxy).Resources; !reflect.DeepEqual(got.Requests, class.Spec.DataPlane.HAProxyResources.Requests) ||
		!got.Limits.Memory().Equal(resource.MustParse("256Mi")) {
		t.Errorf("haproxy resources %+v, want the class's %+v", got, class.Spec.DataPlane.HAProxyResources)
	}
	if got := container(t, &pod, desired.ContainerKeepalived).Resources.Requests; got.Cpu().IsZero() || got.Memory().IsZero() {
		t.Errorf("keepalived, for which the class sets nothing, must keep the default requests: %+v", got)
	}
	wantSelector := map[string]string{"hakeeper.io/tier": "edge", "pool": "shape"}
	if !reflect.DeepEqual(pod.NodeSelector, wantSelector) {
		t.Errorf("node selector %v, want the class's and the LoadBalancer's together: %v", pod.NodeSelector, wantSelector)
	}
	if !reflect.DeepEqual(pod.Tolerations, class.Spec.DataPlane.Tolerations) {
		t.Errorf("tolerations %+v, want the class's %+v", pod.Tolerations, class.Spec.DataPlane.Tolerations)
	}
	sa := &corev1.ServiceAccount{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: dataPlaneNamespace, Name: names.ServiceAccount}, sa); err != nil {
		t.Fatal(err)
	}
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("the agents' ServiceAccount must not automount a token: %v", sa.AutomountServiceAccountToken)
	}
	// Only the node both select, tainted but tolerated, runs the data plane.
	eventually(t, "status nodes", func() error {
		nodes := getLB(t, lb).Status.Nodes
		if len(nodes) != 1 || nodes[0].Name != "sh-1" {
			return fmt.Errorf("status.nodes %+v, want sh-1 only", nodes)
		}
		return nil
	})

	t.Run("a selector contradicting the class's is refused", func(t *testing.T) {
		wide := smallLB(ns, "shape", "", "shape")
		wide.Name = "contradicts"
		wide.Spec.NodeSelector["hakeeper.io/tier"] = "core"
		createLB(t, wide)
		waitDegraded(t, wide, v1alpha1.LoadBalancerNotAllowedByClassReason, "spec.nodeSelector.hakeeper.io/tier")
		assertNothingApplied(t, wide)
	})
}

// waitDataPlaneGone waits until none of lb's objects is left in the
// data-plane namespace.
func waitDataPlaneGone(t *testing.T, lb *v1alpha1.LoadBalancer) {
	t.Helper()
	eventually(t, "data plane deleted", func() error {
		var left []string
		for _, obj := range dataPlaneObjects(lb) {
			switch err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); {
			case err == nil:
				left = append(left, fmt.Sprintf("%T %s", obj, obj.GetName()))
			case !apierrors.IsNotFound(err):
				return err
			}
		}
		if len(left) > 0 {
			return fmt.Errorf("still there: %s", strings.Join(left, ", "))
		}
		return nil
	})
}

// TestDeletionDoesNotWaitForUnreachableNodes: a deleted LoadBalancer's
// virtual IPs stay claimed while its data-plane pods run, but a pod on a
// node that is not Ready can only be reported gone once the node is back
// or deleted: waiting for it would hang the deletion, and with it a
// namespace's. The finalizer waits for the pod while its node is Ready,
// and lets the LoadBalancer go once the node is not.
func TestDeletionDoesNotWaitForUnreachableNodes(t *testing.T) {
	ns := namespace(t, "unreachable")
	n := node(t, "ur-1", "198.18.24.1", map[string]string{"pool": "unreachable"})
	setReady := func(status corev1.ConditionStatus) {
		t.Helper()
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(n), n); err != nil {
			t.Fatal(err)
		}
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status, LastHeartbeatTime: metav1.Now()}}
		if err := k8s.Status().Update(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	setReady(corev1.ConditionTrue)
	service(t, ns, "web", "http", 80, 8080, "198.18.12.11")
	createClass(t, testClass("unreachable", "198.18.24.96/27"))
	lb := smallLB(ns, "unreachable", "", "unreachable")
	createLB(t, lb)
	// Reconciled: the finalizer is on (it is added before anything is
	// applied).
	getDaemonSet(t, lb)
	// The pod the DaemonSet controller would have made (envtest runs no
	// controllers and no kubelet: it stays until deleted).
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: dataPlaneNamespace, Name: "ur-pod", Labels: desired.DataPlaneSelector(lb)},
		Spec:       corev1.PodSpec{NodeName: n.Name, Containers: []corev1.Container{{Name: "haproxy", Image: "haproxy"}}},
	}
	if err := k8s.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(ctx, pod) })
	if err := k8s.Delete(ctx, lb); err != nil {
		t.Fatal(err)
	}
	// Several finalizer passes (one a second) while the node is Ready.
	time.Sleep(3 * time.Second)
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(lb), &v1alpha1.LoadBalancer{}); err != nil {
		t.Fatalf("the LoadBalancer went while its pod ran on a Ready node: %v", err)
	}
	setReady(corev1.ConditionUnknown)
	eventually(t, "LoadBalancer gone once its pod's node is unreachable", func() error {
		err := k8s.Get(ctx, client.ObjectKeyFromObject(lb), &v1alpha1.LoadBalancer{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (err %v)", err)
	})
}
