package admission

import (
	"context"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
)

const (
	shapePolicy        = "hakeeper-dataplane-shape"
	podsPolicy         = "hakeeper-dataplane-pods"
	paramsPolicy       = "hakeeper-dataplane-params"
	paramsName         = "hakeeper-dataplane-policy"
	dataPlaneNamespace = "hakeeper-system"
	// manager is the user name config/admission's parameters give the
	// manager (its ServiceAccount in config/rbac).
	manager        = "system:serviceaccount:hakeeper-system:hakeeper-controller-manager"
	dataPlaneImage = "ghcr.io/hakeeper/dataplane:latest"
)

// TestDataPlaneShape: the manager's token may write in hakeeper-system
// only data-plane DaemonSets of hakeeper's shape, with allowed images. The
// manager's own DaemonSet for a LoadBalancer (internal/desired) passes;
// each change an attacker holding the token would make to run something
// else on the nodes is refused, by name; the same DaemonSets from anyone
// else (the admin) are not matched. The manager may annotate a data-plane
// pod but not change its spec (a pod's image is mutable), and may not
// change the policy's parameters.
func TestDataPlaneShape(t *testing.T) {
	ctx := context.Background()
	applyAdmissionConfig(t)
	for _, name := range []string{shapePolicy, podsPolicy, paramsPolicy} {
		checkPolicyTypes(t, name)
	}
	grant(t, dataPlaneNamespace, manager,
		rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"daemonsets"}, Verbs: []string{"create", "update", "patch"}},
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods", "configmaps"}, Verbs: []string{"create", "update", "patch", "delete", "get"}})
	mgr := as(t, manager)

	lb := &v1alpha1.LoadBalancer{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}}
	good := desired.DaemonSet(lb, desired.DataPlaneInput{
		Options:  desired.DataPlaneOptions{Namespace: dataPlaneNamespace, Image: dataPlaneImage, MetricsBasePort: 9800},
		RouterID: 7,
	})
	create := func(c client.Client, ds *appsv1.DaemonSet) error {
		return c.Create(ctx, ds.DeepCopy(), client.DryRunAll)
	}
	badImage := good.DeepCopy()
	badImage.Spec.Template.Spec.Containers[0].Image = "evil.example/root:latest"
	untilDenied(t, shapePolicy, func() error { return create(mgr, badImage) })
	if err := create(mgr, good); err != nil {
		t.Fatalf("the manager's own DaemonSet is refused: %v", err)
	}
	// As the manager writes it by default: HTTP probes of the loopback.
	probed := desired.DaemonSet(lb, desired.DataPlaneInput{
		Options: desired.DataPlaneOptions{Namespace: dataPlaneNamespace, Image: dataPlaneImage, MetricsBasePort: 9800,
			HealthBasePort: desired.DefaultHealthBasePort},
		RouterID: 7,
	})
	if err := create(mgr, probed); err != nil {
		t.Fatalf("the manager's own DaemonSet with HTTP probes is refused: %v", err)
	}
	// At the PriorityClass the parameters allow, as the manager writes it
	// with --dataplane-priority-class.
	ranked := desired.DaemonSet(lb, desired.DataPlaneInput{
		Options:  desired.DataPlaneOptions{Namespace: dataPlaneNamespace, Image: dataPlaneImage, PriorityClassName: "hakeeper-dataplane"},
		RouterID: 7,
	})
	if err := create(mgr, ranked); err != nil {
		t.Fatalf("the manager's own DaemonSet at its PriorityClass is refused: %v", err)
	}
	wantDeniedBy(t, shapePolicy, create(mgr, badImage), "evil.example/root:latest is not allowed")
	if err := create(env.Client, badImage); err != nil {
		t.Errorf("the admin's DaemonSet is matched: %v", err)
	}

	container := func(ds *appsv1.DaemonSet, name string) *corev1.Container {
		spec := &ds.Spec.Template.Spec
		for i := range spec.Containers {
			if spec.Containers[i].Name == name {
				return &spec.Containers[i]
			}
		}
		return &spec.InitContainers[0]
	}
	for _, tc := range []struct {
		name   string
		mutate func(*appsv1.DaemonSet)
		want   string
	}{
		{"haproxy gains NET_ADMIN", func(ds *appsv1.DaemonSet) {
			c := container(ds, "haproxy")
			c.SecurityContext.Capabilities.Add = append(c.SecurityContext.Capabilities.Add, "NET_ADMIN")
		}, "adds only its own"},
		{"the agent gains SYS_ADMIN", func(ds *appsv1.DaemonSet) {
			container(ds, "agent").SecurityContext.Capabilities.Add = []corev1.Capability{"SYS_ADMIN"}
		}, "adds only its own"},
		{"a privileged container", func(ds *appsv1.DaemonSet) {
			sc := container(ds, "keepalived").SecurityContext
			sc.Privileged, sc.AllowPrivilegeEscalation = ptrTo(true), nil
		}, "unprivileged"},
		{"a third container", func(ds *appsv1.DaemonSet) {
			c := container(ds, "haproxy").DeepCopy()
			c.Name = "shell"
			ds.Spec.Template.Spec.Containers = append(ds.Spec.Template.Spec.Containers, *c)
		}, "nothing else"},
		{"a shell as HAProxy", func(ds *appsv1.DaemonSet) {
			container(ds, "haproxy").Command = []string{"sh", "-c", "cat /etc/shadow"}
		}, "hakeeper's own command"},
		{"a shell under HAProxy's supervisor", func(ds *appsv1.DaemonSet) {
			c := container(ds, "haproxy")
			c.Command = []string{c.Command[0], "haproxy", "--", "sh", "-c", "id"}
		}, "hakeeper's own command"},
		{"the agent's binary as HAProxy's supervisor", func(ds *appsv1.DaemonSet) {
			c := container(ds, "haproxy")
			c.Command = append([]string{contract.Binary}, c.Command[1:]...)
		}, "hakeeper's own command"},
		{"keepalived's supervisor running HAProxy", func(ds *appsv1.DaemonSet) {
			c := container(ds, "haproxy")
			c.Command = append([]string{c.Command[0], "keepalived"}, c.Command[2:]...)
		}, "hakeeper's own command"},
		{"arguments after the command", func(ds *appsv1.DaemonSet) {
			container(ds, "keepalived").Args = []string{"--", "sh"}
		}, "hakeeper's own command"},
		{"a shell as a probe", func(ds *appsv1.DaemonSet) {
			container(ds, "keepalived").LivenessProbe.Exec.Command = []string{"sh", "-c", "id"}
		}, "hakeeper probe"},
		{"an HTTP probe of another host", func(ds *appsv1.DaemonSet) {
			container(ds, "haproxy").LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				HTTPGet: &corev1.HTTPGetAction{Host: "169.254.169.254", Port: intstr.FromInt32(80), Path: "/latest/meta-data/"}}}
		}, "ask 127.0.0.1"},
		{"an HTTP probe of the pod's address", func(ds *appsv1.DaemonSet) {
			container(ds, "agent").StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(10250), Path: "/pods"}}}
		}, "ask 127.0.0.1"},
		{"a TCP probe", func(ds *appsv1.DaemonSet) {
			container(ds, "keepalived").LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				TCPSocket: &corev1.TCPSocketAction{Host: "10.0.0.1", Port: intstr.FromInt32(22)}}}
		}, "no TCP or gRPC probe"},
		{"a lifecycle hook", func(ds *appsv1.DaemonSet) {
			container(ds, "haproxy").Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{
				Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "id"}}}}
		}, "no lifecycle hook"},
		{"a Secret in the environment", func(ds *appsv1.DaemonSet) {
			c := container(ds, "keepalived")
			c.Env = append(c.Env, corev1.EnvVar{Name: "X", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"}}})
		}, "no environment from a Secret"},
		{"the node's root mounted", func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.Volumes = append(ds.Spec.Template.Spec.Volumes, corev1.Volume{Name: "host",
				VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}})
		}, "only emptyDirs"},
		{"a Secret mounted", func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.Volumes = append(ds.Spec.Template.Spec.Volumes, corev1.Volume{Name: "s",
				VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s"}}})
		}, "only emptyDirs"},
		{"one process namespace", func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.ShareProcessNamespace = ptrTo(true)
		}, "shares no process"},
		{"the node's PID namespace", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.HostPID = true }, "shares no process"},
		{"the manager's ServiceAccount", func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.ServiceAccountName = "hakeeper-controller-manager"
		}, "agent's ServiceAccount"},
		{"a PriorityClass the admin did not allow", func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.PriorityClassName = "system-node-critical"
		}, "data-plane PriorityClass system-node-critical is not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := good.DeepCopy()
			tc.mutate(ds)
			wantDeniedBy(t, shapePolicy, create(mgr, ds), tc.want)
		})
	}

	// A data-plane pod, as the DaemonSet controller would make it.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-dataplane", Namespace: dataPlaneNamespace}, Spec: *good.Spec.Template.Spec.DeepCopy()}
	if err := env.Client.Create(ctx, pod); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	must(t, env.Client.Get(ctx, client.ObjectKeyFromObject(pod), pod))
	annotated := pod.DeepCopy()
	annotated.Annotations = map[string]string{"hakeeper.io/handover-since": "now"}
	if err := mgr.Patch(ctx, annotated, client.MergeFrom(pod)); err != nil {
		t.Errorf("the manager may not annotate a data-plane pod: %v", err)
	}
	swapped := annotated.DeepCopy()
	swapped.Spec.Containers[0].Image = "evil.example/root:latest"
	untilDenied(t, podsPolicy, func() error { return mgr.Patch(ctx, swapped, client.MergeFrom(annotated), client.DryRunAll) })
	wantDeniedBy(t, podsPolicy, mgr.Patch(ctx, swapped, client.MergeFrom(annotated)), "metadata only")

	params := &corev1.ConfigMap{}
	must(t, env.Client.Get(ctx, client.ObjectKey{Namespace: dataPlaneNamespace, Name: paramsName}, params))
	loosened := params.DeepCopy()
	loosened.Data["images"] += " evil.example/root:latest"
	untilDenied(t, paramsPolicy, func() error { return mgr.Update(ctx, loosened.DeepCopy(), client.DryRunAll) })
	wantDeniedBy(t, paramsPolicy, mgr.Update(ctx, loosened), "parameters")
	wantDeniedBy(t, paramsPolicy, mgr.Delete(ctx, params), "parameters")
	if err := mgr.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "web-haproxy", Namespace: dataPlaneNamespace}}, client.DryRunAll); err != nil {
		t.Errorf("the manager may not write its own ConfigMaps: %v", err)
	}
}

func ptrTo[T any](v T) *T { return &v }

// untilDenied waits until policy denies what try does: the API server
// enforces a policy once its informers have it, its binding and its
// parameters.
func untilDenied(t *testing.T, policy string, try func() error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := try()
		if err != nil && strings.Contains(err.Error(), policy) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not deny after a minute; last answer: %v", policy, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkPolicyTypes fails on what type checking a policy against the
// served schemas finds.
func checkPolicyTypes(t *testing.T, name string) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(admissionregistrationv1.SchemeGroupVersion.WithKind("ValidatingAdmissionPolicy"))
	must(t, env.Client.Get(context.Background(), client.ObjectKey{Name: name}, u))
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{}
	must(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, policy))
	for _, w := range typeWarnings(t, policy) {
		t.Error(w)
	}
}
