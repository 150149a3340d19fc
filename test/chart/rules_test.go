package chart

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	// The manager's metrics, registered in controller-runtime's registry.
	_ "github.com/hakeeper/hakeeper/controllers"
	"github.com/hakeeper/hakeeper/internal/testing/testenv"
)

const prometheusRuleAPI = "monitoring.coreos.com/v1/PrometheusRule"

// findPromtool is $PROMTOOL or the newest bin/promtool-*; missing, the
// test skips, or fails under HAKEEPER_REQUIRE_REAL_TOOLS=1 (make test
// builds it).
func findPromtool(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("PROMTOOL")
	if bin == "" {
		matches, _ := filepath.Glob(filepath.Join(testenv.RepoRoot(), "bin", "promtool-v*"))
		slices.Sort(matches)
		if len(matches) > 0 {
			bin = matches[len(matches)-1]
		}
	}
	if bin == "" {
		if os.Getenv("HAKEEPER_REQUIRE_REAL_TOOLS") == "1" {
			t.Fatal("no promtool (set $PROMTOOL; make test builds it)")
		}
		t.Skip("no promtool (set $PROMTOOL, or run make test)")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// ruleGroups renders the chart's PrometheusRule and returns its groups as
// a Prometheus rule file.
func ruleGroups(t *testing.T, h helmCLI, args ...string) []byte {
	t.Helper()
	objs := render(t, h, append([]string{"--set", "metrics.prometheusRule.enabled=true", "--api-versions", prometheusRuleAPI}, args...)...)
	rule := find(objs, "PrometheusRule", "hakeeper")
	if rule == nil {
		t.Fatal("no PrometheusRule hakeeper")
	}
	groups, _, _ := unstructured.NestedSlice(rule.Object, "spec", "groups")
	b, err := yaml.Marshal(map[string]any{"groups": groups})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPrometheusRule: metrics.prometheusRule renders the alerts
// docs/metrics.md recommends, only when asked for and where the cluster
// serves the kind, with the extra labels; `promtool check rules` accepts
// them and `promtool test rules` fires each as testdata/alerts.test.yaml
// expects, on series shaped like the manager's and the agents' (a wrong
// expectation fails it); every metric the rules and the test series name
// is one the code exports, with the labels it exports.
func TestPrometheusRule(t *testing.T) {
	promtool := findPromtool(t)
	eachHelm(t, func(t *testing.T, h helmCLI) {
		if got := ofKind(render(t, h, "--api-versions", prometheusRuleAPI), "PrometheusRule"); len(got) > 0 {
			t.Errorf("default values render PrometheusRules %v", got)
		}
		_, err := h.template(chartDir(), "--set", "metrics.prometheusRule.enabled=true")
		if err == nil || !strings.Contains(err.Error(), "metrics.prometheusRule.enabled") || !strings.Contains(err.Error(), prometheusRuleAPI) {
			t.Errorf("no PrometheusRule API: got %v, want an error naming the value and the API", err)
		}
		objs := render(t, h, "--set", "metrics.prometheusRule.enabled=true", "--set", "metrics.prometheusRule.labels.release=prom", "--api-versions", prometheusRuleAPI)
		if r := find(objs, "PrometheusRule", "hakeeper"); r == nil || r.GetNamespace() != releaseNamespace || r.GetLabels()["release"] != "prom" {
			t.Errorf("PrometheusRule: %v", r)
		}

		rules := ruleGroups(t, h)
		var doc struct {
			Groups []struct {
				Rules []struct{ Alert, Expr string }
			}
		}
		if err := yaml.Unmarshal(rules, &doc); err != nil {
			t.Fatal(err)
		}
		var alerts []string
		for _, g := range doc.Groups {
			for _, r := range g.Rules {
				alerts = append(alerts, r.Alert)
				checkMetricNames(t, "rule "+r.Alert, r.Expr, nil)
			}
		}
		docAlerts := regexp.MustCompile(`- alert: (\w+)`).FindAllStringSubmatch(readFile(t, filepath.Join(testenv.RepoRoot(), "docs", "metrics.md")), -1)
		for _, a := range docAlerts {
			if !slices.Contains(alerts, a[1]) {
				t.Errorf("docs/metrics.md recommends %s, the PrometheusRule lacks it (has %v)", a[1], alerts)
			}
		}

		dir := t.TempDir()
		test := readFile(t, filepath.Join("testdata", "alerts.test.yaml"))
		for name, content := range map[string]string{"rules.yaml": string(rules), "alerts.test.yaml": test,
			"wrong.test.yaml": strings.Replace(test, "summary: 2 nodes hold", "summary: 3 nodes hold", 1)} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		run := func(args ...string) (string, error) {
			cmd := exec.Command(promtool, args...)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		if out, err := run("check", "rules", "rules.yaml"); err != nil {
			t.Errorf("promtool check rules: %v\n%s", err, out)
		}
		if out, err := run("test", "rules", "alerts.test.yaml"); err != nil {
			t.Errorf("promtool test rules: %v\n%s", err, out)
		}
		if out, err := run("test", "rules", "wrong.test.yaml"); err == nil {
			t.Errorf("promtool test rules passed a wrong expectation:\n%s", out)
		}
		for _, series := range regexp.MustCompile(`series: '([^']+)'`).FindAllStringSubmatch(test, -1) {
			checkMetricNames(t, "test series", series[1], seriesLabels(series[1]))
		}
	})
}

var metricNameRe = regexp.MustCompile(`\bhakeeper_[a-z_]+\b`)

// checkMetricNames checks that every hakeeper_ metric expr names is one
// the code exports; with labels (a series' label names), that it exports
// exactly those, besides the scrape's job.
func checkMetricNames(t *testing.T, what, expr string, labels []string) {
	t.Helper()
	exported := exportedMetrics(t)
	for _, name := range metricNameRe.FindAllString(expr, -1) {
		want, ok := exported[name]
		if !ok {
			t.Errorf("%s names %s, which hakeeper does not export", what, name)
			continue
		}
		if labels != nil {
			got := slices.DeleteFunc(slices.Clone(labels), func(l string) bool { return l == "job" })
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s: %s has labels %v, hakeeper exports %v", what, name, got, want)
			}
		}
	}
}

func seriesLabels(series string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`([a-z_]+)="`).FindAllStringSubmatch(series, -1) {
		out = append(out, m[1])
	}
	return out
}

// exportedMetrics are the hakeeper_ metrics the manager (controllers) and
// the agent (internal/agent) define, with their label names (variable and
// constant), read from their sources; the manager's are also checked to be
// in the registry it serves.
func exportedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, f := range []string{"controllers/metrics.go", "internal/agent/metrics.go"} {
		for name, labels := range metricsInSource(t, filepath.Join(testenv.RepoRoot(), f)) {
			out[name] = labels
		}
	}
	for name := range out {
		if !strings.HasPrefix(name, "hakeeper_loadbalancer_") {
			continue
		}
		// Registering a collector of the same name and other help fails
		// only if the manager registered that name.
		err := ctrlmetrics.Registry.Register(prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "probe"}))
		var already prometheus.AlreadyRegisteredError
		if err == nil {
			ctrlmetrics.Registry.Unregister(prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "probe"}))
			t.Errorf("%s is defined in controllers/metrics.go but not in the manager's registry", name)
		} else if errors.As(err, &already) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if len(out) < 8 {
		t.Fatalf("found only %v in the sources: has the metrics code moved?", out)
	}
	return out
}

// metricsInSource finds prometheus.New*(opts, []string{labels}) calls: the
// name is the Opts' Name (prefixed hakeeper_agent_ when built by the
// agent's opts helper), the labels the vector's plus the file's constant
// prometheus.Labels keys.
func metricsInSource(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var constLabels []string
	ast.Inspect(f, func(n ast.Node) bool {
		// labels := prometheus.Labels{...}: the agent's constant labels.
		if as, ok := n.(*ast.AssignStmt); ok && len(as.Lhs) == 1 && len(as.Rhs) == 1 {
			id, _ := as.Lhs[0].(*ast.Ident)
			cl, _ := as.Rhs[0].(*ast.CompositeLit)
			if id != nil && id.Name == "labels" && cl != nil {
				for _, e := range cl.Elts {
					if kv, ok := e.(*ast.KeyValueExpr); ok {
						constLabels = append(constLabels, unquote(t, kv.Key))
					}
				}
			}
		}
		return true
	})
	out := map[string][]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || !strings.HasPrefix(sel.Sel.Name, "New") || len(call.Args) == 0 {
			return true
		}
		name := ""
		ast.Inspect(call.Args[0], func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.KeyValueExpr:
				if id, ok := n.Key.(*ast.Ident); ok && id.Name == "Name" {
					name = unquote(t, n.Value)
				}
			case *ast.CallExpr:
				if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "opts" && len(n.Args) > 0 {
					name = "hakeeper_agent_" + unquote(t, n.Args[0])
				}
			}
			return name == ""
		})
		if name == "" {
			return true
		}
		labels := slices.Clone(constLabels)
		if len(call.Args) > 1 {
			if cl, ok := call.Args[1].(*ast.CompositeLit); ok {
				for _, e := range cl.Elts {
					labels = append(labels, unquote(t, e))
				}
			}
		}
		slices.Sort(labels)
		out[name] = labels
		return true
	})
	return out
}

func unquote(t *testing.T, e ast.Expr) string {
	t.Helper()
	lit, ok := e.(*ast.BasicLit)
	if !ok {
		return ""
	}
	s, err := strconv.Unquote(lit.Value)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
