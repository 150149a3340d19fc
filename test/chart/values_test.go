package chart

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// withValues writes a values file and returns the arguments passing it.
func withValues(t *testing.T, values string) []string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(f, []byte(values), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"-f", f}
}

func managerPod(t *testing.T, objs []*unstructured.Unstructured) map[string]any {
	t.Helper()
	d := find(objs, "Deployment", "hakeeper-controller-manager")
	if d == nil {
		t.Fatal("no Deployment hakeeper-controller-manager")
	}
	pod, _, _ := unstructured.NestedMap(d.Object, "spec", "template")
	return pod
}

func managerImage(t *testing.T, objs []*unstructured.Unstructured) string {
	t.Helper()
	containers, _, _ := unstructured.NestedSlice(managerPod(t, objs), "spec", "containers")
	return containers[0].(map[string]any)["image"].(string)
}

// TestImages: each image is repository:tag, the tag defaulting to the
// chart's appVersion, or repository@digest when a digest is set (the tag
// then ignored, as cert-manager's chart does); the data-plane admission
// policy allows exactly the string the manager passes as --dataplane-image.
// The lab's images (localhost/hakeeper/manager:<hash>) are repository and
// tag.
func TestImages(t *testing.T) {
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	eachHelm(t, func(t *testing.T, h helmCLI) {
		for _, tc := range []struct {
			name               string
			set                []string
			manager, dataPlane string
		}{
			{"defaults", nil, "ghcr.io/hakeeper/manager:0.1.0", "ghcr.io/hakeeper/dataplane:0.1.0"},
			{"the lab's", []string{"image.manager.repository=localhost/hakeeper/manager", "image.manager.tag=f35a9adcea2b",
				"image.dataPlane.repository=localhost/hakeeper/dataplane", "image.dataPlane.tag=0b17980a6c8b"},
				"localhost/hakeeper/manager:f35a9adcea2b", "localhost/hakeeper/dataplane:0b17980a6c8b"},
			{"a registry with a port", []string{"image.dataPlane.repository=registry.example:5000/team/dp", "image.dataPlane.tag=v2.0.1"},
				"ghcr.io/hakeeper/manager:0.1.0", "registry.example:5000/team/dp:v2.0.1"},
			{"digests", []string{"image.manager.digest=" + digest, "image.dataPlane.tag=ignored", "image.dataPlane.digest=" + digest},
				"ghcr.io/hakeeper/manager@" + digest, "ghcr.io/hakeeper/dataplane@" + digest},
		} {
			var args []string
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			objs := render(t, h, args...)
			if got := managerImage(t, objs); got != tc.manager {
				t.Errorf("%s: the manager runs %q, want %q", tc.name, got, tc.manager)
			}
			if got := managerFlags(t, objs)["dataplane-image"]; got != tc.dataPlane {
				t.Errorf("%s: --dataplane-image=%q, want %q", tc.name, got, tc.dataPlane)
			}
			cm := find(objs, "ConfigMap", "hakeeper-dataplane-policy")
			if images, _, _ := unstructured.NestedString(cm.Object, "data", "images"); images != tc.dataPlane {
				t.Errorf("%s: the admission policy allows %q, the manager runs %q", tc.name, images, tc.dataPlane)
			}
			if pod := find(objs, "Pod", "hakeeper-test-manager-ready"); pod != nil {
				containers, _, _ := unstructured.NestedSlice(pod.Object, "spec", "containers")
				if got := containers[0].(map[string]any)["image"]; got != tc.dataPlane {
					t.Errorf("%s: the test Pod runs %v, want the data-plane image %s", tc.name, got, tc.dataPlane)
				}
			}
		}
	})
}

// TestImagePullSecrets: the Secrets go on the manager's pods and, as
// --dataplane-image-pull-secrets, to every data plane; no flag without any.
func TestImagePullSecrets(t *testing.T) {
	eachHelm(t, func(t *testing.T, h helmCLI) {
		objs := render(t, h, "--set", "imagePullSecrets[0].name=regcred", "--set", "imagePullSecrets[1].name=mirror")
		secrets, _, _ := unstructured.NestedSlice(managerPod(t, objs), "spec", "imagePullSecrets")
		if want := []any{map[string]any{"name": "regcred"}, map[string]any{"name": "mirror"}}; !reflect.DeepEqual(secrets, want) {
			t.Errorf("the manager's pods pull with %v, want %v", secrets, want)
		}
		if got := managerFlags(t, objs)["dataplane-image-pull-secrets"]; got != "regcred,mirror" {
			t.Errorf("--dataplane-image-pull-secrets=%q, want regcred,mirror", got)
		}
		objs = render(t, h)
		if _, ok := managerFlags(t, objs)["dataplane-image-pull-secrets"]; ok {
			t.Error("--dataplane-image-pull-secrets passed without imagePullSecrets")
		}
		if secrets, ok, _ := unstructured.NestedSlice(managerPod(t, objs), "spec", "imagePullSecrets"); ok {
			t.Errorf("imagePullSecrets %v by default", secrets)
		}
	})
}

// TestManagerPodSettings: priorityClassName, affinity, topology spread,
// pod annotations and labels reach the manager's pods; podLabels cannot
// take the selector's labels.
func TestManagerPodSettings(t *testing.T) {
	eachHelm(t, func(t *testing.T, h helmCLI) {
		objs := render(t, h, withValues(t, `
manager:
  priorityClassName: system-cluster-critical
  affinity:
    podAntiAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
        - weight: 100
          podAffinityTerm:
            topologyKey: kubernetes.io/hostname
            labelSelector: {matchLabels: {app.kubernetes.io/component: manager}}
  topologySpreadConstraints:
    - {maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: ScheduleAnyway,
       labelSelector: {matchLabels: {app.kubernetes.io/component: manager}}}
  podAnnotations: {example.com/owner: platform}
  podLabels: {team: platform}
`)...)
		pod := managerPod(t, objs)
		spec := pod["spec"].(map[string]any)
		if spec["priorityClassName"] != "system-cluster-critical" {
			t.Errorf("priorityClassName %v", spec["priorityClassName"])
		}
		if _, ok, _ := unstructured.NestedMap(spec, "affinity", "podAntiAffinity"); !ok {
			t.Errorf("affinity %v", spec["affinity"])
		}
		if tsc, _, _ := unstructured.NestedSlice(spec, "topologySpreadConstraints"); len(tsc) != 1 {
			t.Errorf("topologySpreadConstraints %v", tsc)
		}
		if a, _, _ := unstructured.NestedStringMap(pod, "metadata", "annotations"); a["example.com/owner"] != "platform" {
			t.Errorf("pod annotations %v", a)
		}
		labels, _, _ := unstructured.NestedStringMap(pod, "metadata", "labels")
		if labels["team"] != "platform" || labels["app.kubernetes.io/component"] != "manager" || labels["app.kubernetes.io/name"] != "hakeeper" {
			t.Errorf("pod labels %v", labels)
		}
		for _, k := range []string{"priorityClassName", "affinity", "topologySpreadConstraints"} {
			if _, ok := managerPod(t, render(t, h))["spec"].(map[string]any)[k]; ok {
				t.Errorf("%s set by default", k)
			}
		}
		for _, label := range []string{"app.kubernetes.io/component", "app.kubernetes.io/name"} {
			_, err := h.template(chartDir(), withValues(t, "manager: {podLabels: {"+label+": other}}")...)
			// Helm misplaces the path of a propertyNames error; the key is named.
			if err == nil || !strings.Contains(err.Error(), label) {
				t.Errorf("podLabels.%s: got %v, want the schema to refuse it", label, err)
			}
		}
	})
}

// TestPodDisruptionBudget: with more than one replica, a budget keeps
// minAvailable managers through drains; with one replica none (it would
// block every drain of its node); minAvailable must leave a pod to evict.
func TestPodDisruptionBudget(t *testing.T) {
	eachHelm(t, func(t *testing.T, h helmCLI) {
		pdb := find(render(t, h), "PodDisruptionBudget", "hakeeper-controller-manager")
		if pdb == nil {
			t.Fatal("no PodDisruptionBudget with two replicas")
		}
		if m, _, _ := unstructured.NestedFieldNoCopy(pdb.Object, "spec", "minAvailable"); fmt.Sprint(m) != "1" {
			t.Errorf("minAvailable %v", m)
		}
		if sel := matchLabels(pdb, "spec", "selector", "matchLabels"); !selects(sel, matchLabels(find(render(t, h), "Deployment", "hakeeper-controller-manager"), "spec", "template", "metadata", "labels")) {
			t.Errorf("the budget selects %v, not the manager's pods", sel)
		}
		for _, set := range [][]string{{"manager.replicas=1"}, {"manager.podDisruptionBudget.enabled=false"}} {
			if find(render(t, h, "--set", set[0]), "PodDisruptionBudget", "hakeeper-controller-manager") != nil {
				t.Errorf("--set %s: a PodDisruptionBudget", set[0])
			}
		}
		if pdb := find(render(t, h, "--set", "manager.replicas=3", "--set-string", "manager.podDisruptionBudget.minAvailable=50%"),
			"PodDisruptionBudget", "hakeeper-controller-manager"); pdb == nil || pdb.Object["spec"].(map[string]any)["minAvailable"] != "50%" {
			t.Errorf("minAvailable 50%%: %v", pdb)
		}
		_, err := h.template(chartDir(), "--set", "manager.podDisruptionBudget.minAvailable=2")
		if err == nil || !strings.Contains(err.Error(), "minAvailable") {
			t.Errorf("minAvailable 2 of 2 replicas: got %v, want an error", err)
		}
	})
}

// TestCRDValues: crds.enabled leaves the CRDs out; crds.keep drops the
// keep annotation (uninstall then deletes them).
func TestCRDValues(t *testing.T) {
	eachHelm(t, func(t *testing.T, h helmCLI) {
		if got := ofKind(render(t, h, "--set", "crds.enabled=false"), "CustomResourceDefinition"); len(got) > 0 {
			t.Errorf("crds.enabled=false renders %v", got)
		}
		objs := render(t, h, "--set", "crds.keep=false")
		for _, name := range crdNames {
			c := find(objs, "CustomResourceDefinition", name)
			if c == nil {
				t.Fatalf("no CRD %s", name)
			}
			if _, ok := c.GetAnnotations()["helm.sh/resource-policy"]; ok {
				t.Errorf("crds.keep=false: %s keeps %v", name, c.GetAnnotations())
			}
			if c.GetAnnotations()["controller-gen.kubebuilder.io/version"] == "" {
				t.Errorf("%s lost its other annotations: %v", name, c.GetAnnotations())
			}
		}
	})
}

// allOn turns on every optional object the chart renders.
var allOn = append([]string{
	"--set", "namespace.create=true", "--set", "defaultClass.enabled=true",
	"--set", "defaultClass.virtualIPPools[0].name=v4", "--set", "defaultClass.virtualIPPools[0].cidr=192.0.2.96/27",
	"--set", "tlsNamespaces={team-a}", "--set", "metrics.monitor.kind=ServiceMonitor",
	"--set", "metrics.prometheusRule.enabled=true", "--api-versions", prometheusRuleAPI,
}, bothAPIs...)

// TestEveryObjectLabelled: every object the chart renders carries the
// chart's labels, the CRDs, RBAC and admission policies copied from
// config/ included.
func TestEveryObjectLabelled(t *testing.T) {
	eachHelm(t, func(t *testing.T, h helmCLI) {
		want := map[string]string{
			"app.kubernetes.io/name": "hakeeper", "app.kubernetes.io/instance": "hakeeper", "app.kubernetes.io/version": "0.1.0",
			"app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": "hakeeper-0.1.0",
		}
		for _, args := range [][]string{nil, allOn, {"--set", "metrics.monitor.kind=PodMonitor", "--api-versions", podMonitorAPI}} {
			objs := render(t, h, args...)
			kinds := map[string]bool{}
			for _, u := range objs {
				kinds[u.GetKind()] = true
				for k, v := range want {
					if u.GetLabels()[k] != v {
						t.Errorf("%s: label %s=%q, want %q", key(u), k, u.GetLabels()[k], v)
					}
				}
			}
			if args == nil {
				for _, k := range []string{"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
					"ServiceAccount", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
					if !kinds[k] {
						t.Errorf("no %s rendered", k)
					}
				}
			}
		}
	})
}

// TestDefaultClassPriority: the default class passes priorityClassName
// through to spec.dataPlane.priorityClassName, only when set.
func TestDefaultClassPriority(t *testing.T) {
	eachHelm(t, func(t *testing.T, h helmCLI) {
		class := []string{"--set", "defaultClass.enabled=true", "--set", "defaultClass.virtualIPPools[0].name=v4",
			"--set", "defaultClass.virtualIPPools[0].cidr=192.0.2.96/27"}
		c := find(render(t, h, append(class, "--set", "defaultClass.priorityClassName=edge-critical")...), "LoadBalancerClass", "default")
		if got, _, _ := unstructured.NestedString(c.Object, "spec", "dataPlane", "priorityClassName"); got != "edge-critical" {
			t.Errorf("spec.dataPlane.priorityClassName %q", got)
		}
		c = find(render(t, h, class...), "LoadBalancerClass", "default")
		if _, ok, _ := unstructured.NestedString(c.Object, "spec", "dataPlane", "priorityClassName"); ok {
			t.Error("spec.dataPlane.priorityClassName set by default")
		}
	})
}

// TestSchemaKubernetesTypes: the pass-through objects are checked against
// the Kubernetes types (hack/chart-schema generates them from k8s.io/api):
// a valid one passes, a misspelt or mistyped field is refused, naming it.
func TestSchemaKubernetesTypes(t *testing.T) {
	eachHelm(t, func(t *testing.T, h helmCLI) {
		for _, tc := range []struct {
			values string
			want   string // "" for valid
		}{
			{"manager: {tolerations: [{key: a, operator: Exists, effect: NoSchedule}]}", ""},
			{"manager: {tolerations: [{key: a, operater: Exists}]}", "operater"},
			{"manager: {tolerations: [{key: a, tolerationSeconds: soon}]}", "tolerationSeconds"},
			{"defaultClass: {tolerations: [{keys: a}]}", "keys"},
			{"manager: {affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: a, operator: In, values: [b]}]}]}}}}", ""},
			{"manager: {affinity: {nodeAffinty: {}}}", "nodeAffinty"},
			{"manager: {affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{operator: In}]}]}}}}", "key"},
			{"manager: {topologySpreadConstraints: [{maxSkew: 1, topologyKey: zone, whenUnsatisfiable: DoNotSchedule}]}", ""},
			{"manager: {topologySpreadConstraints: [{maxSkew: 1, topologyKey: zone}]}", "whenUnsatisfiable"},
			{"manager: {resources: {requests: {cpu: 100m, memory: 1Gi}, limits: {memory: 2Gi}}}", ""},
			{"manager: {resources: {request: {cpu: 100m}}}", "request"},
			{"manager: {resources: {requests: {cpu: lots}}}", "cpu"},
			{"imagePullSecrets: [{name: regcred}]", ""},
			{"imagePullSecrets: [regcred]", "imagePullSecrets"},
			{"imagePullSecrets: [{name: regcred, namespace: x}]", "namespace"},
			{"imagePullSecrets: [{name: \"\"}]", "imagePullSecrets"},
			{"manager: {podAnnotations: {a: 1}}", "podAnnotations"},
			{"manager: {podLabels: {a: b c}}", "podLabels"},
			{"manager: {priorityClassName: High}", "priorityClassName"},
			{"image: {manager: ghcr.io/hakeeper/manager:0.1.0}", "manager"},
			{"image: {manager: {repository: ghcr.io/hakeeper/manager, digest: latest}}", "digest"},
			{"image: {dataPlane: {repository: ghcr.io/hakeeper/dataplane:0.1.0}}", "repository"},
			{"image: {manager: {repository: ghcr.io/hakeeper/manager, tag: 1.10}}", "tag"},
			{"image: {manager: {repository: ghcr.io/hakeeper/manager, tag: 20261207}}", ""},
			{"manager: {podDisruptionBudget: {minAvailable: half}}", "minAvailable"},
			{"crds: {enabled: yes please}", "enabled"},
		} {
			_, err := h.template(chartDir(), withValues(t, tc.values)...)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("%s: %v", tc.values, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("%s: got %v, want an error naming %s", tc.values, err, tc.want)
			}
		}
	})
}

// leaves are values.yaml's keys that hold no map (or an empty one), dotted.
func leaves(prefix string, v any) []string {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		return []string{prefix}
	}
	var out []string
	for k, sub := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		out = append(out, leaves(p, sub)...)
	}
	slices.Sort(out)
	return out
}
