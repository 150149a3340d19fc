// Package docs checks docs/api.md, the hand-written resource reference,
// against the API: the generated CRDs in config/crd/bases (fields, types,
// enums, bounds, required), the default constants of api/v1alpha1 (read by
// importing the package) and its condition types and reasons (found with
// go/parser, since constants cannot be listed by reflection). It needs no
// cluster. checker_test.go says how the reference is read.
package docs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
)

func repoRoot(t testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot find the test's source file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

const (
	lb    = "LoadBalancer"
	class = "LoadBalancerClass"
)

// apiDefaults maps every Default* constant of api/v1alpha1 to the fields it
// is the default of. TestDefaultsTableComplete keeps it complete.
var apiDefaults = []apiDefault{
	{"DefaultVRRPVersion", v1alpha1.DefaultVRRPVersion, []target{{lb, "spec.vrrp.version"}}},
	{"DefaultAdvertIntervalMilliseconds", v1alpha1.DefaultAdvertIntervalMilliseconds, []target{
		{lb, "spec.vrrp.advertIntervalMilliseconds"}, {class, "spec.vrrp.advertIntervalMilliseconds"}}},
	{"DefaultPreemptDelaySeconds", v1alpha1.DefaultPreemptDelaySeconds, []target{{lb, "spec.vrrp.preemptDelaySeconds"}}},
	{"DefaultDerivedPriority", v1alpha1.DefaultDerivedPriority, []target{{lb, "spec.vrrp.priorities"}}},

	{"DefaultCheckIntervalMilliseconds", v1alpha1.DefaultCheckIntervalMilliseconds, []target{{lb, "spec.backends.healthCheck.intervalMilliseconds"}}},
	{"DefaultCheckTimeoutMilliseconds", v1alpha1.DefaultCheckTimeoutMilliseconds, []target{{lb, "spec.backends.healthCheck.timeoutMilliseconds"}}},
	{"DefaultCheckRise", v1alpha1.DefaultCheckRise, []target{{lb, "spec.backends.healthCheck.rise"}}},
	{"DefaultCheckFall", v1alpha1.DefaultCheckFall, []target{{lb, "spec.backends.healthCheck.fall"}}},
	{"DefaultCheckPath", v1alpha1.DefaultCheckPath, []target{{lb, "spec.backends.healthCheck.path"}}},

	{"DefaultServerWeight", v1alpha1.DefaultServerWeight, []target{
		{lb, "spec.backends.servers.weight"}, {lb, "spec.backends.serviceRef.weight"}}},
	{"DefaultServerSlots", v1alpha1.DefaultServerSlots, []target{{lb, "spec.backends.serviceRef.serverSlots"}}},

	{"DefaultMaxConnections", v1alpha1.DefaultMaxConnections, []target{{lb, "spec.haproxy.maxConnections"}}},
	{"DefaultConnectMilliseconds", v1alpha1.DefaultConnectMilliseconds, []target{{lb, "spec.haproxy.timeouts.connectMilliseconds"}}},
	{"DefaultClientSeconds", v1alpha1.DefaultClientSeconds, []target{{lb, "spec.haproxy.timeouts.clientSeconds"}}},
	{"DefaultServerSeconds", v1alpha1.DefaultServerSeconds, []target{{lb, "spec.haproxy.timeouts.serverSeconds"}}},
	{"DefaultHTTPRequestSeconds", v1alpha1.DefaultHTTPRequestSeconds, []target{{lb, "spec.haproxy.timeouts.httpRequestSeconds"}}},
	{"DefaultTunnelSeconds", v1alpha1.DefaultTunnelSeconds, []target{{lb, "spec.haproxy.timeouts.tunnelSeconds"}}},
	{"DefaultHardStopAfterSeconds", v1alpha1.DefaultHardStopAfterSeconds, []target{{lb, "spec.haproxy.timeouts.hardStopAfterSeconds"}}},

	{"DefaultMaxServersPerBackend", v1alpha1.DefaultMaxServersPerBackend, []target{{class, "spec.limits.maxServersPerBackend"}}},
	{"DefaultMaxLoadBalancersPerNamespace", v1alpha1.DefaultMaxLoadBalancersPerNamespace, []target{{class, "spec.limits.maxLoadBalancersPerNamespace"}}},
	{"DefaultMaxVirtualIPsPerNamespace", v1alpha1.DefaultMaxVirtualIPsPerNamespace, []target{{class, "spec.limits.maxVirtualIPsPerNamespace"}}},
	{"DefaultMaxServers", v1alpha1.DefaultMaxServers, []target{{class, "spec.limits.maxServers"}}},
	{"DefaultMaxConnectionsLimit", v1alpha1.DefaultMaxConnectionsLimit, []target{{class, "spec.limits.maxConnections"}}},
	{"DefaultMaxTimeoutSeconds", v1alpha1.DefaultMaxTimeoutSeconds, []target{{class, "spec.limits.maxTimeoutSeconds"}}},
	{"DefaultMinAdvertIntervalMilliseconds", v1alpha1.DefaultMinAdvertIntervalMilliseconds, []target{{class, "spec.limits.minAdvertIntervalMilliseconds"}}},
	{"DefaultMaxServerSlots", v1alpha1.DefaultMaxServerSlots, []target{{class, "spec.limits.maxServerSlots"}}},
	{"DefaultMinHealthCheckIntervalMilliseconds", v1alpha1.DefaultMinHealthCheckIntervalMilliseconds, []target{
		{class, "spec.limits.minHealthCheckIntervalMilliseconds"}}},
}

// apiConst is a package-level constant of api/v1alpha1 as declared.
type apiConst struct {
	name   string
	value  string // the string literal's value; "" when not a string literal
	isLit  bool
	source string // file:line
}

// apiConstants parses api/v1alpha1's source for its package-level constants.
func apiConstants(t testing.TB) []apiConst {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "api", "v1alpha1")
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s: %v", dir, err)
	}
	fset := token.NewFileSet()
	var out []apiConst
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		if f.Name.Name != "v1alpha1" {
			continue
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					c := apiConst{name: n.Name, source: fset.Position(n.Pos()).String()}
					if i < len(vs.Values) {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							if v, err := strconv.Unquote(lit.Value); err == nil {
								c.value, c.isLit = v, true
							}
						}
					}
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// conditionsAndReasons are the LoadBalancer condition types and reasons
// declared in api/v1alpha1: constants named *Condition and *Reason.
func conditionsAndReasons(t testing.TB) (conditions, reasons map[string]string) {
	conditions, reasons = map[string]string{}, map[string]string{}
	for _, c := range apiConstants(t) {
		var into map[string]string
		switch {
		case strings.HasSuffix(c.name, "Condition"):
			into = conditions
		case strings.HasSuffix(c.name, "Reason"):
			into = reasons
		default:
			continue
		}
		if !c.isLit {
			t.Fatalf("%s: %s is not a string literal; the test reads the values from source", c.source, c.name)
		}
		into[c.name] = c.value
	}
	if len(conditions) == 0 || len(reasons) == 0 {
		t.Fatal("found no *Condition or *Reason constants in api/v1alpha1")
	}
	return conditions, reasons
}

// realInputs are the repository's reference, CRDs and constants.
func realInputs(t testing.TB) inputs {
	t.Helper()
	root := repoRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	kinds, err := loadCRDs(filepath.Join(root, "config", "crd", "bases"), v1alpha1.GroupVersion.Version)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{lb, class} {
		if kinds[k] == nil {
			t.Fatalf("no %s CRD in config/crd/bases", k)
		}
	}
	conditions, reasons := conditionsAndReasons(t)
	return inputs{
		docName:      "docs/api.md",
		doc:          string(doc),
		groupVersion: v1alpha1.GroupVersion.String(),
		kinds:        kinds,
		defaults:     apiDefaults,
		conditions:   conditions,
		reasons:      reasons,
	}
}

// TestAPIReference fails on every disagreement between docs/api.md and the
// API, each with the line and the field.
func TestAPIReference(t *testing.T) {
	for _, p := range check(realInputs(t)) {
		t.Error(p)
	}
}

// TestDefaultsTableComplete keeps apiDefaults in step with the constants:
// a new Default* constant must be mapped to the fields it defaults.
func TestDefaultsTableComplete(t *testing.T) {
	declared := map[string]string{}
	for _, c := range apiConstants(t) {
		if strings.HasPrefix(c.name, "Default") {
			declared[c.name] = c.source
		}
	}
	mapped := map[string]bool{}
	for _, d := range apiDefaults {
		if mapped[d.name] {
			t.Errorf("apiDefaults maps %s twice", d.name)
		}
		mapped[d.name] = true
		if _, ok := declared[d.name]; !ok {
			t.Errorf("apiDefaults maps %s, which api/v1alpha1 does not declare", d.name)
		}
		if len(d.targets) == 0 {
			t.Errorf("apiDefaults maps %s to no field", d.name)
		}
	}
	var names []string
	for n := range declared {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !mapped[n] {
			t.Errorf("%s: %s is not in apiDefaults (test/docs/api_test.go): add the fields it is the default of", declared[n], n)
		}
	}
}
