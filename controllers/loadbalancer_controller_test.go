package controllers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/yaml"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/priority"
	"github.com/hakeeper/hakeeper/internal/testing/testenv"
)

var ctx = context.Background()

func loadSample(t *testing.T, file string) *v1alpha1.LoadBalancer {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "samples", file))
	if err != nil {
		t.Fatal(err)
	}
	var lb v1alpha1.LoadBalancer
	if err := yaml.UnmarshalStrict(data, &lb); err != nil {
		t.Fatal(err)
	}
	return &lb
}

func golden(t *testing.T, sample, file string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "internal", "render", "testdata", "TestSamples", sample, file))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func configMap(t *testing.T, ns, name string) *corev1.ConfigMap {
	t.Helper()
	cm := &corev1.ConfigMap{}
	eventually(t, "ConfigMap "+name, func() error { return k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cm) })
	return cm
}

func getLB(t *testing.T, lb *v1alpha1.LoadBalancer) *v1alpha1.LoadBalancer {
	t.Helper()
	out := &v1alpha1.LoadBalancer{}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(lb), out); err != nil {
		t.Fatal(err)
	}
	return out
}

func condition(lb *v1alpha1.LoadBalancer, typ string) *metav1.Condition {
	return meta.FindStatusCondition(lb.Status.Conditions, typ)
}

// waitForData waits until a ConfigMap key holds want.
func waitForData(t *testing.T, ns, name, key, want string) *corev1.ConfigMap {
	t.Helper()
	cm := &corev1.ConfigMap{}
	eventually(t, fmt.Sprintf("%s[%s]", name, key), func() error {
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cm); err != nil {
			return err
		}
		if got := cm.Data[key]; got != want {
			return fmt.Errorf("differs:\n%s", lineDiff(got, want))
		}
		return nil
	})
	return cm
}

// lineDiff lists the lines that differ, for readable failures.
func lineDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	var out []string
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			out = append(out, fmt.Sprintf("line %d: got %q want %q", i+1, gl, wl))
		}
	}
	return strings.Join(out, "\n")
}

// reportNode plays one node's agent: it writes the node's report, as the
// agent does, with the agents' field manager (the operator leaves what it
// writes alone, where it puts back anyone else's writes).
func reportNode(t *testing.T, lb *v1alpha1.LoadBalancer, node string, r contract.NodeReport) {
	t.Helper()
	data, _ := json.Marshal(r)
	patch := fmt.Appendf(nil, `{"data":{%q:%q}}`, node, data)
	name := desired.NamesFor(lb).ReportConfigMap
	eventually(t, "report ConfigMap", func() error {
		return k8s.Patch(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: dataPlaneNamespace, Name: name}},
			client.RawPatch("application/merge-patch+json", patch), client.FieldOwner(contract.AgentFieldManager))
	})
}

func edgeNodes(t *testing.T) {
	edge := map[string]string{"hakeeper.io/edge": "true"}
	node(t, "edge-a", "198.18.0.11", edge)
	node(t, "edge-b", "198.18.0.12", edge)
}

// TestSamples applies the three samples, with the sample classes the suite
// installed and the facts their goldens were rendered from, and expects the
// operator's ConfigMaps in the data-plane namespace to hold exactly the
// reviewed goldens (which the render tests run through the real haproxy and
// keepalived).
func TestSamples(t *testing.T) {
	edgeNodes(t)
	zoneTaint := corev1.Taint{Key: "node-role.kubernetes.io/edge", Effect: corev1.TaintEffectNoSchedule}
	zone := map[string]string{"node-role.kubernetes.io/edge": ""}
	node(t, "zone-a-1", "198.18.0.11", zone, zoneTaint)
	node(t, "zone-b-1", "198.18.0.12", zone, zoneTaint)
	node(t, "zone-c-1", "198.18.0.13", zone, zoneTaint)

	namespace(t, "default")
	service(t, "default", "web", "http", 80, 8080, "198.18.0.23", "198.18.0.24")
	website := loadSample(t, "website.yaml")
	createLB(t, website)
	names := desired.NamesFor(website)
	// Class edge names no interface: the nodes' agents report theirs.
	reportNode(t, website, "edge-a", contract.NodeReport{Interface: "eth0"})
	reportNode(t, website, "edge-b", contract.NodeReport{Interface: "eth0"})
	waitForData(t, dataPlaneNamespace, names.HAProxyConfigMap, contract.KeyHAProxyConfig, golden(t, "website", "haproxy.cfg.golden"))
	waitForData(t, dataPlaneNamespace, names.KeepalivedConfigMap, "edge-a.conf", golden(t, "website", "edge-a.keepalived.conf.golden"))
	waitForData(t, dataPlaneNamespace, names.KeepalivedConfigMap, "edge-b.conf", golden(t, "website", "edge-b.keepalived.conf.golden"))
	waitForClassAndVIPs(t, website, "edge", "198.18.0.100/24")

	namespace(t, "databases")
	postgres := loadSample(t, "postgres.yaml")
	createLB(t, postgres)
	names = desired.NamesFor(postgres)
	reportNode(t, postgres, "edge-a", contract.NodeReport{Interface: "eth0"})
	reportNode(t, postgres, "edge-b", contract.NodeReport{Interface: "eth0"})
	// The operator renders the address the name resolves to, never the name.
	waitForData(t, dataPlaneNamespace, names.HAProxyConfigMap, contract.KeyHAProxyConfig,
		strings.Replace(golden(t, "postgres", "haproxy.cfg.golden"), sampleName, sampleNameAddress, 1))
	waitForData(t, dataPlaneNamespace, names.KeepalivedConfigMap, "edge-a.conf", golden(t, "postgres", "edge-a.keepalived.conf.golden"))
	waitForData(t, dataPlaneNamespace, names.KeepalivedConfigMap, "edge-b.conf", golden(t, "postgres", "edge-b.keepalived.conf.golden"))
	waitForClassAndVIPs(t, postgres, "edge", "198.18.0.110/24")
	eventually(t, "router ID allocated", func() error {
		if id := getLB(t, postgres).Status.VirtualRouterID; id != 1 {
			return fmt.Errorf("router ID %d", id)
		}
		return nil
	})

	namespace(t, "shop")
	setNamespaceLabel(t, "shop", v1alpha1.LabelTLSDelegation, v1alpha1.TLSDelegationAllowed)
	service(t, "shop", "storefront", "http", 8080, 8080, "198.18.0.61", "198.18.0.62", "2001:db8::63")
	secret(t, "shop", "storefront-tls")
	cloud := loadSample(t, "cloud-unicast.yaml")
	createLB(t, cloud)
	names = desired.NamesFor(cloud)
	waitForData(t, dataPlaneNamespace, names.HAProxyConfigMap, contract.KeyHAProxyConfig, golden(t, "cloud-unicast", "haproxy.cfg.golden"))
	for _, n := range []string{"zone-a-1", "zone-b-1", "zone-c-1"} {
		waitForData(t, dataPlaneNamespace, names.KeepalivedConfigMap, n+".conf", golden(t, "cloud-unicast", n+".keepalived.conf.golden"))
	}
	waitForClassAndVIPs(t, cloud, "cloud", "198.18.0.120/24", "2001:db8::120/64")
	checkDaemonSet(t, cloud)
	checkAgentRBAC(t, cloud)
	checkOwnership(t, cloud)
	eventually(t, "cloud status", func() error {
		got := getLB(t, cloud)
		if got.Status.ObservedGeneration != got.Generation || len(got.Status.Nodes) != 3 {
			return fmt.Errorf("status %+v", got.Status)
		}
		if c := condition(got, v1alpha1.LoadBalancerDegradedCondition); c == nil || c.Status != metav1.ConditionFalse {
			return fmt.Errorf("degraded: %+v", c)
		}
		return nil
	})
}

// waitForClassAndVIPs waits until status names the class and the virtual
// IPs in use, with their prefix lengths.
func waitForClassAndVIPs(t *testing.T, lb *v1alpha1.LoadBalancer, class string, vips ...string) {
	t.Helper()
	eventually(t, lb.Name+" class and virtual IPs in status", func() error {
		st := getLB(t, lb).Status
		if st.ClassName != class || fmt.Sprint(st.VirtualIPs) != fmt.Sprint(vips) {
			return fmt.Errorf("status.className %q, status.virtualIPs %v; want %q, %v", st.ClassName, st.VirtualIPs, class, vips)
		}
		return nil
	})
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Create(ctx, obj); err != nil {
		t.Fatal(err)
	}
}

// createLB creates a LoadBalancer and, at cleanup, deletes it and waits
// until its finalizer has let it go, so no test sees another's leftovers.
func createLB(t *testing.T, lb *v1alpha1.LoadBalancer) {
	t.Helper()
	create(t, lb)
	t.Cleanup(func() { deleteAndWait(t, lb) })
}

// deleteAndWait deletes an object and waits until the API server no longer
// has it.
func deleteAndWait(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	eventually(t, fmt.Sprintf("%T %s gone", obj, obj.GetName()), func() error {
		err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj.DeepCopyObject().(client.Object))
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return err
		}
		return fmt.Errorf("still there")
	})
}

func secret(t *testing.T, ns, name string) {
	t.Helper()
	create(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": []byte("cert"), "tls.key": []byte("key")},
	})
}

func checkDaemonSet(t *testing.T, lb *v1alpha1.LoadBalancer) {
	t.Helper()
	ds := &appsv1.DaemonSet{}
	eventually(t, "DaemonSet", func() error {
		return k8s.Get(ctx, client.ObjectKey{Namespace: dataPlaneNamespace, Name: desired.NamesFor(lb).DaemonSet}, ds)
	})
	pod := ds.Spec.Template.Spec
	// The node's resolver: ClusterFirstWithHostNet would search the
	// operator's namespace first.
	if !pod.HostNetwork || pod.DNSPolicy != corev1.DNSDefault {
		t.Errorf("pod must use the host network with the node's resolver (Default): %v %v", pod.HostNetwork, pod.DNSPolicy)
	}
	if pod.ShareProcessNamespace == nil || *pod.ShareProcessNamespace {
		t.Error("the containers must not share a process namespace")
	}
	// The class's placement: the sample's LoadBalancer sets none.
	if v, ok := pod.NodeSelector["node-role.kubernetes.io/edge"]; !ok || v != "" || len(pod.NodeSelector) != 1 ||
		len(pod.Tolerations) != 1 || pod.Tolerations[0].Key != "node-role.kubernetes.io/edge" {
		t.Errorf("node selector %v, tolerations %v: want class cloud's", pod.NodeSelector, pod.Tolerations)
	}
	wantCaps := map[string][]corev1.Capability{
		desired.ContainerAgent:      nil,
		desired.ContainerHAProxy:    {"NET_BIND_SERVICE", "SETUID", "SETGID", "SYS_CHROOT", "KILL"},
		desired.ContainerKeepalived: {"NET_ADMIN", "NET_RAW"},
	}
	containers := append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...)
	if len(containers) != 3 {
		t.Fatalf("want agent, haproxy and keepalived, got %d containers", len(containers))
	}
	for _, c := range containers {
		sc := c.SecurityContext
		if sc == nil || sc.Privileged == nil || *sc.Privileged || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: must not be privileged nor escalate: %+v", c.Name, sc)
			continue
		}
		if fmt.Sprint(sc.Capabilities.Add) != fmt.Sprint(wantCaps[c.Name]) || fmt.Sprint(sc.Capabilities.Drop) != "[ALL]" {
			t.Errorf("%s: capabilities %+v, want only %v", c.Name, sc.Capabilities, wantCaps[c.Name])
		}
		// The agent's and HAProxy's probes are HTTP requests on the node's
		// loopback; keepalived has none (its supervisor exits with it).
		switch p := c.LivenessProbe; {
		case c.Name == desired.ContainerKeepalived:
			if p != nil {
				t.Errorf("keepalived has a liveness probe: %+v", p)
			}
		case p == nil || p.HTTPGet == nil || p.HTTPGet.Host != "127.0.0.1" || p.Exec != nil:
			t.Errorf("%s: liveness probe %+v, want an HTTP request on 127.0.0.1", c.Name, p)
		}
		// Each daemon sees only its own files, read-only but for its
		// runtime directories.
		writable := map[string][]string{
			desired.ContainerHAProxy:    {desired.VolumeHAProxyRun, desired.VolumeHealth},
			desired.ContainerKeepalived: {desired.VolumeKeepalivedRun, desired.VolumeHealth},
		}
		foreign := map[string]string{desired.ContainerHAProxy: desired.VolumeKeepalivedConfig, desired.ContainerKeepalived: desired.VolumeHAProxyConfig}
		for _, m := range c.VolumeMounts {
			if c.Name == desired.ContainerAgent {
				continue
			}
			if m.Name == foreign[c.Name] || m.Name == desired.VolumeKeepalivedRun && c.Name == desired.ContainerHAProxy {
				t.Errorf("%s mounts %s", c.Name, m.Name)
			}
			if !m.ReadOnly && !slices.Contains(writable[c.Name], m.Name) {
				t.Errorf("%s mounts %s writable", c.Name, m.Name)
			}
		}
	}
	if pod.InitContainers[0].StartupProbe == nil || pod.InitContainers[0].RestartPolicy == nil {
		t.Error("the agent must be a native sidecar with a startup probe")
	}
	// The agents' metrics port is the base plus the router ID, declared
	// under its name as a host port and given to the agent.
	live := &v1alpha1.LoadBalancer{}
	eventually(t, "router ID", func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(lb), live); err != nil {
			return err
		}
		if live.Status.VirtualRouterID == 0 {
			return fmt.Errorf("no router ID in status")
		}
		return nil
	})
	port := int32(metricsBasePort) + live.Status.VirtualRouterID
	agent := pod.InitContainers[0]
	if len(agent.Ports) != 1 || agent.Ports[0].Name != desired.MetricsPortName || agent.Ports[0].ContainerPort != port || agent.Ports[0].HostPort != port ||
		!slices.Contains(agent.Command, fmt.Sprintf("--metrics-port=%d", port)) {
		t.Errorf("agent ports %+v, command %v: want %q at %d (base %d + router ID %d)", agent.Ports, agent.Command,
			desired.MetricsPortName, port, metricsBasePort, live.Status.VirtualRouterID)
	}
	if ds.Spec.Template.Annotations[desired.AnnotationLayout] == "" {
		t.Error("the pod template lacks the layout hash that rolls pods on a structural change")
	}
}

// checkAgentRBAC: the agents' Role, in the data-plane namespace, names
// every object it grants and grants no create, update or delete; the TLS
// Role in the LoadBalancer's namespace grants reading exactly the listeners'
// Secrets to the agents' ServiceAccount.
func checkAgentRBAC(t *testing.T, lb *v1alpha1.LoadBalancer) {
	t.Helper()
	names := desired.NamesFor(lb)
	role := &rbacv1.Role{}
	eventually(t, "agent Role", func() error {
		return k8s.Get(ctx, client.ObjectKey{Namespace: dataPlaneNamespace, Name: names.Role}, role)
	})
	for _, rule := range role.Rules {
		if len(rule.ResourceNames) == 0 {
			t.Errorf("agent rule %+v grants every object of its kind", rule)
		}
		for _, v := range rule.Verbs {
			if v == "create" || v == "update" || v == "delete" || v == "*" {
				t.Errorf("agent rule %+v grants %s", rule, v)
			}
		}
		for _, r := range rule.Resources {
			if r != "configmaps" {
				t.Errorf("agent rule %+v grants %s in the data-plane namespace", rule, r)
			}
		}
	}
	for _, cm := range []string{names.HAProxyConfigMap, names.KeepalivedConfigMap, names.ReportConfigMap} {
		if !strings.Contains(fmt.Sprint(role.Rules), cm) {
			t.Errorf("agent Role does not grant ConfigMap %s: %+v", cm, role.Rules)
		}
	}

	tlsRole := &rbacv1.Role{}
	eventually(t, "TLS Role", func() error {
		return k8s.Get(ctx, client.ObjectKey{Namespace: lb.Namespace, Name: names.TLSRole}, tlsRole)
	})
	if len(tlsRole.Rules) != 1 || fmt.Sprint(tlsRole.Rules[0].Resources) != "[secrets]" ||
		fmt.Sprint(tlsRole.Rules[0].ResourceNames) != "[storefront-tls]" || fmt.Sprint(tlsRole.Rules[0].Verbs) != "[get list watch]" {
		t.Errorf("TLS Role must let the agents read storefront-tls only: %+v", tlsRole.Rules)
	}
	binding := &rbacv1.RoleBinding{}
	eventually(t, "TLS RoleBinding", func() error {
		return k8s.Get(ctx, client.ObjectKey{Namespace: lb.Namespace, Name: names.TLSRole}, binding)
	})
	want := rbacv1.Subject{Kind: "ServiceAccount", Name: names.ServiceAccount, Namespace: dataPlaneNamespace}
	if binding.RoleRef.Name != names.TLSRole || len(binding.Subjects) != 1 || binding.Subjects[0] != want {
		t.Errorf("TLS RoleBinding %+v %+v, want Role %s for %+v", binding.RoleRef, binding.Subjects, names.TLSRole, want)
	}
}

// dataPlaneObjects are the objects of a LoadBalancer in the data-plane
// namespace, by the names desired.NamesFor gives them.
func dataPlaneObjects(lb *v1alpha1.LoadBalancer) []client.Object {
	names := desired.NamesFor(lb)
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: dataPlaneNamespace, Name: name}
	}
	return []client.Object{
		&corev1.ConfigMap{ObjectMeta: meta(names.HAProxyConfigMap)},
		&corev1.ConfigMap{ObjectMeta: meta(names.KeepalivedConfigMap)},
		&corev1.ConfigMap{ObjectMeta: meta(names.ReportConfigMap)},
		&appsv1.DaemonSet{ObjectMeta: meta(names.DaemonSet)},
		&corev1.ServiceAccount{ObjectMeta: meta(names.ServiceAccount)},
		&rbacv1.Role{ObjectMeta: meta(names.Role)},
		&rbacv1.RoleBinding{ObjectMeta: meta(names.Role)},
	}
}

// checkLabels: obj carries the labels that say it is lb's.
func checkLabels(t *testing.T, obj client.Object, lb *v1alpha1.LoadBalancer) {
	t.Helper()
	l := obj.GetLabels()
	if l[desired.LabelLoadBalancer] != lb.Name || l[desired.LabelLoadBalancerNamespace] != lb.Namespace || l[desired.LabelManagedBy] != desired.ManagedBy {
		t.Errorf("%T %s/%s: labels %v do not say it is %s/%s's", obj, obj.GetNamespace(), obj.GetName(), l, lb.Namespace, lb.Name)
	}
}

// checkOwnership: every object in the data-plane namespace carries the
// LoadBalancer's labels and no owner reference (one cannot cross
// namespaces: the finalizer deletes them); the TLS Role and RoleBinding in
// the LoadBalancer's own namespace, present only for TLS listeners, point
// at it as their controller, so the garbage collector deletes them with it
// (envtest runs no garbage collector to show it).
func checkOwnership(t *testing.T, lb *v1alpha1.LoadBalancer) {
	t.Helper()
	objs := dataPlaneObjects(lb)
	for _, obj := range objs {
		key := client.ObjectKeyFromObject(obj)
		eventually(t, fmt.Sprintf("%T %s", obj, key.Name), func() error { return k8s.Get(ctx, key, obj) })
	}
	// Read once its objects exist: the finalizer comes before them.
	current := getLB(t, lb)
	for _, obj := range objs {
		key := client.ObjectKeyFromObject(obj)
		checkLabels(t, obj, current)
		if refs := obj.GetOwnerReferences(); len(refs) != 0 {
			t.Errorf("%T %s: owner references %+v in the data-plane namespace", obj, key.Name, refs)
		}
	}
	if !controllerutil.ContainsFinalizer(current, desired.Finalizer) {
		t.Errorf("LoadBalancer lacks finalizer %s: finalizers %v", desired.Finalizer, current.Finalizers)
	}
	for _, obj := range []client.Object{&rbacv1.Role{}, &rbacv1.RoleBinding{}} {
		key := client.ObjectKey{Namespace: lb.Namespace, Name: desired.NamesFor(lb).TLSRole}
		if len(desired.TLSSecretNames(lb)) == 0 {
			// No TLS listener: no access to the namespace's Secrets.
			if err := k8s.Get(ctx, key, obj); !apierrors.IsNotFound(err) {
				t.Errorf("%T %s exists (err %v), though no listener uses TLS", obj, key.Name, err)
			}
			continue
		}
		eventually(t, fmt.Sprintf("%T %s", obj, key.Name), func() error { return k8s.Get(ctx, key, obj) })
		checkLabels(t, obj, current)
		ref := metav1.GetControllerOf(obj)
		if ref == nil || ref.UID != current.UID || ref.Kind != "LoadBalancer" || ref.Name != current.Name ||
			ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
			t.Errorf("%T %s: controller reference %+v does not point at LoadBalancer %s", obj, key.Name, ref, current.UID)
		}
	}
}

// testClass is a LoadBalancerClass for one test: virtual IPs from pool
// (with prefix length 24 on the interface), interface eth0, data-plane
// nodes picked by each LoadBalancer's own selector, and any static server.
// Tests change it before createClass.
func testClass(name, pool string) *v1alpha1.LoadBalancerClass {
	return &v1alpha1.LoadBalancerClass{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.LoadBalancerClassSpec{
			VirtualIPPools: []v1alpha1.VirtualIPPool{{Name: name, CIDR: pool, PrefixLength: ptr.To(int32(24))}},
			DataPlane:      v1alpha1.DataPlaneSpec{Interface: "eth0", NodeSelector: map[string]string{testDataPlaneLabel: "true"}},
		},
	}
}

// createClass creates a class and deletes it at cleanup (after the
// LoadBalancers created later, which are cleaned up first).
func createClass(t *testing.T, class *v1alpha1.LoadBalancerClass) *v1alpha1.LoadBalancerClass {
	t.Helper()
	create(t, class)
	t.Cleanup(func() {
		// A class in use cannot go: its LoadBalancers first, however
		// they were created.
		var list v1alpha1.LoadBalancerList
		if err := k8s.List(ctx, &list); err != nil {
			t.Error(err)
		}
		for i := range list.Items {
			if list.Items[i].Spec.ClassName == class.Name || list.Items[i].Status.ClassName == class.Name {
				deleteAndWait(t, &list.Items[i])
			}
		}
		deleteAndWait(t, class)
	})
	return class
}

// smallLB is a LoadBalancer for one test: its own namespace, class, VIP
// (none: allocated) and nodes.
func smallLB(ns, class, vip, selector string) *v1alpha1.LoadBalancer {
	var vips []string
	if vip != "" {
		vips = []string{vip}
	}
	return &v1alpha1.LoadBalancer{
		ObjectMeta: metav1.ObjectMeta{Name: "lb", Namespace: ns},
		Spec: v1alpha1.LoadBalancerSpec{
			ClassName:    class,
			VirtualIPs:   vips,
			NodeSelector: map[string]string{"pool": selector},
			Listeners:    []v1alpha1.Listener{{Name: "http", Port: 80, Protocol: v1alpha1.ProtocolHTTP, DefaultBackend: "web"}},
			Backends: []v1alpha1.Backend{{
				Name:       "web",
				Servers:    []v1alpha1.Server{{Name: "vm1", Address: "198.18.2.1", Port: 8080, Weight: ptr.To(int32(100))}},
				ServiceRef: &v1alpha1.ServiceReference{Name: "web", Port: intOrStringName("http"), ServerSlots: ptr.To(int32(4))},
			}},
		},
	}
}

func resourceVersions(t *testing.T, lb *v1alpha1.LoadBalancer) map[string]string {
	t.Helper()
	names := desired.NamesFor(lb)
	out := map[string]string{}
	for _, n := range []string{names.HAProxyConfigMap, names.KeepalivedConfigMap} {
		cm := &corev1.ConfigMap{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: dataPlaneNamespace, Name: n}, cm); err != nil {
			t.Fatal(err)
		}
		out[n] = cm.ResourceVersion
	}
	ds := &appsv1.DaemonSet{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: dataPlaneNamespace, Name: names.DaemonSet}, ds); err != nil {
		t.Fatal(err)
	}
	out[names.DaemonSet] = ds.ResourceVersion
	out["status"] = getLB(t, lb).ResourceVersion
	return out
}

// settle waits until the reconciler has written nothing for a while, so a
// count taken after it includes every write a change caused.
func settle(t *testing.T) int {
	t.Helper()
	last, _ := writes.snapshot()
	quietSince := time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		now, _ := writes.snapshot()
		if now != last {
			last, quietSince = now, time.Now()
			continue
		}
		if time.Since(quietSince) > 1500*time.Millisecond {
			return now
		}
	}
	t.Fatal("the reconciler never stopped writing")
	return 0
}

// changedKeys compares resource versions before and after.
func changedKeys(before, after map[string]string) []string {
	var out []string
	for k, v := range before {
		if after[k] != v {
			out = append(out, k)
		}
	}
	return out
}

// TestChangesTouchOnlyWhatTheyShould changes one thing at a time and
// checks which owned objects changed, and that unrelated objects cause no
// write at all.
func TestChangesTouchOnlyWhatTheyShould(t *testing.T) {
	ns := namespace(t, "changes")
	node(t, "pool-a", "198.18.1.1", map[string]string{"pool": "changes"})
	node(t, "pool-b", "198.18.1.2", map[string]string{"pool": "changes"})
	service(t, ns, "web", "http", 80, 8080, "198.18.2.11", "198.18.2.12")
	createClass(t, testClass("changes", "198.18.1.96/27"))
	lb := smallLB(ns, "changes", "198.18.1.100", "changes")
	createLB(t, lb)
	names := desired.NamesFor(lb)
	eventually(t, "both endpoints in haproxy.cfg", func() error {
		cfg := configMap(t, dataPlaneNamespace, names.HAProxyConfigMap).Data[contract.KeyHAProxyConfig]
		if !strings.Contains(cfg, "198.18.2.12:8080") {
			return fmt.Errorf("no endpoint yet")
		}
		return nil
	})
	settle(t)
	outer := t // objects that must outlive a subtest

	t.Run("weight change rewrites one server line only", func(t *testing.T) {
		before := resourceVersions(t, lb)
		oldCfg := configMap(t, dataPlaneNamespace, names.HAProxyConfigMap).Data[contract.KeyHAProxyConfig]
		current := getLB(t, lb)
		current.Spec.Backends[0].Servers[0].Weight = ptr.To(int32(50))
		if err := k8s.Update(ctx, current); err != nil {
			t.Fatal(err)
		}
		eventually(t, "new weight", func() error {
			if !strings.Contains(configMap(t, dataPlaneNamespace, names.HAProxyConfigMap).Data[contract.KeyHAProxyConfig], "server vm1 198.18.2.1:8080 weight 50") {
				return fmt.Errorf("weight not applied")
			}
			return nil
		})
		assertOneHAProxyLineChanged(t, lb, before, oldCfg)
	})

	t.Run("new endpoint fills a slot and moves nothing", func(t *testing.T) {
		before := resourceVersions(t, lb)
		oldCfg := configMap(t, dataPlaneNamespace, names.HAProxyConfigMap).Data[contract.KeyHAProxyConfig]
		s := &discoveryv1.EndpointSlice{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-v4"}, s); err != nil {
			t.Fatal(err)
		}
		s.Endpoints = append([]discoveryv1.Endpoint{{Addresses: []string{"198.18.2.10"}}}, s.Endpoints...)
		if err := k8s.Update(ctx, s); err != nil {
			t.Fatal(err)
		}
		eventually(t, "endpoint in haproxy.cfg", func() error {
			if !strings.Contains(configMap(t, dataPlaneNamespace, names.HAProxyConfigMap).Data[contract.KeyHAProxyConfig], "server ep_3 198.18.2.10:8080 weight 100\n") {
				return fmt.Errorf("endpoint not in slot 3")
			}
			return nil
		})
		assertOneHAProxyLineChanged(t, lb, before, oldCfg)
	})

	t.Run("labelling a node adds it to keepalived only", func(t *testing.T) {
		before := resourceVersions(t, lb)
		n := node(outer, "pool-c", "198.18.1.3", nil)
		n.Labels["pool"] = "changes"
		if err := k8s.Update(ctx, n); err != nil {
			t.Fatal(err)
		}
		eventually(t, "pool-c in keepalived", func() error {
			if _, ok := configMap(t, dataPlaneNamespace, names.KeepalivedConfigMap).Data["pool-c.conf"]; !ok {
				return fmt.Errorf("no pool-c.conf")
			}
			return nil
		})
		settle(t)
		assertChanged(t, changedKeys(before, resourceVersions(t, lb)), names.KeepalivedConfigMap, "status")
		record := contract.ParseVRRPRecord(configMap(t, dataPlaneNamespace, names.KeepalivedConfigMap))
		if record.Priorities["pool-a"] != 100 || record.Priorities["pool-b"] != 50 || record.Priorities["pool-c"] != 25 {
			t.Errorf("a new node reordered priorities: %v", record.Priorities)
		}
	})

	t.Run("unrelated objects cause no writes", func(t *testing.T) {
		before := resourceVersions(t, lb)
		writesBefore := settle(t)
		create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "unrelated"}, Data: map[string]string{"a": "b"}})
		// Beside the data plane, but not hakeeper's.
		unrelated := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: dataPlaneNamespace, Name: "unrelated"}, Data: map[string]string{"a": "b"}}
		create(t, unrelated)
		t.Cleanup(func() { _ = k8s.Delete(ctx, unrelated) })
		service(t, ns, "other", "http", 80, 8080, "198.18.2.99")
		node(t, "elsewhere", "198.18.1.9", map[string]string{"pool": "elsewhere"})
		// A kubelet heartbeat: node status rewritten.
		n := &corev1.Node{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: "pool-a"}, n); err != nil {
			t.Fatal(err)
		}
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now()}}
		if err := k8s.Status().Update(ctx, n); err != nil {
			t.Fatal(err)
		}
		writesAfter := settle(t)
		_, kinds := writes.snapshot()
		if writesAfter != writesBefore {
			t.Errorf("unrelated objects caused %d writes (totals by kind now %v)", writesAfter-writesBefore, kinds)
		}
		if changed := changedKeys(before, resourceVersions(t, lb)); len(changed) > 0 {
			t.Errorf("unrelated objects changed %v", changed)
		}
	})
}

func assertChanged(t *testing.T, got []string, want ...string) {
	t.Helper()
	if fmt.Sprint(sorted(got)) != fmt.Sprint(sorted(want)) {
		t.Errorf("changed %v, want exactly %v", got, want)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestConflicts: the later LoadBalancer claiming a held VIP, or a router ID
// on a shared node, is Degraded, names the other, and gets nothing applied;
// when the conflict ends it is applied.
func TestConflicts(t *testing.T) {
	ns := namespace(t, "conflicts")
	node(t, "c-1", "198.18.3.1", map[string]string{"pool": "conflicts"})
	service(t, ns, "web", "http", 80, 8080, "198.18.3.11")
	createClass(t, testClass("conflicts", "198.18.3.96/27"))
	// Another class whose pool gives the same address another prefix: the
	// address conflicts all the same.
	host := testClass("conflicts-host", "198.18.3.100/32")
	host.Spec.VirtualIPPools[0].PrefixLength = nil
	createClass(t, host)
	first := smallLB(ns, "conflicts", "198.18.3.100", "conflicts")
	first.Name = "first"
	createLB(t, first)
	eventually(t, "first applied", func() error {
		return k8s.Get(ctx, client.ObjectKey{Namespace: dataPlaneNamespace, Name: desired.NamesFor(first).HAProxyConfigMap}, &corev1.ConfigMap{})
	})
	time.Sleep(1100 * time.Millisecond) // creation timestamps have one-second resolution
	second := smallLB(ns, "conflicts-host", "198.18.3.100", "conflicts")
	second.Name = "second"
	createLB(t, second)
	eventually(t, "second in conflict", func() error {
		c := condition(getLB(t, second), v1alpha1.LoadBalancerDegradedCondition)
		if c == nil || c.Reason != v1alpha1.LoadBalancerConflictReason || !strings.Contains(c.Message, "conflicts/first") {
			return fmt.Errorf("degraded: %+v", c)
		}
		return nil
	})
	err := k8s.Get(ctx, client.ObjectKey{Namespace: dataPlaneNamespace, Name: desired.NamesFor(second).HAProxyConfigMap}, &corev1.ConfigMap{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("the conflicting LoadBalancer got its ConfigMap: %v", err)
	}
	if c := condition(getLB(t, first), v1alpha1.LoadBalancerDegradedCondition); c == nil || c.Status != metav1.ConditionFalse {
		t.Errorf("the older LoadBalancer must stay healthy: %+v", c)
	}

	if err := k8s.Delete(ctx, first); err != nil {
		t.Fatal(err)
	}
	eventually(t, "second applied once first is gone", func() error {
		cm := &corev1.ConfigMap{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: dataPlaneNamespace, Name: desired.NamesFor(second).HAProxyConfigMap}, cm); err != nil {
			return err
		}
		if !strings.Contains(cm.Data[contract.KeyHAProxyConfig], "bind 198.18.3.100:80") {
			return fmt.Errorf("haproxy.cfg does not bind 198.18.3.100:80")
		}
		return nil
	})
	waitForClassAndVIPs(t, second, "conflicts-host", "198.18.3.100/32")

	// Router IDs: the same explicit ID on a shared node conflicts.
	withID := func(name, vip string, id int32) *v1alpha1.LoadBalancer {
		lb := smallLB(ns, "conflicts", vip, "conflicts")
		lb.Name = name
		lb.Spec.VRRP.VirtualRouterID = ptr.To(id)
		return lb
	}
	third := withID("third", "198.18.3.103", 77)
	createLB(t, third)
	eventually(t, "third applied", func() error {
		return k8s.Get(ctx, client.ObjectKey{Namespace: dataPlaneNamespace, Name: desired.NamesFor(third).HAProxyConfigMap}, &corev1.ConfigMap{})
	})
	time.Sleep(1100 * time.Millisecond)
	fourth := withID("fourth", "198.18.3.104", 77)
	createLB(t, fourth)
	eventually(t, "fourth in conflict", func() error {
		c := condition(getLB(t, fourth), v1alpha1.LoadBalancerDegradedCondition)
		if c == nil || c.Reason != v1alpha1.LoadBalancerConflictReason || !strings.Contains(c.Message, "virtual router ID 77") || !strings.Contains(c.Message, "conflicts/third") {
			return fmt.Errorf("degraded: %+v", c)
		}
		return nil
	})
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: dataPlaneNamespace, Name: desired.NamesFor(fourth).HAProxyConfigMap}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Errorf("the LoadBalancer with a conflicting router ID got its ConfigMap: %v", err)
	}
}

// TestInvalidSpecIsNotApplied: what the API server accepts but hakeeper
// cannot render is reported and never applied.
func TestInvalidSpecIsNotApplied(t *testing.T) {
	ns := namespace(t, "invalid")
	createClass(t, testClass("invalid", "198.18.4.96/27"))
	lb := smallLB(ns, "invalid", "198.18.4.100", "invalid")
	lb.Spec.Listeners = append(lb.Spec.Listeners, v1alpha1.Listener{Name: "raw", Port: 81, Protocol: v1alpha1.ProtocolTCP, DefaultBackend: "web"})
	createLB(t, lb)
	eventually(t, "InvalidSpec", func() error {
		c := condition(getLB(t, lb), v1alpha1.LoadBalancerDegradedCondition)
		if c == nil || c.Reason != v1alpha1.LoadBalancerInvalidSpecReason || !strings.Contains(c.Message, "spec.backends[0].name") {
			return fmt.Errorf("degraded: %+v", c)
		}
		return nil
	})
	assertNothingApplied(t, lb)

	// One Warning per refusal, not per reconcile: more reconciles of the
	// same spec (an annotation changes, the generation does not) tell
	// nothing new; another refusal is another event, with its own note.
	warnings := func() []string {
		var list eventsv1.EventList
		if err := k8s.List(ctx, &list, client.InNamespace(lb.Namespace)); err != nil {
			t.Fatal(err)
		}
		var notes []string
		for _, e := range list.Items {
			if e.Regarding.Name == lb.Name && e.Type == corev1.EventTypeWarning {
				n := int32(1)
				if e.Series != nil {
					n = e.Series.Count
				}
				for range n {
					notes = append(notes, e.Reason+": "+e.Note)
				}
			}
		}
		slices.Sort(notes)
		return notes
	}
	eventually(t, "the refusal's Warning", func() error {
		if got := warnings(); len(got) != 1 || !strings.Contains(got[0], "InvalidSpec: ") {
			return fmt.Errorf("warnings %q", got)
		}
		return nil
	})
	// Each annotation change reconciled before the next (quick updates
	// may be folded into one reconcile), then two seconds for an event a
	// reconcile might have sent late.
	for i := range 3 {
		before := reconciles(t, lb)
		current := getLB(t, lb)
		current.Annotations = map[string]string{"example.com/touched": fmt.Sprint(i)}
		if err := k8s.Update(ctx, current); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a reconcile of the touched LoadBalancer", func() error {
			if reconciles(t, lb) == before {
				return errors.New("none yet")
			}
			return nil
		})
	}
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if got := warnings(); len(got) != 1 {
			t.Fatalf("after more reconciles of the same refusal: warnings %q, want the one", got)
		}
	}
	// The spec fixed, but for an address outside the class's pools.
	current := getLB(t, lb)
	current.Spec.Listeners = current.Spec.Listeners[:len(current.Spec.Listeners)-1]
	current.Spec.VirtualIPs = []string{"198.18.9.9"}
	if err := k8s.Update(ctx, current); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the second refusal's Warning", func() error {
		got := warnings()
		if len(got) != 2 || !slices.ContainsFunc(got, func(n string) bool { return strings.HasPrefix(n, "InvalidSpec: ") }) ||
			!slices.ContainsFunc(got, func(n string) bool {
				return strings.HasPrefix(n, "NotAllowedByClass: ") && strings.Contains(n, "198.18.9.9")
			}) {
			return fmt.Errorf("warnings %q", got)
		}
		return nil
	})
}

// assertNothingApplied: none of the LoadBalancer's objects exists in the
// data-plane namespace, by name or by label. Call it once status says why:
// the reconcile that wrote that status had stopped before applying.
func assertNothingApplied(t *testing.T, lb *v1alpha1.LoadBalancer) {
	t.Helper()
	for _, obj := range dataPlaneObjects(lb) {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); !apierrors.IsNotFound(err) {
			t.Errorf("%T %s exists (err %v), though nothing of %s may be applied", obj, obj.GetName(), err, lb.Name)
		}
	}
	sel := client.MatchingLabels{desired.LabelLoadBalancer: lb.Name, desired.LabelLoadBalancerNamespace: lb.Namespace}
	for _, list := range []client.ObjectList{&corev1.ConfigMapList{}, &appsv1.DaemonSetList{}, &corev1.ServiceAccountList{}, &rbacv1.RoleList{}, &rbacv1.RoleBindingList{}} {
		if err := k8s.List(ctx, list, client.InNamespace(dataPlaneNamespace), sel); err != nil {
			t.Fatal(err)
		}
		if n := meta.LenList(list); n != 0 {
			t.Errorf("%d %T of %s exist in %s, though nothing may be applied", n, list, lb.Name, dataPlaneNamespace)
		}
	}
}

// TestStatusFoldsNodeReports: what the agents report becomes activeNode,
// per-node roles and hashes, servers up and the Ready condition.
func TestStatusFoldsNodeReports(t *testing.T) {
	ns := namespace(t, "status")
	node(t, "s-1", "198.18.5.1", map[string]string{"pool": "status"})
	node(t, "s-2", "198.18.5.2", map[string]string{"pool": "status"})
	service(t, ns, "web", "http", 80, 8080, "198.18.5.11")
	createClass(t, testClass("status", "198.18.5.96/27"))
	lb := smallLB(ns, "status", "198.18.5.100", "status")
	createLB(t, lb)
	names := desired.NamesFor(lb)
	eventually(t, "configs", func() error {
		cm := configMap(t, dataPlaneNamespace, names.KeepalivedConfigMap)
		if len(cm.Data) != 3 {
			return fmt.Errorf("keys %d", len(cm.Data))
		}
		return nil
	})
	eventually(t, "not ready before reports", func() error {
		c := condition(getLB(t, lb), v1alpha1.LoadBalancerReadyCondition)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.LoadBalancerNoActiveNodeReason {
			return fmt.Errorf("ready: %+v", c)
		}
		return nil
	})
	hash := func(node string) string {
		h := configMap(t, dataPlaneNamespace, names.HAProxyConfigMap).Data[contract.KeyHAProxyConfig]
		k := configMap(t, dataPlaneNamespace, names.KeepalivedConfigMap).Data[node+".conf"]
		return contract.NodeConfigHash([]byte(h), []byte(k))
	}
	backends := map[string]contract.BackendCount{"web": {Up: 2, Total: 2}}
	reportNode(t, lb, "s-1", contract.NodeReport{Role: v1alpha1.VRRPRoleMaster, ConfigHash: hash("s-1"), Healthy: true, Backends: backends})
	reportNode(t, lb, "s-2", contract.NodeReport{Role: v1alpha1.VRRPRoleBackup, ConfigHash: "stale", Healthy: true, Message: "haproxy rejected the config: [ALERT] unknown keyword 'frobnicate'"})
	eventually(t, "status from reports", func() error {
		got := getLB(t, lb)
		st := got.Status
		ready := condition(got, v1alpha1.LoadBalancerReadyCondition)
		degraded := condition(got, v1alpha1.LoadBalancerDegradedCondition)
		progressing := condition(got, v1alpha1.LoadBalancerProgressingCondition)
		switch {
		case st.ActiveNode != "s-1":
			return fmt.Errorf("active node %q", st.ActiveNode)
		case ready == nil || ready.Status != metav1.ConditionTrue:
			return fmt.Errorf("ready %+v", ready)
		case degraded == nil || degraded.Reason != v1alpha1.LoadBalancerConfigRejectedReason || !strings.Contains(degraded.Message, "node s-2: haproxy rejected the config"):
			return fmt.Errorf("degraded %+v", degraded)
		case progressing == nil || progressing.Status != metav1.ConditionTrue || !strings.Contains(progressing.Message, "s-2"):
			return fmt.Errorf("progressing %+v", progressing)
		case len(st.Backends) != 1 || st.Backends[0].ServersUp != 2 || st.Backends[0].ServersTotal != 2:
			return fmt.Errorf("backends %+v", st.Backends)
		case len(st.Nodes) != 2 || st.Nodes[0].Role != v1alpha1.VRRPRoleMaster || !st.Nodes[0].Ready || st.Nodes[1].Ready:
			return fmt.Errorf("nodes %+v", st.Nodes)
		}
		return nil
	})
}

// TestKubectlApplySamples applies config/samples with kubectl built from
// the same release as the API server.
func TestKubectlApplySamples(t *testing.T) {
	for _, ns := range []string{"default", "databases", "shop"} {
		namespace(t, ns)
	}
	kubectl := env.KubeCtl()
	dir := filepath.Join(testenv.RepoRoot(), "config", "samples")
	stdout, stderr, err := kubectl.Run("apply", "--server-side", "--dry-run=server", "-k", dir)
	if err != nil {
		out, _ := readAll(stderr)
		t.Fatalf("kubectl apply: %v: %s", err, out)
	}
	out, _ := readAll(stdout)
	for _, name := range []string{"website", "postgres", "storefront"} {
		if !strings.Contains(out, "loadbalancer.hakeeper.io/"+name) {
			t.Errorf("kubectl did not apply %s:\n%s", name, out)
		}
	}
}

func intOrStringName(name string) intstr.IntOrString { return intstr.FromString(name) }

func readAll(r io.Reader) (string, error) {
	data, err := io.ReadAll(r)
	return string(data), err
}

// TestAllocatedRouterIDsAreDistinct creates LoadBalancers on shared nodes
// in a burst, faster than the cache follows their status: each still gets
// its own router ID.
func TestAllocatedRouterIDsAreDistinct(t *testing.T) {
	ns := namespace(t, "routerids")
	node(t, "r-1", "198.18.6.1", map[string]string{"pool": "routerids"})
	service(t, ns, "web", "http", 80, 8080, "198.18.6.11")
	createClass(t, testClass("routerids", "198.18.6.96/27"))
	var lbs []*v1alpha1.LoadBalancer
	for i := range 8 {
		lb := smallLB(ns, "routerids", fmt.Sprintf("198.18.6.%d", 100+i), "routerids")
		lb.Name = fmt.Sprintf("burst-%d", i)
		createLB(t, lb)
		lbs = append(lbs, lb)
	}
	eventually(t, "distinct router IDs", func() error {
		seen := map[int32]string{}
		for _, lb := range lbs {
			got := getLB(t, lb)
			id := got.Status.VirtualRouterID
			if id == 0 {
				return fmt.Errorf("%s has no router ID yet", lb.Name)
			}
			if other, ok := seen[id]; ok {
				return fmt.Errorf("%s and %s share router ID %d", other, lb.Name, id)
			}
			seen[id] = lb.Name
			record := contract.ParseVRRPRecord(configMap(t, dataPlaneNamespace, desired.NamesFor(lb).KeepalivedConfigMap))
			if record.VirtualRouterID != id {
				return fmt.Errorf("%s: keepalived renders router ID %d, status says %d", lb.Name, record.VirtualRouterID, id)
			}
		}
		return nil
	})
}

// assertOneHAProxyLineChanged waits for the operator to settle, then checks
// that haproxy.cfg differs from oldCfg in one line and that only the
// HAProxy ConfigMap and the status were written.
func assertOneHAProxyLineChanged(t *testing.T, lb *v1alpha1.LoadBalancer, before map[string]string, oldCfg string) {
	t.Helper()
	settle(t)
	names := desired.NamesFor(lb)
	newCfg := configMap(t, dataPlaneNamespace, names.HAProxyConfigMap).Data[contract.KeyHAProxyConfig]
	if d := lineDiff(newCfg, oldCfg); strings.Count(d, "\n") != 0 {
		t.Errorf("more than one line changed:\n%s", d)
	}
	assertChanged(t, changedKeys(before, resourceVersions(t, lb)), names.HAProxyConfigMap, "status")
}

// TestObservedHolders: the agents' view of their interfaces decides who is
// active, a VIP on two nodes is a split brain whatever keepalived says,
// and none on any leaves the LoadBalancer not Ready; each is in status
// within the reconcile that reads the reports, with an event.
func TestObservedHolders(t *testing.T) {
	ns := namespace(t, "holders")
	node(t, "h-1", "198.18.6.1", map[string]string{"pool": "holders"})
	node(t, "h-2", "198.18.6.2", map[string]string{"pool": "holders"})
	service(t, ns, "web", "http", 80, 8080, "198.18.6.11")
	createClass(t, testClass("holders", "198.18.6.96/27"))
	lb := smallLB(ns, "holders", "198.18.6.100", "holders")
	createLB(t, lb)
	names := desired.NamesFor(lb)
	hash := func(node string) string {
		var h string
		eventually(t, "configs of "+node, func() error {
			k := configMap(t, dataPlaneNamespace, names.KeepalivedConfigMap).Data[node+".conf"]
			if k == "" {
				return fmt.Errorf("none yet")
			}
			h = contract.NodeConfigHash([]byte(configMap(t, dataPlaneNamespace, names.HAProxyConfigMap).Data[contract.KeyHAProxyConfig]), []byte(k))
			return nil
		})
		return h
	}
	backends := map[string]contract.BackendCount{"web": {Up: 2, Total: 2}}
	report := func(node string, role v1alpha1.VRRPRole, holds ...string) {
		reportNode(t, lb, node, contract.NodeReport{Role: role, ConfigHash: hash(node), Healthy: true, Backends: backends,
			HoldsObserved: true, Holds: holds})
	}
	wait := func(what string, check func(*v1alpha1.LoadBalancer) error) {
		t.Helper()
		eventually(t, what, func() error { return check(getLB(t, lb)) })
	}

	// keepalived on h-1 says MASTER, but the address is on h-2: h-2 serves.
	report("h-1", v1alpha1.VRRPRoleMaster)
	report("h-2", v1alpha1.VRRPRoleBackup, "198.18.6.100")
	wait("h-2 active as observed", func(got *v1alpha1.LoadBalancer) error {
		st := got.Status
		if st.ActiveNode != "h-2" || len(st.Holders) != 1 || st.Holders[0].VirtualIP != "198.18.6.100" || fmt.Sprint(st.Holders[0].Nodes) != "[h-2]" {
			return fmt.Errorf("active %q, holders %+v", st.ActiveNode, st.Holders)
		}
		return nil
	})

	report("h-1", v1alpha1.VRRPRoleMaster, "198.18.6.100")
	wait("SplitBrain naming both", func(got *v1alpha1.LoadBalancer) error {
		d := condition(got, v1alpha1.LoadBalancerDegradedCondition)
		if d == nil || d.Status != metav1.ConditionTrue || d.Reason != v1alpha1.LoadBalancerSplitBrainReason ||
			d.Message != "several nodes hold 198.18.6.100: h-1, h-2" {
			return fmt.Errorf("degraded %+v", d)
		}
		return nil
	})
	waitEvent(t, lb, v1alpha1.LoadBalancerSplitBrainReason)

	report("h-1", v1alpha1.VRRPRoleFault)
	report("h-2", v1alpha1.VRRPRoleFault)
	wait("NoActiveNode", func(got *v1alpha1.LoadBalancer) error {
		r := condition(got, v1alpha1.LoadBalancerReadyCondition)
		if got.Status.ActiveNode != "" || r == nil || r.Reason != v1alpha1.LoadBalancerNoActiveNodeReason || r.Message != "No node's interface carries 198.18.6.100" {
			return fmt.Errorf("active %q, ready %+v", got.Status.ActiveNode, r)
		}
		return nil
	})
	waitEvent(t, lb, "SplitBrainEnded")
	waitEvent(t, lb, v1alpha1.LoadBalancerNoActiveNodeReason)
}

// waitEvent waits for an event about lb with reason.
func waitEvent(t *testing.T, lb *v1alpha1.LoadBalancer, reason string) {
	t.Helper()
	eventually(t, "event "+reason, func() error {
		var list eventsv1.EventList
		if err := k8s.List(ctx, &list, client.InNamespace(lb.Namespace)); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Regarding.Name == lb.Name && e.Reason == reason {
				return nil
			}
		}
		return fmt.Errorf("no %s event among %d", reason, len(list.Items))
	})
}

// TestMastersSpread: twelve LoadBalancers created at once on the same
// three nodes, no priority pinned. Each node gets the highest priority of
// four (so is master of four while healthy) and the second highest of
// four (takes their VIPs on failover); then a fourth node joins and none
// of the first three nodes' priorities changes.
func TestMastersSpread(t *testing.T) {
	ns := namespace(t, "spread")
	for i := range 3 {
		node(t, fmt.Sprintf("m-%d", i+1), fmt.Sprintf("198.18.30.%d", i+1), map[string]string{"pool": "spread"})
	}
	service(t, ns, "web", "http", 80, 8080, "198.18.30.11")
	createClass(t, testClass("spread", "198.18.30.96/27"))
	var lbs []*v1alpha1.LoadBalancer
	for i := range 12 {
		lb := smallLB(ns, "spread", fmt.Sprintf("198.18.30.%d", 100+i), "spread")
		lb.Name = fmt.Sprintf("lb-%02d", i)
		createLB(t, lb)
		lbs = append(lbs, lb)
	}
	priorities := func(want int) []map[string]int32 {
		var out []map[string]int32
		eventually(t, fmt.Sprintf("priorities of %d nodes for every LoadBalancer", want), func() error {
			out = out[:0]
			for _, lb := range lbs {
				record := contract.ParseVRRPRecord(configMap(t, dataPlaneNamespace, desired.NamesFor(lb).KeepalivedConfigMap))
				if len(record.Priorities) != want {
					return fmt.Errorf("%s: priorities %v", lb.Name, record.Priorities)
				}
				out = append(out, record.Priorities)
			}
			return nil
		})
		return out
	}
	before := priorities(3)
	load := priority.Load{}
	for _, p := range before {
		load.Add(p)
	}
	for i := range 3 {
		n := fmt.Sprintf("m-%d", i+1)
		if load[n] != [2]int{4, 4} {
			t.Errorf("%s leads %d and backs first %d of 12 LoadBalancers, want 4 and 4: %v", n, load[n][0], load[n][1], before)
		}
	}
	node(t, "m-4", "198.18.30.4", map[string]string{"pool": "spread"})
	after := priorities(4)
	for i := range lbs {
		for n, p := range before[i] {
			if after[i][n] != p {
				t.Errorf("%s: %s moved from priority %d to %d when m-4 joined", lbs[i].Name, n, p, after[i][n])
			}
		}
	}
}
