// Package cel checks the LoadBalancer CRD's schema and CEL rules on a real
// kube-apiserver, and that internal/validation (what `hakeeper render` and
// the operator use) accepts and refuses exactly the same documents.
package cel

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/testing/testenv"
	"github.com/hakeeper/hakeeper/internal/validation"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start()
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

const base = `apiVersion: hakeeper.io/v1alpha1
kind: LoadBalancer
metadata: {name: cel, namespace: default}
spec:
  virtualIPs: ["198.18.0.100"]
  vrrp: {virtualRouterID: 7, advertIntervalMilliseconds: 100}
  listeners:
  - {name: http, port: 80, protocol: HTTP, defaultBackend: web, routes: [{pathPrefix: /api, backend: api}]}
  - {name: pg, port: 5432, protocol: TCP, defaultBackend: pg}
  backends:
  - name: web
    stickyCookie: {name: SRV}
    healthCheck: {type: HTTP, path: /healthz, intervalMilliseconds: 1000, timeoutMilliseconds: 500}
    servers: [{name: vm1, address: 198.18.0.21, port: 8080}]
  - {name: api, serviceRef: {name: api, port: http}}
  - {name: pg, servers: [{name: db, address: db.example.internal, port: 5432}]}
`

func TestSchemaAndCEL(t *testing.T) {
	tests := []struct {
		name     string
		from, to string
		// wantAPI must appear in the API server's message; empty: accepted.
		wantAPI string
	}{
		{name: "valid"},
		{name: "bad IP", from: `"198.18.0.100"`, to: `"198.18.0.300"`, wantAPI: "spec.virtualIPs[0]"},
		{name: "source ranges", from: "defaultBackend: pg}", to: "defaultBackend: pg, allowedSourceRanges: [203.0.113.0/24, \"2001:db8::/32\"]}"},
		{name: "source range not a network", from: "defaultBackend: pg}", to: "defaultBackend: pg, allowedSourceRanges: [203.0.113.0]}",
			wantAPI: "spec.listeners[1].allowedSourceRanges[0]"},
		{name: "VIP with a prefix", from: `"198.18.0.100"`, to: `"198.18.0.100/24"`, wantAPI: "spec.virtualIPs[0]"},
		{name: "VIP every IPv4 address", from: `"198.18.0.100"`, to: `"0.0.0.0/0"`, wantAPI: "spec.virtualIPs[0]"},
		{name: "VIP every IPv6 address", from: `"198.18.0.100"`, to: `"::/0"`, wantAPI: "spec.virtualIPs[0]"},
		{name: "VIP unspecified", from: `"198.18.0.100"`, to: `"0.0.0.0"`, wantAPI: "spec.virtualIPs[0]"},
		{name: "VIP loopback", from: `"198.18.0.100"`, to: `"127.0.0.1"`, wantAPI: "spec.virtualIPs[0]"},
		{name: "VIP cloud metadata", from: `"198.18.0.100"`, to: `"169.254.169.254"`, wantAPI: "spec.virtualIPs[0]"},
		{name: "VIP VRRP multicast", from: `"198.18.0.100"`, to: `"224.0.0.18"`, wantAPI: "spec.virtualIPs[0]"},
		{name: "VIP broadcast", from: `"198.18.0.100"`, to: `"255.255.255.255"`, wantAPI: "spec.virtualIPs[0]"},
		{name: "VIP not canonical", from: `"198.18.0.100"`, to: `"2001:DB8::100"`, wantAPI: "spec.virtualIPs[0]"},
		{name: "duplicate VIPs", from: `["198.18.0.100"]`, to: `["198.18.0.100", "198.18.0.100"]`, wantAPI: "virtual IPs must be unique"},
		{name: "IPv6 VIP", from: `["198.18.0.100"]`, to: `["198.18.0.100", "2001:db8::100"]`},
		{name: "no VIPs: allocated", from: `  virtualIPs: ["198.18.0.100"]` + "\n", to: ""},
		{name: "families to allocate", from: `  virtualIPs: ["198.18.0.100"]`, to: `  ipFamilies: [IPv6, IPv4]`},
		{name: "families with VIPs", from: `  virtualIPs:`, to: `  ipFamilies: [IPv4]` + "\n  virtualIPs:", wantAPI: "spec.ipFamilies"},
		{name: "class name", from: `  virtualIPs:`, to: "  className: edge\n  virtualIPs:"},
		{name: "class name not a name", from: `  virtualIPs:`, to: "  className: Edge_1\n  virtualIPs:", wantAPI: "spec.className"},
		{name: "server on loopback", from: "address: 198.18.0.21", to: "address: 127.0.0.1", wantAPI: "spec.backends[0].servers[0].address"},
		{name: "server localhost", from: "address: 198.18.0.21", to: "address: localhost", wantAPI: "spec.backends[0].servers[0].address"},
		{name: "server below localhost", from: "address: 198.18.0.21", to: "address: a.localhost", wantAPI: "spec.backends[0].servers[0].address"},
		{name: "server cloud metadata", from: "address: 198.18.0.21", to: "address: 169.254.169.254", wantAPI: "spec.backends[0].servers[0].address"},
		{name: "server unspecified", from: "address: 198.18.0.21", to: "address: 0.0.0.0", wantAPI: "spec.backends[0].servers[0].address"},
		{name: "server IPv6 loopback", from: "address: 198.18.0.21", to: `address: "::1"`, wantAPI: "spec.backends[0].servers[0].address"},
		{name: "router ID 0", from: "virtualRouterID: 7", to: "virtualRouterID: 0", wantAPI: "spec.vrrp.virtualRouterID"},
		{name: "router ID 256", from: "virtualRouterID: 7", to: "virtualRouterID: 256", wantAPI: "spec.vrrp.virtualRouterID"},
		{name: "priority 255", from: "virtualRouterID: 7", to: "virtualRouterID: 7, priorities: [{node: a, priority: 255}]", wantAPI: "spec.vrrp.priorities[0].priority"},
		{name: "advert not centiseconds", from: "advertIntervalMilliseconds: 100", to: "advertIntervalMilliseconds: 105", wantAPI: "spec.vrrp.advertIntervalMilliseconds"},
		{name: "advert too fast", from: "advertIntervalMilliseconds: 100", to: "advertIntervalMilliseconds: 0", wantAPI: "spec.vrrp.advertIntervalMilliseconds"},
		{name: "VRRPv2 sub-second", from: "advertIntervalMilliseconds: 100", to: "advertIntervalMilliseconds: 500, version: 2", wantAPI: "spec.vrrp.advertIntervalMilliseconds: Invalid value"},
		{name: "VRRPv2 whole seconds", from: "advertIntervalMilliseconds: 100", to: "advertIntervalMilliseconds: 2000, version: 2"},
		{name: "preempt delay without preemption", from: "virtualRouterID: 7", to: "virtualRouterID: 7, preemption: Disabled, preemptDelaySeconds: 5", wantAPI: "spec.vrrp.preemptDelaySeconds"},
		{name: "route to a missing backend", from: "backend: api}", to: "backend: nope}", wantAPI: "every route's backend must name a backend"},
		{name: "default backend missing", from: "defaultBackend: pg}", to: "defaultBackend: gone}", wantAPI: "defaultBackend must name a backend"},
		{name: "server name with a newline", from: "name: vm1", to: `name: "vm1\n    option httpclose"`, wantAPI: "spec.backends[0].servers[0].name"},
		{name: "server address with a space", from: "address: 198.18.0.21", to: `address: "198.18.0.21 backup"`, wantAPI: "spec.backends[0].servers[0].address"},
		{name: "path with a hash", from: "pathPrefix: /api", to: `pathPrefix: "/api#x"`, wantAPI: "spec.listeners[0].routes[0].pathPrefix"},
		{name: "duplicate port", from: "port: 5432, protocol", to: "port: 80, protocol", wantAPI: "listener ports must be unique"},
		{name: "duplicate listener name", from: "name: pg, port", to: "name: http, port", wantAPI: "Duplicate value"},
		{name: "routes on TCP", from: "protocol: TCP, defaultBackend: pg}", to: "protocol: TCP, defaultBackend: pg, routes: [{pathPrefix: /, backend: pg}]}", wantAPI: "routes need protocol HTTP"},
		{name: "TCP without default backend", from: "protocol: TCP, defaultBackend: pg}", to: "protocol: TCP}", wantAPI: "a TCP listener needs a defaultBackend"},
		{name: "backend without servers", from: "{name: api, serviceRef: {name: api, port: http}}", to: "{name: api}", wantAPI: "a backend needs servers or a serviceRef"},
		{name: "sticky cookie on a TCP backend", from: "{name: pg, servers", to: "{name: pg, stickyCookie: {name: X}, servers", wantAPI: "cannot have a stickyCookie"},
		{name: "header balance without header", from: "stickyCookie: {name: SRV}", to: "stickyCookie: {name: SRV}\n    balance: Header", wantAPI: "hashHeader is required"},
		{name: "unknown balance", from: "stickyCookie: {name: SRV}", to: "stickyCookie: {name: SRV}\n    balance: Random", wantAPI: "spec.backends[0].balance"},
		{name: "check timeout above interval", from: "timeoutMilliseconds: 500", to: "timeoutMilliseconds: 1500", wantAPI: "timeoutMilliseconds must not exceed"},
		{name: "TCP check with a path", from: "type: HTTP, path", to: "type: TCP, path", wantAPI: "need type HTTP"},
		{name: "weight above 256", from: "port: 8080}", to: "port: 8080, weight: 1000}", wantAPI: "spec.backends[0].servers[0].weight"},
		{name: "fields that are the class's", from: "  virtualIPs:", to: "  interface: eth0\n  virtualIPs:", wantAPI: `unknown field "spec.interface"`},
		{name: "service port by number", from: "port: http}}", to: "port: 8080}}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := mutated(t, base, tt.from, tt.to)
			apiErr := createDryRun(t, doc)
			goErrs := validateInGo(t, doc)
			switch {
			case tt.wantAPI == "" && apiErr != nil:
				t.Fatalf("API server rejected a valid resource: %v", apiErr)
			case tt.wantAPI != "" && apiErr == nil:
				t.Fatalf("API server accepted it; want an error with %q", tt.wantAPI)
			case apiErr != nil && strings.Contains(apiErr.Error(), "evaluating rule"):
				t.Fatalf("a CEL rule failed to evaluate: %v", apiErr)
			case tt.wantAPI != "" && !strings.Contains(apiErr.Error(), tt.wantAPI):
				t.Fatalf("API error %q does not contain %q", apiErr, tt.wantAPI)
			}
			if (apiErr == nil) != (goErrs == nil) {
				t.Fatalf("internal/validation disagrees with the API server: API %v, Go %v", apiErr, goErrs)
			}
		})
	}
}

// TestSamplesAccepted: every sample in config/samples (LoadBalancers and
// the admin's LoadBalancerClasses) is valid for the API server, and every
// LoadBalancer also for internal/validation.
func TestSamplesAccepted(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "samples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(data), "\n---\n") {
			var meta struct{ Kind string }
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			kinds[meta.Kind]++
			if err := createDryRun(t, doc); err != nil {
				t.Errorf("%s: %v", f, err)
			}
			if meta.Kind != "LoadBalancer" {
				continue
			}
			if err := validateInGo(t, doc); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		}
	}
	// A glob that finds nothing must not pass.
	if kinds["LoadBalancer"] < 3 || kinds["LoadBalancerClass"] < 2 {
		t.Fatalf("found %v in config/samples, want at least 3 LoadBalancers and 2 LoadBalancerClasses", kinds)
	}
}

// mutated is base with from replaced by to once; a from that base lacks is
// a broken test, not a passing one.
func mutated(t *testing.T, base, from, to string) string {
	t.Helper()
	if from == "" {
		return base
	}
	if !strings.Contains(base, from) {
		t.Fatalf("base has no %q", from)
	}
	return strings.Replace(base, from, to, 1)
}

func createDryRun(t *testing.T, doc string) error {
	t.Helper()
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
		t.Fatal(err)
	}
	if obj.GetNamespace() != "" {
		ensureNamespace(t, obj.GetNamespace())
	}
	return env.Client.Create(context.Background(), obj, client.DryRunAll, client.FieldValidation("Strict"))
}

func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName(name)
	if err := env.Client.Create(context.Background(), ns); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
}

func validateInGo(t *testing.T, doc string) error {
	t.Helper()
	var lb v1alpha1.LoadBalancer
	// Strict, as `hakeeper render` decodes: an unknown field is an error.
	if err := yaml.UnmarshalStrict([]byte(doc), &lb); err != nil {
		return err
	}
	if errs := validation.Spec(&lb.Spec); len(errs) > 0 {
		return errs.ToAggregate()
	}
	return nil
}
