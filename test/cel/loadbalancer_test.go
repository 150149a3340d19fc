// Package cel checks the LoadBalancer CRD's schema and CEL rules on a real
// kube-apiserver, and that internal/validation (what `hakeeper render` and
// the agent use) accepts and refuses exactly the same documents.
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
	"github.com/hakeeper/hakeeper/internal/testenv"
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
  virtualIPs: ["198.18.0.100/24"]
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
		{name: "bad IP", from: `"198.18.0.100/24"`, to: `"198.18.0.300/24"`, wantAPI: "spec.virtualIPs[0]"},
		{name: "VIP without prefix", from: `"198.18.0.100/24"`, to: `"198.18.0.100"`, wantAPI: "spec.virtualIPs[0]"},
		{name: "duplicate VIPs", from: `["198.18.0.100/24"]`, to: `["198.18.0.100/24", "198.18.0.100/24"]`, wantAPI: "virtual IPs must be unique"},
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
		{name: "TCP without default backend and a sticky cookie elsewhere", from: "protocol: TCP, defaultBackend: pg}", to: "protocol: TCP}",
			wantAPI: "spec.listeners[1].defaultBackend: Invalid value"},
		{name: "backend without servers", from: "{name: api, serviceRef: {name: api, port: http}}", to: "{name: api}", wantAPI: "a backend needs servers or a serviceRef"},
		{name: "sticky cookie on a TCP backend", from: "{name: pg, servers", to: "{name: pg, stickyCookie: {name: X}, servers", wantAPI: "cannot have a stickyCookie"},
		{name: "header balance without header", from: "stickyCookie: {name: SRV}", to: "stickyCookie: {name: SRV}\n    balance: Header", wantAPI: "hashHeader is required"},
		{name: "unknown balance", from: "stickyCookie: {name: SRV}", to: "stickyCookie: {name: SRV}\n    balance: Random", wantAPI: "spec.backends[0].balance"},
		{name: "check timeout above interval", from: "timeoutMilliseconds: 500", to: "timeoutMilliseconds: 1500", wantAPI: "timeoutMilliseconds must not exceed"},
		{name: "TCP check with a path", from: "type: HTTP, path", to: "type: TCP, path", wantAPI: "need type HTTP"},
		{name: "weight above 256", from: "port: 8080}", to: "port: 8080, weight: 1000}", wantAPI: "spec.backends[0].servers[0].weight"},
		{name: "interface too long", from: "virtualIPs:", to: "interface: averyveryverylongname\n  virtualIPs:", wantAPI: "spec.interface"},
		{name: "IPv6 VIP", from: `["198.18.0.100/24"]`, to: `["198.18.0.100/24", "2001:db8::100/64"]`},
		{name: "service port by number", from: "port: http}}", to: "port: 8080}}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := base
			if tt.from != "" {
				if !strings.Contains(doc, tt.from) {
					t.Fatalf("base has no %q", tt.from)
				}
				doc = strings.Replace(doc, tt.from, tt.to, 1)
			}
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

// TestSamplesAccepted: every sample in config/samples is valid for the API
// server and for internal/validation.
func TestSamplesAccepted(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "samples", "*.yaml"))
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := createDryRun(t, string(data)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if err := validateInGo(t, string(data)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func createDryRun(t *testing.T, doc string) error {
	t.Helper()
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
		t.Fatal(err)
	}
	ensureNamespace(t, obj.GetNamespace())
	return env.Client.Create(context.Background(), obj, client.DryRunAll)
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
	if err := yaml.Unmarshal([]byte(doc), &lb); err != nil {
		t.Fatal(err)
	}
	if errs := validation.Spec(&lb.Spec); len(errs) > 0 {
		return errs.ToAggregate()
	}
	return nil
}
