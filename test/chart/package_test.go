package chart

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/hakeeper/hakeeper/internal/testing/testenv"
)

// packaged runs helm package and returns the package's files by name
// (hakeeper/...).
func packaged(t *testing.T, h helmCLI) map[string][]byte {
	t.Helper()
	dir := t.TempDir()
	if _, err := h.run("package", chartDir(), "--destination", dir); err != nil {
		t.Fatal(err)
	}
	tgz, _ := filepath.Glob(filepath.Join(dir, "hakeeper-*.tgz"))
	if len(tgz) != 1 {
		t.Fatalf("packaged: %v", tgz)
	}
	f, err := os.Open(tgz[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	r := tar.NewReader(gz)
	for {
		hdr, err := r.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if files[hdr.Name], err = io.ReadAll(r); err != nil {
			t.Fatal(err)
		}
	}
}

var (
	urlRe  = regexp.MustCompile(`https?://\S+`)
	pathRe = regexp.MustCompile(`[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*\.(yaml|yml|md|txt|lua|json|tpl)\b`)
)

// TestNotesPathsShipped: every file NOTES.txt points at (a path with a
// file extension, not a URL) is in the packaged chart; the rest it says
// with URLs, which must be hakeeper's.
func TestNotesPathsShipped(t *testing.T) {
	eachHelm(t, func(t *testing.T, h helmCLI) {
		files := packaged(t, h)
		seen := 0
		for _, args := range [][]string{nil, {"--set", "defaultClass.enabled=true", "--set", "defaultClass.virtualIPPools[0].name=v4",
			"--set", "defaultClass.virtualIPPools[0].cidr=192.0.2.96/27"}} {
			text := notes(t, h, args...)
			for _, u := range urlRe.FindAllString(text, -1) {
				if !strings.HasPrefix(u, "https://github.com/hakeeper/hakeeper/") {
					t.Errorf("NOTES.txt points at %s", u)
				}
			}
			for _, p := range pathRe.FindAllString(urlRe.ReplaceAllString(text, ""), -1) {
				seen++
				if _, ok := files["hakeeper/"+p]; !ok {
					t.Errorf("NOTES.txt points at %s, which the packaged chart does not hold (it has %v)", p, slices.Sorted(maps.Keys(files)))
				}
			}
		}
		if seen == 0 {
			t.Error("NOTES.txt names no file: is the pattern stale?")
		}
	})
}

// TestChartAnnotations: Chart.yaml's Artifact Hub annotations are strings
// that parse as what Artifact Hub expects; the CRDs listed are the chart's,
// the examples are config/samples' objects, the images the defaults.
func TestChartAnnotations(t *testing.T) {
	var chart struct {
		AppVersion  string `json:"appVersion"`
		Icon        string
		Sources     []string
		Maintainers []struct{ Name, URL string }
		Annotations map[string]string
	}
	if err := yaml.Unmarshal([]byte(readFile(t, filepath.Join(chartDir(), "Chart.yaml"))), &chart); err != nil {
		t.Fatal(err)
	}
	if len(chart.Sources) == 0 || len(chart.Maintainers) == 0 {
		t.Errorf("sources %v, maintainers %v", chart.Sources, chart.Maintainers)
	}
	// The icon is a file of the repository's main branch.
	icon := strings.TrimPrefix(chart.Icon, "https://raw.githubusercontent.com/hakeeper/hakeeper/main/")
	if _, err := os.Stat(filepath.Join(testenv.RepoRoot(), icon)); icon == chart.Icon || err != nil {
		t.Errorf("icon %s is not a file of the repository: %v", chart.Icon, err)
	}
	a := chart.Annotations
	for _, k := range []string{"artifacthub.io/license", "artifacthub.io/operator", "artifacthub.io/prerelease"} {
		if a[k] == "" {
			t.Errorf("no %s", k)
		}
	}
	if a["artifacthub.io/operator"] != "true" || a["artifacthub.io/prerelease"] != "true" {
		t.Errorf("operator %q, prerelease %q", a["artifacthub.io/operator"], a["artifacthub.io/prerelease"])
	}
	var links []struct{ Name, URL string }
	mustParse(t, a, "artifacthub.io/links", &links)
	for _, l := range links {
		if u, err := url.Parse(l.URL); l.Name == "" || err != nil || u.Scheme != "https" {
			t.Errorf("link %+v", l)
		}
	}
	var crds []struct{ Kind, Version, Name, DisplayName, Description string }
	mustParse(t, a, "artifacthub.io/crds", &crds)
	var names []string
	for _, c := range crds {
		names = append(names, c.Name)
		if c.Version != "v1alpha1" || c.DisplayName == "" || c.Description == "" || !strings.HasPrefix(c.Name, strings.ToLower(c.Kind)) {
			t.Errorf("crd %+v", c)
		}
	}
	slices.Sort(names)
	if want := slices.Sorted(slices.Values(crdNames)); !slices.Equal(names, want) {
		t.Errorf("artifacthub.io/crds lists %v, the chart has %v", names, want)
	}
	var examples []map[string]any
	mustParse(t, a, "artifacthub.io/crdsExamples", &examples)
	samples := samplesObjects(t)
	kinds := map[string]bool{}
	for _, e := range examples {
		u := &unstructured.Unstructured{Object: e}
		kinds[u.GetKind()] = true
		if s := samples[u.GetKind()+"/"+u.GetName()]; !reflect.DeepEqual(s, e) {
			t.Errorf("example %s/%s is not config/samples' (%v)", u.GetKind(), u.GetName(), s != nil)
		}
	}
	if !kinds["LoadBalancer"] || !kinds["LoadBalancerClass"] {
		t.Errorf("examples of %v, want both kinds", kinds)
	}
	var images []struct{ Name, Image string }
	mustParse(t, a, "artifacthub.io/images", &images)
	for _, i := range images {
		if want := "ghcr.io/hakeeper/" + i.Name + ":" + chart.AppVersion; i.Image != want {
			t.Errorf("artifacthub.io/images: %s, the chart's default is %s", i.Image, want)
		}
	}
}

func mustParse(t *testing.T, annotations map[string]string, key string, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict([]byte(annotations[key]), into); err != nil || annotations[key] == "" {
		t.Errorf("%s does not parse: %v\n%s", key, err, annotations[key])
	}
}

// samplesObjects are config/samples' objects by kind/name.
func samplesObjects(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	files, _ := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "samples", "*.yaml"))
	for _, f := range files {
		for _, u := range decode(t, readFile(t, f)) {
			out[u.GetKind()+"/"+u.GetName()] = u.Object
		}
	}
	return out
}

// TestReadmeValuesTable: the chart's README has a row for every value
// (hack/chart-docs.sh writes it from values.yaml; hack/verify-generated.sh
// fails on drift): a value without a `# --` comment has none.
func TestReadmeValuesTable(t *testing.T) {
	var values map[string]any
	if err := yaml.Unmarshal([]byte(readFile(t, filepath.Join(chartDir(), "values.yaml"))), &values); err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, m := range regexp.MustCompile("(?m)^\\| ([^ |]+) \\|").FindAllStringSubmatch(readFile(t, filepath.Join(chartDir(), "README.md")), -1) {
		rows = append(rows, m[1])
	}
	for _, leaf := range leaves("", values) {
		documented := slices.ContainsFunc(rows, func(r string) bool { return leaf == r || strings.HasPrefix(leaf, r+".") })
		if !documented {
			t.Errorf("README.md has no row for %s: give it a `# --` comment in values.yaml and run make chart-docs", leaf)
		}
	}
}

// TestTestHook: `helm test` runs a Pod of the data-plane image, as the
// only test hook (Helm reads every test hook's logs as a Pod's), without
// an API token, reaching the manager's probes through a Service that
// selects the manager's pods; its script passes when /readyz answers 200
// and fails when it never does (run here with the host's bash against a
// stand-in; the lab's TestHelmLifecycle runs `helm test`).
// tests.enabled=false leaves both out.
func TestTestHook(t *testing.T) {
	eachHelm(t, func(t *testing.T, h helmCLI) {
		objs := render(t, h)
		pod := find(objs, "Pod", "hakeeper-test-manager-ready")
		svc := find(objs, "Service", "hakeeper-manager-probes")
		if pod == nil || svc == nil {
			t.Fatalf("test Pod %v, Service %v", pod != nil, svc != nil)
		}
		for _, u := range objs {
			if hook := u.GetAnnotations()["helm.sh/hook"]; (hook == "test") != (u == pod) {
				t.Errorf("%s: hook %q; the test Pod alone is a test hook", key(u), hook)
			}
		}
		if !selects(matchLabels(svc, "spec", "selector"), matchLabels(find(objs, "Deployment", "hakeeper-controller-manager"), "spec", "template", "metadata", "labels")) {
			t.Error("the test Service does not select the manager's pods")
		}
		if auto, _, _ := unstructured.NestedBool(pod.Object, "spec", "automountServiceAccountToken"); auto {
			t.Error("the test Pod gets an API token")
		}
		containers, _, _ := unstructured.NestedSlice(pod.Object, "spec", "containers")
		c := containers[0].(map[string]any)
		if c["image"] != managerFlags(t, objs)["dataplane-image"] {
			t.Errorf("the test Pod runs %v, not the data-plane image", c["image"])
		}
		args, _, _ := unstructured.NestedStringSlice(c, "args")
		command, _, _ := unstructured.NestedStringSlice(c, "command")
		if !slices.Equal(command, []string{"/bin/bash", "-c"}) || len(args) != 1 {
			t.Fatalf("command %v args %d", command, len(args))
		}
		if off := render(t, h, "--set", "tests.enabled=false"); find(off, "Pod", "hakeeper-test-manager-ready") != nil || find(off, "Service", "hakeeper-manager-probes") != nil {
			t.Error("tests.enabled=false renders the test Pod or its Service")
		}

		for _, tc := range []struct {
			status int
			pass   bool
		}{{http.StatusOK, true}, {http.StatusInternalServerError, false}} {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/readyz" {
					http.NotFound(w, r)
					return
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, "[+]readyz ok\nhealthz check passed\n")
			}))
			u, _ := url.Parse(srv.URL)
			cmd := exec.Command("bash", "-c", args[0])
			cmd.Env = append(os.Environ(), "MANAGER_HOST="+u.Hostname(), "MANAGER_PORT="+u.Port(), "ATTEMPTS=2")
			out, err := cmd.CombinedOutput()
			srv.Close()
			if (err == nil) != tc.pass {
				t.Errorf("/readyz answering %d: the test %s (%v):\n%s", tc.status, map[bool]string{true: "passes", false: "fails"}[err == nil], err, out)
			}
		}
	})
}
