package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/testing/argohealth"
	"github.com/hakeeper/hakeeper/internal/testing/lab"
)

// captureEnv, set to 1, writes the objects TestGitOpsHealth captures to
// hack/argocd's testdata (then update health_test.yaml from the log).
const captureEnv = "HAKEEPER_CAPTURE_ARGOCD"

// TestGitOpsHealth drives a LoadBalancer through the states a GitOps tool
// must tell apart, on the lab's real nodes, and reads each as Argo CD does
// (health.lua in gopher-lua) and as Flux and `kubectl wait` do (kstatus):
// rolling out, Ready, a config a node rejects, no node holding the VIP
// (every node's HAProxy frozen), two nodes holding it (VRRP cut between them), and
// a spec the operator refuses.
func TestGitOpsHealth(t *testing.T) {
	l := requireLab(t)
	script, err := argohealth.Script()
	if err != nil {
		t.Fatal(err)
	}
	addr := newVIP(t)
	lb := variant("gitops", addr)
	// The TLS listener's Secret below is read by the agents: a small
	// preempt-free website otherwise.
	if err := l.Client.Create(ctx, lb); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Client.Delete(ctx, lb) })

	// check reads the live object in a state, once cond holds, and checks
	// what Argo CD and kstatus say of it.
	check := func(file string, cond func(*v1alpha1.LoadBalancer) error, argo string, ks kstatus.Status, words ...string) {
		t.Helper()
		got := &v1alpha1.LoadBalancer{}
		eventually(t, 90*time.Second, file, func() error {
			if err := l.Client.Get(ctx, client.ObjectKeyFromObject(lb), got); err != nil {
				return err
			}
			return cond(got)
		})
		obj := captured(t, got)
		h, err := argohealth.Evaluate(script, obj)
		if err != nil {
			t.Fatal(err)
		}
		res, err := kstatus.Compute(&unstructured.Unstructured{Object: obj})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: Argo CD %s %q; kstatus %s %q", file, h.Status, h.Message, res.Status, res.Message)
		if h.Status != argo || res.Status != ks {
			t.Errorf("%s: Argo CD %s, kstatus %s; want %s and %s", file, h.Status, res.Status, argo, ks)
		}
		for _, w := range words {
			if !strings.Contains(h.Message, w) {
				t.Errorf("%s: Argo CD's message %q does not say %q", file, h.Message, w)
			}
		}
		if os.Getenv(captureEnv) == "1" {
			data, err := yaml.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(argohealth.Dir(), "testdata", file), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	condition := func(lb *v1alpha1.LoadBalancer, typ string) *metav1.Condition {
		return meta.FindStatusCondition(lb.Status.Conditions, typ)
	}
	is := func(typ string, status metav1.ConditionStatus, reason string) func(*v1alpha1.LoadBalancer) error {
		return func(lb *v1alpha1.LoadBalancer) error {
			c := condition(lb, typ)
			if c == nil || c.Status != status || (reason != "" && c.Reason != reason) || lb.Status.ObservedGeneration != lb.Generation {
				return fmt.Errorf("%s: %+v", typ, c)
			}
			return nil
		}
	}

	check("rolling-out.yaml", is(v1alpha1.LoadBalancerProgressingCondition, metav1.ConditionTrue, ""), "Progressing", kstatus.InProgressStatus)
	readyOnA := func(lb *v1alpha1.LoadBalancer) error {
		if err := is(v1alpha1.LoadBalancerReadyCondition, metav1.ConditionTrue, "")(lb); err != nil {
			return err
		}
		if lb.Status.ActiveNode != lab.NodeName(0) {
			return fmt.Errorf("active node %q", lb.Status.ActiveNode)
		}
		return nil
	}
	check("ready.yaml", readyOnA, "Healthy", kstatus.CurrentStatus, lab.NodeName(0), addr)
	argoLabelTrackingSelectsNothing(t, l, lb)

	// A config a node rejects: a TLS listener whose Secret holds no
	// certificate (haproxy -c refuses it); the last good config serves on.
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "gitops-not-a-cert", Namespace: "default"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": []byte("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n"), "tls.key": []byte("garbage")}}
	if err := l.Client.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Client.Delete(ctx, secret) })
	good := lb.Spec.DeepCopy()
	update(t, l, lb, func(lb *v1alpha1.LoadBalancer) {
		lb.Spec.Listeners = append(lb.Spec.Listeners, v1alpha1.Listener{Name: "https", Port: 443, Protocol: v1alpha1.ProtocolHTTP,
			DefaultBackend: "web", TLS: &v1alpha1.ListenerTLS{SecretRef: v1alpha1.SecretReference{Name: secret.Name}}})
	})
	check("config-rejected.yaml", is(v1alpha1.LoadBalancerDegradedCondition, metav1.ConditionTrue, v1alpha1.LoadBalancerConfigRejectedReason),
		"Degraded", kstatus.FailedStatus, "ConfigRejected", "haproxy rejected the config")
	update(t, l, lb, func(lb *v1alpha1.LoadBalancer) { lb.Spec = *good.DeepCopy() })
	waitActive(t, l, lb, lab.NodeName(0), 90*time.Second)

	// Every node's HAProxy frozen (SIGSTOP): it answers nobody, so every
	// agent sets its health file and every node goes FAULT. (Every backend
	// down no longer empties the VIP: one node keeps it, answering 503.)
	for i := range 3 {
		freezeHAProxy(t, l, lb, lab.NodeName(i), true)
	}
	thawed := false
	thaw := func() {
		if thawed {
			return
		}
		thawed = true
		for i := range 3 {
			freezeHAProxy(t, l, lb, lab.NodeName(i), false)
		}
	}
	t.Cleanup(thaw)
	check("no-holder.yaml", is(v1alpha1.LoadBalancerReadyCondition, metav1.ConditionFalse, v1alpha1.LoadBalancerNoActiveNodeReason),
		"Degraded", kstatus.InProgressStatus, "NoActiveNode")
	thaw()
	waitActive(t, l, lb, lab.NodeName(0), 90*time.Second)

	// VRRP cut between node-a and node-b: node-b hears no advert and
	// becomes master too.
	if err := blockVRRP(l, lab.NodeName(1), true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = blockVRRP(l, lab.NodeName(1), false) })
	check("split-brain.yaml", is(v1alpha1.LoadBalancerDegradedCondition, metav1.ConditionTrue, v1alpha1.LoadBalancerSplitBrainReason),
		"Degraded", kstatus.CurrentStatus, "SplitBrain", lab.NodeName(0), lab.NodeName(1))
	if err := blockVRRP(l, lab.NodeName(1), false); err != nil {
		t.Fatal(err)
	}
	waitActive(t, l, lb, lab.NodeName(0), 90*time.Second)

	// A spec the operator refuses: an address outside the class's pools.
	refused := variant("gitops-refused", lab.Prefix+"60")
	if err := l.Client.Create(ctx, refused); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Client.Delete(ctx, refused) })
	lb = refused
	check("not-allowed.yaml", is(v1alpha1.LoadBalancerStalledCondition, metav1.ConditionTrue, v1alpha1.LoadBalancerNotAllowedByClassReason),
		"Degraded", kstatus.FailedStatus, "NotAllowedByClass", "pools")
}

// captured is the object as Argo CD and kstatus receive it, without what
// varies from run to run and says nothing of health (uid, resource
// version, managed fields).
func captured(t *testing.T, lb *v1alpha1.LoadBalancer) map[string]any {
	t.Helper()
	c := lb.DeepCopy()
	c.APIVersion, c.Kind = v1alpha1.GroupVersion.String(), "LoadBalancer"
	c.ManagedFields, c.UID, c.ResourceVersion = nil, "", ""
	delete(c.Annotations, "kubectl.kubernetes.io/last-applied-configuration")
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(c)
	if err != nil {
		t.Fatal(err)
	}
	// Through JSON, as Argo CD decodes it (numbers as float64 for Lua);
	// kstatus reads generations as int64, which the converter gave.
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		t.Fatal(err)
	}
	return u.Object
}

// freezeHAProxy stops (SIGSTOP) or resumes every HAProxy process of a
// LoadBalancer's pod on a node, leaving its supervisor alone: a HAProxy
// that is there but answers nobody. Its liveness probe would restart it
// after 30 s; the states captured here take seconds.
func freezeHAProxy(t *testing.T, l *lab.Lab, lb *v1alpha1.LoadBalancer, node string, freeze bool) {
	t.Helper()
	supervisor, err := l.Container(node, lb, desired.ContainerHAProxy)
	if err != nil {
		t.Fatal(err)
	}
	sig := syscall.SIGCONT
	if freeze {
		sig = syscall.SIGSTOP
	}
	procs := descendants(supervisor.PID)
	if len(procs) == 0 {
		t.Fatalf("no HAProxy under its supervisor on %s", node)
	}
	for _, pid := range procs {
		if err := syscall.Kill(pid, sig); err != nil {
			t.Errorf("%s %d on %s: %v", sig, pid, node, err)
		}
	}
}

// argoLabelTrackingSelectsNothing prunes as Argo CD does with label
// tracking, for an Application named like the LoadBalancer: every object
// of every listable kind, in every namespace, labelled
// app.kubernetes.io/instance=<name>. None may be hakeeper's, or the
// Application would take the data plane for its own and delete it. The
// same walk by hakeeper's label finds the data plane, so the walk itself
// is not what finds nothing.
func argoLabelTrackingSelectsNothing(t *testing.T, l *lab.Lab, lb *v1alpha1.LoadBalancer) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(l.Config)
	if err != nil {
		t.Fatal(err)
	}
	lists, err := l.Clientset.Discovery().ServerPreferredResources()
	if err != nil {
		t.Fatal(err)
	}
	selected := func(selector string) []string {
		var found []string
		for _, list := range lists {
			gv, err := schema.ParseGroupVersion(list.GroupVersion)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range list.APIResources {
				if !slices.Contains(r.Verbs, "list") || strings.Contains(r.Name, "/") {
					continue
				}
				objs, err := dyn.Resource(gv.WithResource(r.Name)).List(ctx, metav1.ListOptions{LabelSelector: selector})
				if err != nil {
					t.Fatalf("list %s: %v", r.Name, err)
				}
				for _, o := range objs.Items {
					found = append(found, r.Kind+" "+o.GetNamespace()+"/"+o.GetName())
				}
			}
		}
		return found
	}
	if got := selected("app.kubernetes.io/instance=" + lb.Name); len(got) > 0 {
		t.Errorf("an Argo CD Application named %s would prune %v", lb.Name, got)
	}
	own := selected(desired.LabelLoadBalancer + "=" + lb.Name + "," + desired.LabelLoadBalancerNamespace + "=" + lb.Namespace)
	if !slices.ContainsFunc(own, func(s string) bool { return strings.HasPrefix(s, "DaemonSet ") }) ||
		!slices.ContainsFunc(own, func(s string) bool { return strings.HasPrefix(s, "Pod ") }) {
		t.Errorf("hakeeper's labels select %v: no DaemonSet or pod", own)
	}
	t.Logf("hakeeper's labels select %d objects of %s; app.kubernetes.io/instance=%s none", len(own), lb.Name, lb.Name)
}
