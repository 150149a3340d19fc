// Package chart checks the Helm chart in charts/hakeeper with the real helm
// binary (make test builds it, cached by version): lint, rendering with
// default and other values, values.schema.json refusing wrong values, and
// that with default values it installs the same objects and RBAC rules as
// `kubectl apply -k config/default`.
package chart

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/hakeeper/hakeeper/internal/testenv"
)

const releaseNamespace = "hakeeper-system"

// kubeVersion is the lab's: helm template otherwise assumes an old one,
// which the chart's kubeVersion refuses.
const kubeVersion = "1.37.2"

func chartDir() string { return filepath.Join(testenv.RepoRoot(), "charts", "hakeeper") }

// helm runs the helm binary make test provides ($HELM).
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		bin = filepath.Join(testenv.RepoRoot(), "bin", "helm")
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("HAKEEPER_REQUIRE_REAL_TOOLS") == "1" {
			t.Fatalf("no helm at %s (make test builds it): %v", bin, err)
		}
		t.Skipf("no helm at %s: run make test", bin)
	}
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("helm %s: %v: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), nil
}

// render runs helm template with extra arguments and decodes every object.
func render(t *testing.T, args ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := helm(t, append([]string{"template", "hakeeper", chartDir(), "--namespace", releaseNamespace, "--kube-version", kubeVersion}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, out)
}

func decode(t *testing.T, stream string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, doc := range strings.Split(stream, "\n---") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatalf("%v in\n%s", err, doc)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	return objs
}

func key(u *unstructured.Unstructured) string {
	return u.GetKind() + " " + u.GetNamespace() + "/" + u.GetName()
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, u := range objs {
		if u.GetKind() == kind && u.GetName() == name {
			return u
		}
	}
	return nil
}

func TestLint(t *testing.T) {
	for name, args := range map[string][]string{
		"defaults": nil,
		"a default class": {"--set", "defaultClass.enabled=true", "--set", "defaultClass.virtualIPPools[0].name=v4",
			"--set", "defaultClass.virtualIPPools[0].cidr=192.0.2.96/27"},
	} {
		if out, err := helm(t, append([]string{"lint", "--strict", "--kube-version", kubeVersion, chartDir()}, args...)...); err != nil {
			t.Errorf("%s: %v\n%s", name, err, out)
		}
	}
}

// TestSameAsKustomize: with default values the chart installs the objects
// config/default does (the chart leaves the namespace to `helm install
// --create-namespace` or to namespace.create), with the same RBAC rules.
func TestSameAsKustomize(t *testing.T) {
	kubectl := filepath.Join(testenv.RepoRoot(), "bin", "k8s", "kubectl")
	out, err := exec.Command(kubectl, "kustomize", filepath.Join(testenv.RepoRoot(), "config", "default")).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize config/default: %v", err)
	}
	fromKustomize := decode(t, string(out))
	fromChart := render(t)
	var want, got []string
	for _, u := range fromKustomize {
		if u.GetKind() != "Namespace" {
			want = append(want, key(u))
		}
	}
	for _, u := range fromChart {
		got = append(got, key(u))
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("objects differ\nchart:     %v\nkustomize: %v", got, want)
	}
	for _, k := range fromKustomize {
		if k.GetKind() != "ClusterRole" && k.GetKind() != "Role" {
			continue
		}
		c := find(fromChart, k.GetKind(), k.GetName())
		if c == nil {
			continue // reported above
		}
		if !reflect.DeepEqual(rules(t, k), rules(t, c)) {
			t.Errorf("%s rules differ:\nchart:     %+v\nkustomize: %+v", key(k), rules(t, c), rules(t, k))
		}
	}
	for _, crd := range []string{"loadbalancers.hakeeper.io", "loadbalancerclasses.hakeeper.io"} {
		c := find(fromChart, "CustomResourceDefinition", crd)
		if c == nil || c.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
			t.Errorf("CRD %s: uninstalling the chart would delete it, and every LoadBalancer with it", crd)
		}
		k := find(fromKustomize, "CustomResourceDefinition", crd)
		if c != nil && k != nil && !reflect.DeepEqual(c.Object["spec"], k.Object["spec"]) {
			t.Errorf("CRD %s: the chart's schema differs from config/crd's (run make manifests)", crd)
		}
	}
}

func rules(t *testing.T, u *unstructured.Unstructured) []rbacv1.PolicyRule {
	t.Helper()
	var role rbacv1.ClusterRole
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &role); err != nil {
		t.Fatal(err)
	}
	return role.Rules
}

// TestValues: values other than the defaults reach the objects.
func TestValues(t *testing.T) {
	objs := render(t,
		"--set", "namespace.create=true",
		"--set", "defaultClass.enabled=true", "--set", "defaultClass.name=edge",
		"--set", "defaultClass.virtualIPPools[0].name=v4", "--set", "defaultClass.virtualIPPools[0].cidr=192.0.2.96/27",
		"--set", "defaultClass.virtualIPPools[0].prefixLength=24", "--set-string", "defaultClass.nodeSelector.edge=true",
		"--set", "tlsNamespaces={team-a,team-b}",
		"--set", "metrics.enabled=false", "--set", "admissionPolicy.enabled=false",
		"--set", "image.dataPlane=registry.example/dp:1", "--set", "manager.replicas=3",
	)
	ns := find(objs, "Namespace", releaseNamespace)
	if ns == nil || ns.GetLabels()["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Errorf("namespace.create: %v", ns)
	}
	class := find(objs, "LoadBalancerClass", "edge")
	if class == nil || class.GetAnnotations()["hakeeper.io/is-default-class"] != "true" {
		t.Fatalf("default class: %v", class)
	}
	if cidr, _, _ := unstructured.NestedSlice(class.Object, "spec", "virtualIPPools"); len(cidr) != 1 {
		t.Errorf("pools: %v", cidr)
	}
	for _, team := range []string{"team-a", "team-b"} {
		found := false
		for _, u := range objs {
			found = found || (u.GetKind() == "RoleBinding" && u.GetNamespace() == team && u.GetName() == "hakeeper-tls-delegation")
		}
		if !found {
			t.Errorf("no TLS delegation in %s", team)
		}
	}
	if find(objs, "Service", "hakeeper-metrics") != nil || find(objs, "ValidatingAdmissionPolicy", "hakeeper-tls-secret-access") != nil {
		t.Error("metrics Service or admission policy rendered although disabled")
	}
	d := find(objs, "Deployment", "hakeeper-controller-manager")
	args, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	text := fmt.Sprint(args)
	for _, want := range []string{"--dataplane-image=registry.example/dp:1", "--metrics-bind-address=0", "--dataplane-namespace=" + releaseNamespace} {
		if !strings.Contains(text, want) {
			t.Errorf("manager arguments lack %s: %s", want, text)
		}
	}
	if r, _, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "replicas"); fmt.Sprint(r) != "3" {
		t.Errorf("replicas %v", r)
	}
}

// TestSchemaRefusesWrongValues: a wrong value fails at install, with a
// message naming it.
func TestSchemaRefusesWrongValues(t *testing.T) {
	for _, tc := range []struct{ set, want string }{
		{"manager.replicas=0", "replicas"},
		{"image.pullPolicy=Sometimes", "pullPolicy"},
		{"defaultClass.enabled=true", "virtualIPPools"},
		{"defaultClass.staticServers=All", "staticServers"},
		{"tlsNamespaces={Team_A}", "tlsNamespaces"},
		{"metrics.port=70000", "port"},
		{"imagePullSecret=x", "imagePullSecret"},
	} {
		_, err := helm(t, "template", "hakeeper", chartDir(), "--namespace", releaseNamespace, "--kube-version", kubeVersion, "--set", tc.set)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--set %s: got %v, want an error naming %s", tc.set, err, tc.want)
		}
	}
}
