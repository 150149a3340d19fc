// Package chart checks the Helm chart in charts/hakeeper with the real helm
// binaries, Helm 3 and Helm 4 (make test builds both, cached by version):
// lint, rendering with default and other values, values.schema.json
// refusing wrong values, the ServiceMonitors or PodMonitors, NOTES.txt,
// and that with default values it installs the same objects and RBAC rules
// as `kubectl apply -k config/default`. Every test runs once per Helm, as
// subtests helm3 and helm4.
package chart

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/hakeeper/hakeeper/internal/testing/testenv"
)

const releaseNamespace = "hakeeper-system"

// kubeVersion is the lab's: helm template otherwise assumes the version of
// the client-go it was built with, which need not be the cluster's.
const kubeVersion = "1.37.2"

func chartDir() string { return filepath.Join(testenv.RepoRoot(), "charts", "hakeeper") }

// The Helm major versions the chart supports: the variable naming the
// binary (make test sets both), and the prefix of bin/ the Makefile links
// it as.
var helmMajors = []struct{ test, major, env string }{
	{"helm3", "v3", "HELM"},
	{"helm4", "v4", "HELM4"},
}

// helmCLI is one helm binary.
type helmCLI struct {
	bin     string
	version string // as `helm version` says, e.g. v4.3.1
}

// eachHelm runs f as subtests helm3 and helm4, each with its binary. A
// missing binary skips its subtest, or fails it under
// HAKEEPER_REQUIRE_REAL_TOOLS=1 (make test).
func eachHelm(t *testing.T, f func(t *testing.T, h helmCLI)) {
	t.Helper()
	for _, m := range helmMajors {
		t.Run(m.test, func(t *testing.T) { f(t, findHelm(t, m.major, m.env)) })
	}
}

var versions sync.Map // binary path -> version

func findHelm(t *testing.T, major, env string) helmCLI {
	t.Helper()
	bin := os.Getenv(env)
	if bin == "" {
		bin = newest(filepath.Join(testenv.RepoRoot(), "bin", "helm-"+major+".*"))
	}
	var err error
	if bin == "" {
		err = fmt.Errorf("no bin/helm-%s.*", major)
	} else {
		_, err = os.Stat(bin)
	}
	if err != nil {
		if os.Getenv("HAKEEPER_REQUIRE_REAL_TOOLS") == "1" {
			t.Fatalf("no Helm %s (set $%s; make test builds it): %v", major, env, err)
		}
		t.Skipf("no Helm %s (set $%s, or run make test)", major, env)
	}
	v, ok := versions.Load(bin)
	if !ok {
		out, err := exec.Command(bin, "version", "--template", "{{.Version}}").Output()
		if err != nil {
			t.Fatalf("%s version: %v", bin, err)
		}
		v, _ = versions.LoadOrStore(bin, strings.TrimSpace(string(out)))
	}
	h := helmCLI{bin: bin, version: v.(string)}
	if !strings.HasPrefix(h.version, major+".") {
		t.Fatalf("$%s is %s, Helm %s, not %s", env, bin, h.version, major)
	}
	return h
}

// newest is the highest version among the files matching pattern
// (bin/helm-v3.*), or "".
func newest(pattern string) string {
	matches, _ := filepath.Glob(pattern)
	best, bestV := "", []int(nil)
	for _, m := range matches {
		v := numbers(strings.TrimPrefix(filepath.Base(m), "helm-v"))
		if best == "" || slices.Compare(v, bestV) > 0 {
			best, bestV = m, v
		}
	}
	return best
}

func numbers(version string) []int {
	var out []int
	for _, f := range strings.Split(version, ".") {
		n, _ := strconv.Atoi(f)
		out = append(out, n)
	}
	return out
}

func (h helmCLI) run(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	cmd := exec.Command(h.bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("helm %s %s: %v: %s", h.version, strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), nil
}

// template runs helm template on chart dir with extra arguments.
func (h helmCLI) template(dir string, args ...string) (string, error) {
	return h.run(append([]string{"template", "hakeeper", dir, "--namespace", releaseNamespace, "--kube-version", kubeVersion}, args...)...)
}

// render runs helm template on the chart and decodes every object.
func render(t *testing.T, h helmCLI, args ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := h.template(chartDir(), args...)
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

func ofKind(objs []*unstructured.Unstructured, kind string) []string {
	var names []string
	for _, u := range objs {
		if u.GetKind() == kind {
			names = append(names, u.GetName())
		}
	}
	slices.Sort(names)
	return names
}

func TestLint(t *testing.T) {
	eachHelm(t, func(t *testing.T, h helmCLI) {
		for name, args := range map[string][]string{
			"defaults": nil,
			"a default class": {"--set", "defaultClass.enabled=true", "--set", "defaultClass.virtualIPPools[0].name=v4",
				"--set", "defaultClass.virtualIPPools[0].cidr=192.0.2.96/27"},
			"no metrics": {"--set", "metrics.enabled=false", "--set", "metrics.dataPlane.enabled=false"},
			// helm lint takes no --api-versions; in lint mode `fail` only
			// logs, so the monitors are rendered and linted anyway.
			"ServiceMonitors": {"--set", "metrics.monitor.kind=ServiceMonitor"},
			"PodMonitors":     {"--set", "metrics.monitor.kind=PodMonitor"},
			"everything else": {"--set", "metrics.prometheusRule.enabled=true", "--set", "imagePullSecrets[0].name=regcred",
				"--set", "manager.priorityClassName=high", "--set", "manager.podLabels.team=a", "--set", "crds.keep=false",
				"--set", "image.dataPlane.digest=sha256:0123456789abcdef0123456789abcdef"},
		} {
			if out, err := h.run(append([]string{"lint", "--strict", "--kube-version", kubeVersion, chartDir()}, args...)...); err != nil {
				t.Errorf("%s: %v\n%s", name, err, out)
			}
		}
	})
}

// TestKubeVersion: the chart's kubeVersion (>=1.35.0-0) admits the lab's
// version, pre-releases and vendor suffixes, and refuses older ones, with
// either Helm. Without --kube-version the two differ: helm template then
// assumes Helm 3's built-in v1.20 (its release builds set it at link time,
// `go install` cannot), which the chart refuses, and Helm 4 the version of
// the client-go it was built with.
func TestKubeVersion(t *testing.T) {
	eachHelm(t, func(t *testing.T, h helmCLI) {
		for _, v := range []string{"1.35.0", "1.35.0-rc.1", "v1.37.2-gke.1200"} {
			if _, err := h.run("template", "hakeeper", chartDir(), "--kube-version", v); err != nil {
				t.Errorf("Kubernetes %s: %v", v, err)
			}
		}
		for _, v := range []string{"1.34.9", "1.20.0"} {
			if _, err := h.run("template", "hakeeper", chartDir(), "--kube-version", v); err == nil || !strings.Contains(err.Error(), "kubeVersion") {
				t.Errorf("Kubernetes %s: got %v, want the chart's kubeVersion to refuse it", v, err)
			}
		}
	})
}

// TestSameWithBothHelms: Helm 3 and Helm 4 render the same objects from
// the same values (Helm 4 ends each document with an empty line, which
// is all that differs in the text).
func TestSameWithBothHelms(t *testing.T) {
	h3 := findHelm(t, "v3", "HELM")
	h4 := findHelm(t, "v4", "HELM4")
	for name, args := range map[string][]string{
		"defaults":        nil,
		"ServiceMonitors": append([]string{"--set", "metrics.monitor.kind=ServiceMonitor", "--set", "metrics.monitor.labels.release=prom"}, bothAPIs...),
		"PodMonitors":     append([]string{"--set", "metrics.monitor.kind=PodMonitor", "--set", "metrics.monitor.tokenSecret.name=prom-token"}, bothAPIs...),
		"other values": {"--set", "namespace.create=true", "--set", "defaultClass.enabled=true",
			"--set", "defaultClass.virtualIPPools[0].name=v4", "--set", "defaultClass.virtualIPPools[0].cidr=192.0.2.96/27",
			"--set", "tlsNamespaces={team-a}", "--set", "metrics.dataPlane.basePort=12000", "--set", "admissionPolicy.enabled=false"},
	} {
		from3, from4 := render(t, h3, args...), render(t, h4, args...)
		if len(from3) != len(from4) {
			t.Errorf("%s: Helm 3 renders %d objects, Helm 4 %d", name, len(from3), len(from4))
			continue
		}
		for i := range from3 {
			if !reflect.DeepEqual(from3[i].Object, from4[i].Object) {
				t.Errorf("%s: %s differs between Helm 3 and Helm 4 (Helm 4's: %s)", name, key(from3[i]), key(from4[i]))
			}
		}
	}
}

// chartOnly are the objects the chart adds to config/default's with default
// values: the manager's PodDisruptionBudget (kustomize users scale and
// budget it themselves), the `helm test` hook and the Service it asks.
var chartOnly = []string{
	"PodDisruptionBudget " + releaseNamespace + "/hakeeper-controller-manager",
	"Pod " + releaseNamespace + "/hakeeper-test-manager-ready",
	"Service " + releaseNamespace + "/hakeeper-manager-probes",
}

// TestSameAsKustomize: with default values the chart installs the objects
// config/default does (the chart leaves the namespace to `helm install
// --create-namespace` or to namespace.create), plus chartOnly, with the
// same RBAC rules and every label config/default gives them (the chart
// adds its own, TestEveryObjectLabelled), and its manager gets every flag
// config/default's gets, with the same value (the images aside:
// config/default names :latest, the chart its appVersion).
func TestSameAsKustomize(t *testing.T) {
	kubectl := filepath.Join(testenv.RepoRoot(), "bin", "k8s", "kubectl")
	out, err := exec.Command(kubectl, "kustomize", filepath.Join(testenv.RepoRoot(), "config", "default")).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize config/default: %v", err)
	}
	eachHelm(t, func(t *testing.T, h helmCLI) {
		fromKustomize := decode(t, string(out))
		fromChart := render(t, h)
		var want, got []string
		for _, u := range fromKustomize {
			if u.GetKind() != "Namespace" {
				want = append(want, key(u))
			}
		}
		for _, u := range fromChart {
			if !slices.Contains(chartOnly, key(u)) {
				got = append(got, key(u))
			}
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("objects differ\nchart:     %v\nkustomize: %v", got, want)
		}
		for _, k := range fromKustomize {
			c := find(fromChart, k.GetKind(), k.GetName())
			if c == nil {
				continue // reported above
			}
			for name, value := range k.GetLabels() {
				if got, ok := c.GetLabels()[name]; !ok || got != value {
					t.Errorf("%s: config/default labels it %s=%s, the chart %s=%q", key(k), name, value, name, got)
				}
			}
			if k.GetKind() != "ClusterRole" && k.GetKind() != "Role" {
				continue
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
		chartFlags := managerFlags(t, fromChart)
		for name, value := range managerFlags(t, fromKustomize) {
			got, ok := chartFlags[name]
			switch {
			case !ok:
				t.Errorf("config/default passes the manager --%s=%s, the chart does not pass --%s", name, value, name)
			case got != value && name != "dataplane-image":
				t.Errorf("--%s: the chart passes %q, config/default %q", name, got, value)
			}
		}
	})
}

// managerFlags are the manager container's arguments, flag name to value.
func managerFlags(t *testing.T, objs []*unstructured.Unstructured) map[string]string {
	t.Helper()
	d := find(objs, "Deployment", "hakeeper-controller-manager")
	if d == nil {
		t.Fatal("no Deployment hakeeper-controller-manager")
	}
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	flags := map[string]string{}
	for _, c := range containers {
		c := c.(map[string]any)
		if c["name"] != "manager" {
			continue
		}
		args, _, _ := unstructured.NestedStringSlice(c, "args")
		for _, a := range args {
			name, value, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			flags[name] = value
		}
	}
	return flags
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
	eachHelm(t, func(t *testing.T, h helmCLI) {
		objs := render(t, h,
			"--set", "namespace.create=true",
			"--set", "defaultClass.enabled=true", "--set", "defaultClass.name=edge",
			"--set", "defaultClass.virtualIPPools[0].name=v4", "--set", "defaultClass.virtualIPPools[0].cidr=192.0.2.96/27",
			"--set", "defaultClass.virtualIPPools[0].prefixLength=24", "--set-string", "defaultClass.nodeSelector.edge=true",
			"--set", "tlsNamespaces={team-a,team-b}",
			"--set", "metrics.enabled=false", "--set", "metrics.dataPlane.enabled=false", "--set", "admissionPolicy.enabled=false",
			"--set", "image.dataPlane.repository=registry.example/dp", "--set", "image.dataPlane.tag=1", "--set", "manager.replicas=3",
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
		flags := managerFlags(t, objs)
		for name, want := range map[string]string{
			"dataplane-image": "registry.example/dp:1", "metrics-bind-address": "0",
			"dataplane-namespace": releaseNamespace, "dataplane-metrics-base-port": "0",
		} {
			if flags[name] != want {
				t.Errorf("manager --%s=%q, want %q", name, flags[name], want)
			}
		}
		d := find(objs, "Deployment", "hakeeper-controller-manager")
		if r, _, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "replicas"); fmt.Sprint(r) != "3" {
			t.Errorf("replicas %v", r)
		}

		for args, want := range map[string]string{"": "9800", "metrics.dataPlane.basePort=10000": "10000"} {
			var set []string
			if args != "" {
				set = []string{"--set", args}
			}
			if got := managerFlags(t, render(t, h, set...))["dataplane-metrics-base-port"]; got != want {
				t.Errorf("--set %q: --dataplane-metrics-base-port=%s, want %s", args, got, want)
			}
		}
	})
}

// TestSchemaRefusesWrongValues: a wrong value fails at install, with a
// message naming it.
func TestSchemaRefusesWrongValues(t *testing.T) {
	eachHelm(t, func(t *testing.T, h helmCLI) {
		for _, tc := range []struct {
			set  []string
			want string
		}{
			{[]string{"manager.replicas=0"}, "replicas"},
			{[]string{"image.pullPolicy=Sometimes"}, "pullPolicy"},
			{[]string{"defaultClass.enabled=true"}, "virtualIPPools"},
			{[]string{"defaultClass.staticServers=All"}, "staticServers"},
			{[]string{"tlsNamespaces={Team_A}"}, "tlsNamespaces"},
			{[]string{"metrics.port=70000"}, "port"},
			{[]string{"imagePullSecret=x"}, "imagePullSecret"},
			// basePort + 255 must be a port; below 1024 the agent, with
			// no capabilities, may not bind.
			{[]string{"metrics.dataPlane.basePort=65300"}, "basePort"},
			{[]string{"metrics.dataPlane.basePort=80"}, "basePort"},
			// One kind or none: never both, nothing else.
			{[]string{"metrics.monitor.kind=Both"}, "kind"},
			{[]string{"metrics.monitor.kind=servicemonitor"}, "kind"},
			{[]string{"metrics.monitor.kind={ServiceMonitor,PodMonitor}"}, "kind"},
			{[]string{"metrics.monitor.interval=30"}, "interval"},
			{[]string{"metrics.monitor.scrapeTimeout=soon"}, "scrapeTimeout"},
			{[]string{"metrics.monitor.auth=Token"}, "auth"},
			// A PodMonitor cannot read Prometheus' token file.
			{[]string{"metrics.monitor.kind=PodMonitor", "metrics.monitor.auth=PrometheusServiceAccount"}, "auth"},
		} {
			args := []string{}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			// The APIs are there: only the schema may refuse.
			args = append(args, "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor", "--api-versions", "monitoring.coreos.com/v1/PodMonitor")
			_, err := h.template(chartDir(), args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("--set %s: got %v, want an error naming %s", strings.Join(tc.set, " --set "), err, tc.want)
			}
		}
	})
}

const (
	serviceMonitorAPI = "monitoring.coreos.com/v1/ServiceMonitor"
	podMonitorAPI     = "monitoring.coreos.com/v1/PodMonitor"
)

// bothAPIs: a cluster with the Prometheus Operator's CRDs.
var bothAPIs = []string{"--api-versions", serviceMonitorAPI, "--api-versions", podMonitorAPI}

// endpoint is what the tests read of a ServiceMonitor's or PodMonitor's
// endpoint.
type endpoint struct {
	Port, Path, Scheme, Interval, BearerTokenFile string
	TLSConfig                                     struct{ InsecureSkipVerify bool }
	Authorization                                 *struct {
		Type        string
		Credentials struct{ Name, Key string }
	}
	Relabelings []struct{ TargetLabel, Replacement string }
}

func endpoints(t *testing.T, monitor *unstructured.Unstructured) []endpoint {
	t.Helper()
	field := "endpoints"
	if monitor.GetKind() == "PodMonitor" {
		field = "podMetricsEndpoints"
	}
	raw, _, _ := unstructured.NestedSlice(monitor.Object, "spec", field)
	b, err := yaml.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	var eps []endpoint
	if err := yaml.Unmarshal(b, &eps); err != nil {
		t.Fatal(err)
	}
	if len(eps) == 0 {
		t.Errorf("%s has no spec.%s", key(monitor), field)
	}
	return eps
}

func matchLabels(u *unstructured.Unstructured, path ...string) map[string]string {
	m, _, _ := unstructured.NestedStringMap(u.Object, path...)
	return m
}

func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

// TestMonitors: metrics.monitor.kind renders ServiceMonitors or
// PodMonitors, never both, for the manager and the data plane, scraping
// over HTTPS with a Bearer token; none by default; and it fails, naming
// the value, where the cluster does not serve the kind.
func TestMonitors(t *testing.T) {
	eachHelm(t, func(t *testing.T, h helmCLI) {
		objs := render(t, h, bothAPIs...)
		for _, kind := range []string{"ServiceMonitor", "PodMonitor"} {
			if names := ofKind(objs, kind); len(names) > 0 {
				t.Errorf("default values render %ss %v", kind, names)
			}
		}
		for _, name := range []string{"hakeeper-dataplane-metrics", "hakeeper-metrics-scraper"} {
			if find(objs, "Service", name) != nil || find(objs, "ServiceAccount", name) != nil {
				t.Errorf("default values render %s", name)
			}
		}

		for _, kind := range []string{"ServiceMonitor", "PodMonitor"} {
			t.Run(kind, func(t *testing.T) {
				other := map[string]string{"ServiceMonitor": "PodMonitor", "PodMonitor": "ServiceMonitor"}[kind]
				objs := render(t, h, append([]string{"--set", "metrics.monitor.kind=" + kind,
					"--set", "metrics.monitor.labels.release=prom"}, bothAPIs...)...)
				if got := ofKind(objs, kind); !slices.Equal(got, []string{"hakeeper-dataplane", "hakeeper-manager"}) {
					t.Errorf("%ss: %v", kind, got)
				}
				if got := ofKind(objs, other); len(got) > 0 {
					t.Errorf("%ss rendered too: %v", other, got)
				}
				checkMonitors(t, objs, kind)

				// The chart's scraper identity, bound to the metrics role.
				sa := find(objs, "ServiceAccount", "hakeeper-metrics-scraper")
				secret := find(objs, "Secret", "hakeeper-metrics-scraper-token")
				crb := find(objs, "ClusterRoleBinding", "hakeeper-metrics-scraper")
				if sa == nil || secret == nil || crb == nil {
					t.Fatalf("scraper ServiceAccount %v, Secret %v, ClusterRoleBinding %v", sa, secret, crb)
				}
				if typ, _, _ := unstructured.NestedString(secret.Object, "type"); typ != "kubernetes.io/service-account-token" ||
					secret.GetAnnotations()["kubernetes.io/service-account.name"] != "hakeeper-metrics-scraper" {
					t.Errorf("token Secret: %v", secret.Object)
				}
				role, _, _ := unstructured.NestedString(crb.Object, "roleRef", "name")
				subjects, _, _ := unstructured.NestedSlice(crb.Object, "subjects")
				if role != "hakeeper-metrics-reader" || fmt.Sprint(subjects) != fmt.Sprint([]any{map[string]any{
					"kind": "ServiceAccount", "name": "hakeeper-metrics-scraper", "namespace": releaseNamespace}}) {
					t.Errorf("scraper binding: %v", crb.Object)
				}

				// Where the cluster does not serve the kind.
				for _, apis := range [][]string{nil, {"--api-versions", "monitoring.coreos.com/v1/" + other}} {
					_, err := h.template(chartDir(), append([]string{"--set", "metrics.monitor.kind=" + kind}, apis...)...)
					if err == nil || !strings.Contains(err.Error(), "metrics.monitor.kind") || !strings.Contains(err.Error(), "monitoring.coreos.com/v1/"+kind) {
						t.Errorf("with APIs %v: got %v, want an error naming metrics.monitor.kind and the API", apis, err)
					}
				}

				// Only what is enabled.
				objs = render(t, h, append([]string{"--set", "metrics.monitor.kind=" + kind, "--set", "metrics.dataPlane.enabled=false"}, bothAPIs...)...)
				if got := ofKind(objs, kind); !slices.Equal(got, []string{"hakeeper-manager"}) || find(objs, "Service", "hakeeper-dataplane-metrics") != nil {
					t.Errorf("data-plane metrics off: %ss %v, data-plane Service %v", kind, got, find(objs, "Service", "hakeeper-dataplane-metrics") != nil)
				}
				objs = render(t, h, append([]string{"--set", "metrics.monitor.kind=" + kind, "--set", "metrics.enabled=false"}, bothAPIs...)...)
				if got := ofKind(objs, kind); !slices.Equal(got, []string{"hakeeper-dataplane"}) {
					t.Errorf("manager metrics off: %ss %v", kind, got)
				}
				_, err := h.template(chartDir(), append([]string{"--set", "metrics.monitor.kind=" + kind,
					"--set", "metrics.enabled=false", "--set", "metrics.dataPlane.enabled=false"}, bothAPIs...)...)
				if err == nil || !strings.Contains(err.Error(), "nothing to scrape") {
					t.Errorf("all metrics off: got %v, want an error", err)
				}

				// A token Secret of the user's: no scraper identity.
				objs = render(t, h, append([]string{"--set", "metrics.monitor.kind=" + kind,
					"--set", "metrics.monitor.tokenSecret.name=prom-token", "--set", "metrics.monitor.tokenSecret.key=tok"}, bothAPIs...)...)
				if find(objs, "ServiceAccount", "hakeeper-metrics-scraper") != nil {
					t.Error("scraper ServiceAccount rendered although tokenSecret names a Secret")
				}
				for _, m := range ofKind(objs, kind) {
					for _, ep := range endpoints(t, find(objs, kind, m)) {
						if ep.Authorization == nil || ep.Authorization.Credentials.Name != "prom-token" || ep.Authorization.Credentials.Key != "tok" {
							t.Errorf("%s: authorization %+v, want prom-token/tok", m, ep.Authorization)
						}
					}
				}
			})
		}

		// Prometheus' own token: ServiceMonitors only (the schema refuses
		// it for PodMonitors, TestSchemaRefusesWrongValues).
		objs = render(t, h, append([]string{"--set", "metrics.monitor.kind=ServiceMonitor",
			"--set", "metrics.monitor.auth=PrometheusServiceAccount"}, bothAPIs...)...)
		if find(objs, "ServiceAccount", "hakeeper-metrics-scraper") != nil || find(objs, "Secret", "hakeeper-metrics-scraper-token") != nil {
			t.Error("scraper identity rendered although Prometheus sends its own token")
		}
		for _, m := range ofKind(objs, "ServiceMonitor") {
			for _, ep := range endpoints(t, find(objs, "ServiceMonitor", m)) {
				if ep.BearerTokenFile != "/var/run/secrets/kubernetes.io/serviceaccount/token" || ep.Authorization != nil {
					t.Errorf("%s: bearerTokenFile %q, authorization %+v", m, ep.BearerTokenFile, ep.Authorization)
				}
			}
		}
	})
}

// checkMonitors checks the manager's and the data plane's monitors of kind
// in objs, rendered with default values otherwise and the label
// release=prom.
func checkMonitors(t *testing.T, objs []*unstructured.Unstructured, kind string) {
	t.Helper()
	jobs := map[string]bool{}
	for name, want := range map[string]struct {
		component string
		paths     []string
	}{
		"hakeeper-manager":   {"manager", []string{"/metrics"}},
		"hakeeper-dataplane": {"dataplane", []string{"/metrics", "/metrics/haproxy"}},
	} {
		m := find(objs, kind, name)
		if m == nil {
			continue // reported by the caller
		}
		if m.GetNamespace() != releaseNamespace || m.GetLabels()["release"] != "prom" {
			t.Errorf("%s: namespace %q, labels %v", name, m.GetNamespace(), m.GetLabels())
		}
		selector := matchLabels(m, "spec", "selector", "matchLabels")
		// The contract with the operator: its pods' labels.
		if !reflect.DeepEqual(selector, map[string]string{"app.kubernetes.io/name": "hakeeper", "app.kubernetes.io/component": want.component}) {
			t.Errorf("%s selects %v", name, selector)
		}
		if ns, _, _ := unstructured.NestedStringSlice(m.Object, "spec", "namespaceSelector", "matchNames"); !slices.Equal(ns, []string{releaseNamespace}) {
			t.Errorf("%s: namespaces %v", name, ns)
		}
		var paths []string
		for _, ep := range endpoints(t, m) {
			paths = append(paths, ep.Path)
			if ep.Port != "metrics" || ep.Scheme != "https" || !ep.TLSConfig.InsecureSkipVerify || ep.Interval != "30s" {
				t.Errorf("%s %s: port %q scheme %q insecureSkipVerify %v interval %q", name, ep.Path, ep.Port, ep.Scheme, ep.TLSConfig.InsecureSkipVerify, ep.Interval)
			}
			if ep.Authorization == nil || ep.Authorization.Type != "Bearer" ||
				ep.Authorization.Credentials != (struct{ Name, Key string }{"hakeeper-metrics-scraper-token", "token"}) || ep.BearerTokenFile != "" {
				t.Errorf("%s %s: authorization %+v, bearerTokenFile %q", name, ep.Path, ep.Authorization, ep.BearerTokenFile)
			}
			for _, r := range ep.Relabelings {
				if r.TargetLabel == "job" {
					if jobs[r.Replacement] {
						t.Errorf("%s %s: job %s is another endpoint's too: their up series would collide", name, ep.Path, r.Replacement)
					}
					jobs[r.Replacement] = true
				}
			}
		}
		if !slices.Equal(paths, want.paths) {
			t.Errorf("%s scrapes %v, want %v", name, paths, want.paths)
		}
	}
	if len(jobs) != 3 {
		t.Errorf("jobs %v, want one per endpoint", jobs)
	}

	dp := find(objs, "Service", "hakeeper-dataplane-metrics")
	if kind == "PodMonitor" {
		if dp != nil {
			t.Error("PodMonitors need no data-plane Service")
		}
		// The manager's PodMonitor selects the Deployment's pods.
		d := find(objs, "Deployment", "hakeeper-controller-manager")
		if m := find(objs, kind, "hakeeper-manager"); m != nil && d != nil &&
			!selects(matchLabels(m, "spec", "selector", "matchLabels"), matchLabels(d, "spec", "template", "metadata", "labels")) {
			t.Error("the manager's PodMonitor does not select the manager's pods")
		}
		return
	}
	if dp == nil {
		t.Fatal("no Service hakeeper-dataplane-metrics for the data-plane ServiceMonitor")
	}
	clusterIP, _, _ := unstructured.NestedString(dp.Object, "spec", "clusterIP")
	ports, _, _ := unstructured.NestedSlice(dp.Object, "spec", "ports")
	if clusterIP != "None" || len(ports) != 1 || ports[0].(map[string]any)["targetPort"] != "metrics" || ports[0].(map[string]any)["name"] != "metrics" {
		t.Errorf("data-plane Service: clusterIP %q ports %v; want headless, targetPort the port's name", clusterIP, ports)
	}
	if sel := matchLabels(dp, "spec", "selector"); !reflect.DeepEqual(sel, map[string]string{"app.kubernetes.io/name": "hakeeper", "app.kubernetes.io/component": "dataplane"}) {
		t.Errorf("data-plane Service selects %v", sel)
	}
	// Each ServiceMonitor selects exactly its Service.
	for monitor, service := range map[string]string{"hakeeper-manager": "hakeeper-metrics", "hakeeper-dataplane": "hakeeper-dataplane-metrics"} {
		m := find(objs, kind, monitor)
		if m == nil {
			continue
		}
		var selected []string
		for _, s := range ofKind(objs, "Service") {
			if selects(matchLabels(m, "spec", "selector", "matchLabels"), find(objs, "Service", s).GetLabels()) {
				selected = append(selected, s)
			}
		}
		if !slices.Equal(selected, []string{service}) {
			t.Errorf("ServiceMonitor %s selects Services %v, want %s", monitor, selected, service)
		}
	}
}

// notes renders NOTES.txt, which helm template leaves out and helm install
// --dry-run renders only without --api-versions: a copy of the chart
// renders it into a ConfigMap through tpl.
func notes(t *testing.T, h helmCLI, args ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "hakeeper")
	if err := os.CopyFS(dir, os.DirFS(chartDir())); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(filepath.Join(dir, "templates", "NOTES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"notes-under-test.txt":    string(text),
		"templates/zz-notes.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\ndata:\n  notes: {{ tpl (.Files.Get \"notes-under-test.txt\") . | toJson }}\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := h.template(dir, append(args, "--show-only", "templates/zz-notes.yaml")...)
	if err != nil {
		t.Fatal(err)
	}
	objs := decode(t, out)
	if len(objs) != 1 {
		t.Fatalf("notes: %d objects", len(objs))
	}
	s, _, _ := unstructured.NestedString(objs[0].Object, "data", "notes")
	return s
}

// TestNotes: NOTES.txt says how to scrape, for what the values turn on.
func TestNotes(t *testing.T) {
	eachHelm(t, func(t *testing.T, h helmCLI) {
		for _, tc := range []struct {
			name       string
			set        []string
			want, not  []string
			extraFlags []string
		}{
			{"defaults", nil,
				[]string{"hakeeper-metrics-reader", "/metrics/haproxy", "kubectl create clusterrolebinding", "Service hakeeper-metrics", "9800 +"},
				[]string{"hakeeper-metrics-scraper"}, nil},
			{"PodMonitor", []string{"metrics.monitor.kind=PodMonitor", "metrics.monitor.labels.release=prom"},
				[]string{"ServiceAccount hakeeper-metrics-scraper", "PodMonitors", "release=prom"},
				[]string{"kubectl create clusterrolebinding"}, bothAPIs},
			{"Prometheus' token, no data-plane metrics", []string{"metrics.monitor.kind=ServiceMonitor",
				"metrics.monitor.auth=PrometheusServiceAccount", "metrics.dataPlane.enabled=false"},
				[]string{"Prometheus' own ServiceAccount token", "kubectl create clusterrolebinding"},
				[]string{"/metrics/haproxy", "hakeeper-metrics-scraper"}, bothAPIs},
			{"no metrics", []string{"metrics.enabled=false", "metrics.dataPlane.enabled=false"},
				[]string{"stay when the chart is uninstalled"}, []string{"hakeeper-metrics-reader"}, nil},
		} {
			var args []string
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			text := notes(t, h, append(args, tc.extraFlags...)...)
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("%s: NOTES.txt lacks %q:\n%s", tc.name, w, text)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(text, n) {
					t.Errorf("%s: NOTES.txt says %q:\n%s", tc.name, n, text)
				}
			}
		}
	})
}

// TestDataPlanePolicyParams: the data-plane admission policy's parameters
// name the manager's ServiceAccount in the release namespace and allow
// image.dataPlane (TestImages: the exact string the manager runs) and
// admissionPolicy.allowedDataPlaneImages; the policy's
// binding reads them from, and applies in, the release namespace.
func TestDataPlanePolicyParams(t *testing.T) {
	eachHelm(t, func(t *testing.T, h helmCLI) {
		objs := render(t, h, "--set", "image.dataPlane.repository=registry.example/dp", "--set", "image.dataPlane.tag=1",
			"--set", "admissionPolicy.allowedDataPlaneImages={registry.example/dp:class-a,registry.example/dp:class-b}")
		cm := find(objs, "ConfigMap", "hakeeper-dataplane-policy")
		if cm == nil {
			t.Fatal("no ConfigMap hakeeper-dataplane-policy")
		}
		data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
		if want := "registry.example/dp:1 registry.example/dp:class-a registry.example/dp:class-b"; data["images"] != want {
			t.Errorf("images %q, want %q", data["images"], want)
		}
		d := find(objs, "Deployment", "hakeeper-controller-manager")
		sa, _, _ := unstructured.NestedString(d.Object, "spec", "template", "spec", "serviceAccountName")
		if want := "system:serviceaccount:" + releaseNamespace + ":" + sa; data["manager"] != want {
			t.Errorf("manager %q, want the Deployment's ServiceAccount %q", data["manager"], want)
		}
		for _, name := range []string{"hakeeper-dataplane-shape", "hakeeper-dataplane-pods", "hakeeper-dataplane-params"} {
			b := find(objs, "ValidatingAdmissionPolicyBinding", name)
			if b == nil {
				t.Errorf("no binding %s", name)
				continue
			}
			ns, _, _ := unstructured.NestedString(b.Object, "spec", "paramRef", "namespace")
			sel, _, _ := unstructured.NestedStringMap(b.Object, "spec", "matchResources", "namespaceSelector", "matchLabels")
			if ns != releaseNamespace || sel["kubernetes.io/metadata.name"] != releaseNamespace {
				t.Errorf("binding %s: parameters in %q, applies to %v; want the release namespace %s", name, ns, sel, releaseNamespace)
			}
		}
		// The PriorityClasses: the manager's --dataplane-priority-class, the
		// listed ones, the default class's.
		priorities := func(args ...string) (string, string) {
			objs := render(t, h, args...)
			data, _, _ := unstructured.NestedStringMap(find(objs, "ConfigMap", "hakeeper-dataplane-policy").Object, "data")
			return data["priorityClasses"], managerFlags(t, objs)["dataplane-priority-class"]
		}
		if got, flag := priorities(); got != "hakeeper-dataplane" || flag != got {
			t.Errorf("priorityClasses %q with --dataplane-priority-class=%s, want hakeeper-dataplane", got, flag)
		}
		if got, flag := priorities("--set", "dataPlane.priorityClass.create=false", "--set", "dataPlane.priorityClass.name=edge-high",
			"--set", "dataPlane.quota.enabled=false", "--set", "admissionPolicy.allowedPriorityClasses={gold}",
			"--set", "defaultClass.enabled=true", "--set", "defaultClass.virtualIPPools[0].name=v4", "--set", "defaultClass.virtualIPPools[0].cidr=192.0.2.96/27",
			"--set", "defaultClass.priorityClassName=edge-critical"); got != "edge-high gold edge-critical" || flag != "edge-high" {
			t.Errorf("priorityClasses %q with --dataplane-priority-class=%s, want edge-high gold edge-critical", got, flag)
		}
		if off := render(t, h, "--set", "admissionPolicy.enabled=false"); find(off, "ConfigMap", "hakeeper-dataplane-policy") != nil ||
			find(off, "ValidatingAdmissionPolicy", "hakeeper-dataplane-shape") != nil {
			t.Error("the data-plane policy rendered although disabled")
		}
	})
}
