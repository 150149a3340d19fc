package desired

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
)

func testLB() *v1alpha1.LoadBalancer {
	return &v1alpha1.LoadBalancer{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "uid-1"},
		Spec: v1alpha1.LoadBalancerSpec{Listeners: []v1alpha1.Listener{
			{Name: "a", TLS: &v1alpha1.ListenerTLS{SecretRef: v1alpha1.SecretReference{Name: "z-cert"}}},
			{Name: "b", TLS: &v1alpha1.ListenerTLS{SecretRef: v1alpha1.SecretReference{Name: "a-cert"}}},
			{Name: "c", TLS: &v1alpha1.ListenerTLS{SecretRef: v1alpha1.SecretReference{Name: "z-cert"}}},
			{Name: "d"},
		}},
	}
}

func TestPortsAndNames(t *testing.T) {
	for _, c := range []struct {
		base            int
		rid             int32
		agent, haproxy  int32
		metricsBase     int
		wantMetricsPort int32
	}{
		{19000, 7, 19007, 19262, 9800, 9807},
		{19000, 255, 19255, 19510, 9800, 10055},
		{0, 7, 0, 0, 0, 0}, // exec probes, no metrics
		{19000, 0, 0, 0, 9800, 0},
	} {
		a, h := HealthPorts(c.base, c.rid)
		m := DataPlaneInput{Options: DataPlaneOptions{MetricsBasePort: c.metricsBase}, RouterID: c.rid}.MetricsPort()
		if a != c.agent || h != c.haproxy || m != c.wantMetricsPort {
			t.Errorf("base %d, router ID %d: health %d/%d, metrics %d; want %d/%d, %d", c.base, c.rid, a, h, m, c.agent, c.haproxy, c.wantMetricsPort)
		}
	}
	n := NamesFor(testLB())
	if n.DaemonSet != "shop.web-dataplane" || n.HAProxyConfigMap != "shop.web-haproxy" || n.ReportConfigMap != "shop.web-report" || n.TLSRole != "hakeeper-tls.web" {
		t.Errorf("NamesFor = %+v", n)
	}
	if got := TLSSecretNames(testLB()); !slices.Equal(got, []string{"a-cert", "z-cert"}) {
		t.Errorf("TLSSecretNames = %v, want sorted, once each", got)
	}
	if TLSRole(&v1alpha1.LoadBalancer{}) != nil {
		t.Error("a TLS Role for a LoadBalancer without TLS listeners")
	}
	if r := TLSRole(testLB()); r == nil || !slices.Equal(r.Rules[0].ResourceNames, []string{"a-cert", "z-cert"}) || !slices.Equal(r.Rules[0].Verbs, []string{"get", "list", "watch"}) {
		t.Errorf("TLSRole = %+v: want get/list/watch on exactly the named Secrets", r)
	}
}

// TestDaemonSetShape: each container's command, probes and requests, as
// the admission policy and the kubelet expect them.
func TestDaemonSetShape(t *testing.T) {
	container := func(spec corev1.PodSpec, name string) corev1.Container {
		for _, c := range append(spec.InitContainers, spec.Containers...) {
			if c.Name == name {
				return c
			}
		}
		t.Fatalf("no container %s", name)
		return corev1.Container{}
	}
	cpu := func(c corev1.Container) string { q := c.Resources.Requests[corev1.ResourceCPU]; return q.String() }
	for _, c := range []struct {
		name  string
		in    DataPlaneInput
		check func(t *testing.T, spec corev1.PodSpec)
	}{
		{"HTTP probes on the loopback, default requests", DataPlaneInput{Options: DataPlaneOptions{Namespace: "hk", Image: "img", HealthBasePort: 19000}, RouterID: 7},
			func(t *testing.T, spec corev1.PodSpec) {
				agent, haproxy, keepalived := container(spec, ContainerAgent), container(spec, ContainerHAProxy), container(spec, ContainerKeepalived)
				if p := agent.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Host != "127.0.0.1" || p.HTTPGet.Port.IntValue() != 19007 {
					t.Errorf("agent liveness %+v", p)
				}
				if p := haproxy.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Port.IntValue() != 19262 || p.HTTPGet.Path != contract.HAProxyMonitorPath {
					t.Errorf("haproxy liveness %+v", p)
				}
				if keepalived.LivenessProbe != nil {
					t.Errorf("keepalived has a probe: %+v", keepalived.LivenessProbe)
				}
				if cpu(agent) != "10m" || cpu(haproxy) != "20m" || cpu(keepalived) != "20m" {
					t.Errorf("CPU requests %s/%s/%s, want 10m/20m/20m", cpu(agent), cpu(haproxy), cpu(keepalived))
				}
				if haproxy.Command[0] != contract.SupervisorBinary || haproxy.Command[1] != "haproxy" ||
					keepalived.Command[0] != contract.SupervisorBinary || keepalived.Command[1] != "keepalived" ||
					agent.Command[0] != contract.Binary || agent.Command[1] != "agent" {
					t.Errorf("commands %v / %v / %v", agent.Command, haproxy.Command, keepalived.Command)
				}
				if i := slices.Index(haproxy.Command, "--"); i < 0 || haproxy.Command[i+1] != "haproxy" {
					t.Errorf("HAProxy's supervisor does not run haproxy: %v", haproxy.Command)
				}
			}},
		{"exec probes without a health base port", DataPlaneInput{Options: DataPlaneOptions{Namespace: "hk", Image: "img"}, RouterID: 7},
			func(t *testing.T, spec corev1.PodSpec) {
				for _, name := range []string{ContainerAgent, ContainerHAProxy, ContainerKeepalived} {
					p := container(spec, name).LivenessProbe
					if p == nil || p.Exec == nil || p.Exec.Command[0] != contract.Binary || p.Exec.Command[1] != "probe" {
						t.Errorf("%s liveness %+v, want hakeeper probe", name, p)
					}
				}
			}},
		{"the class's requests replace the defaults whole", DataPlaneInput{Options: DataPlaneOptions{Namespace: "hk", Image: "img", HealthBasePort: 19000}, RouterID: 7,
			Class: v1alpha1.DataPlaneSpec{HAProxyResources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}}},
			func(t *testing.T, spec corev1.PodSpec) {
				h := container(spec, ContainerHAProxy)
				if len(h.Resources.Requests) != 0 || h.Resources.Limits.Memory().String() != "1Gi" {
					t.Errorf("haproxy resources %+v", h.Resources)
				}
				if cpu(container(spec, ContainerKeepalived)) != "20m" {
					t.Error("keepalived lost its default")
				}
			}},
		{"pull secrets and the operator's PriorityClass", DataPlaneInput{Options: DataPlaneOptions{Namespace: "hk", Image: "img", PriorityClassName: "hakeeper-dataplane", ImagePullSecrets: []string{"registry-a", "registry-b"}}, RouterID: 7},
			func(t *testing.T, spec corev1.PodSpec) {
				if spec.PriorityClassName != "hakeeper-dataplane" {
					t.Errorf("PriorityClass %q, want the operator's", spec.PriorityClassName)
				}
				if len(spec.ImagePullSecrets) != 2 || spec.ImagePullSecrets[0].Name != "registry-a" || spec.ImagePullSecrets[1].Name != "registry-b" {
					t.Errorf("imagePullSecrets %+v", spec.ImagePullSecrets)
				}
			}},
		{"the class's PriorityClass replaces the operator's", DataPlaneInput{Options: DataPlaneOptions{Namespace: "hk", Image: "img", PriorityClassName: "hakeeper-dataplane"}, RouterID: 7,
			Class: v1alpha1.DataPlaneSpec{PriorityClassName: "edge-critical"}},
			func(t *testing.T, spec corev1.PodSpec) {
				if spec.PriorityClassName != "edge-critical" || spec.ImagePullSecrets != nil {
					t.Errorf("PriorityClass %q, pull secrets %v; want the class's, none", spec.PriorityClassName, spec.ImagePullSecrets)
				}
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ds := DaemonSet(testLB(), c.in)
			if ds.Namespace != "hk" || ds.Name != "shop.web-dataplane" || ds.Spec.UpdateStrategy.Type != "OnDelete" {
				t.Errorf("DaemonSet %s/%s", ds.Namespace, ds.Name)
			}
			c.check(t, ds.Spec.Template.Spec)
			// Argo CD's label tracking would take a LoadBalancer's data
			// plane for the objects of an Application of the same name.
			for what, l := range map[string]map[string]string{"DaemonSet": ds.Labels, "pod template": ds.Spec.Template.Labels} {
				if v, ok := l["app.kubernetes.io/instance"]; ok {
					t.Errorf("%s labelled app.kubernetes.io/instance=%s", what, v)
				}
			}
		})
	}
	// The template hash follows the template: another router ID, another
	// hash; the same input, the same.
	in := DataPlaneInput{Options: DataPlaneOptions{Namespace: "hk", Image: "img", HealthBasePort: 19000}, RouterID: 7}
	a, b := DaemonSet(testLB(), in), DaemonSet(testLB(), in)
	in.RouterID = 8
	other := DaemonSet(testLB(), in)
	if h := a.Spec.Template.Annotations[AnnotationTemplate]; h == "" || h != b.Spec.Template.Annotations[AnnotationTemplate] ||
		h == other.Spec.Template.Annotations[AnnotationTemplate] {
		t.Errorf("template hashes %q %q %q", h, b.Spec.Template.Annotations[AnnotationTemplate], other.Spec.Template.Annotations[AnnotationTemplate])
	}
}
