package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(context.Background(), args, Streams{In: strings.NewReader(stdin), Out: &out, Err: &errOut})
	return code, out.String(), errOut.String()
}

func TestRenderSample(t *testing.T) {
	code, out, errOut := runCLI(t, "", "render", "-f", "../../config/samples/website.yaml",
		"--node", "edge-a=198.18.0.11", "--node", "edge-b=198.18.0.12@eth1", "--servers", "web=198.18.0.23:8080")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"#### haproxy.cfg, the same on every node",
		"server ep_1 198.18.0.23:8080",
		"#### keepalived.conf on node edge-a, priority 150",
		"#### keepalived.conf on node edge-b, priority 100",
		"198.18.0.100/24 dev eth1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestRenderWritesFiles(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := runCLI(t, "", "render", "-f", "../../config/samples/cloud-unicast.yaml", "--out", dir,
		"--class", "../../config/samples/classes.yaml", "--namespace-label", "hakeeper.io/tls-delegation=allowed",
		"--node", "zone-a-1=198.18.0.11", "--node", "zone-b-1=198.18.0.12", "--node", "zone-c-1=198.18.0.13")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, f := range []string{"haproxy.cfg", "zone-a-1/keepalived.conf", "zone-c-1/keepalived.conf"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}

// TestRenderRejects tries what a new user would get wrong; each error must
// name the field.
func TestRenderRejects(t *testing.T) {
	const good = `apiVersion: hakeeper.io/v1alpha1
kind: LoadBalancer
metadata: {name: web}
spec:
  virtualIPs: ["198.18.0.100"]
  vrrp: {virtualRouterID: 7}
  listeners: [{name: http, port: 80, protocol: HTTP, defaultBackend: web}]
  backends: [{name: web, servers: [{name: vm1, address: 198.18.0.21, port: 8080}]}]
`
	tests := []struct {
		name, from, to string
		args           []string
		wantErr        string
	}{
		{name: "valid", wantErr: ""},
		{name: "bad IP", from: "198.18.0.100\"", to: "198.18.0.999\"", wantErr: "spec.virtualIPs[0]"},
		{name: "router ID 0", from: "virtualRouterID: 7", to: "virtualRouterID: 0", wantErr: "spec.vrrp.virtualRouterID"},
		{name: "route to a missing backend", from: "defaultBackend: web}", to: "defaultBackend: web, routes: [{pathPrefix: /x, backend: nope}]}",
			wantErr: "spec.listeners[0].routes[0].backend: Not found: \"nope\""},
		{name: "server name with a newline", from: "name: vm1", to: `name: "vm1\n  option httpclose"`, wantErr: "spec.backends[0].servers[0].name"},
		{name: "misspelt field", from: "virtualIPs", to: "virtualIP", wantErr: `unknown field "spec.virtualIP"`},
		{name: "unicast needs addresses", from: "{virtualRouterID: 7}", to: "{virtualRouterID: 7, mode: Unicast}",
			args: []string{"--node", "a=not-an-ip"}, wantErr: `--node "a=not-an-ip": "not-an-ip" is not an IP address`},
		{name: "bad --servers", args: []string{"--node", "a=198.18.0.11", "--servers", "web=198.18.0.1"}, wantErr: "--servers web"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.Replace(good, tt.from, tt.to, 1)
			args := append([]string{"render", "-f", "-"}, tt.args...)
			if len(tt.args) == 0 {
				args = append(args, "--node", "a=198.18.0.11")
			}
			code, _, errOut := runCLI(t, doc, args...)
			if tt.wantErr == "" {
				if code != 0 {
					t.Fatalf("exit %d: %s", code, errOut)
				}
				return
			}
			if code == 0 || !strings.Contains(errOut, tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want an error containing %q", code, errOut, tt.wantErr)
			}
		})
	}
}

func TestUnknownCommand(t *testing.T) {
	if code, _, errOut := runCLI(t, "", "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// TestRenderReadsWhatUsersHave: several documents (other kinds skipped),
// a List as `kubectl get -o yaml` prints it, a live LoadBalancer whose
// addresses and router ID are only in its status; and errors that name
// the document, the object and the field path.
func TestRenderReadsWhatUsersHave(t *testing.T) {
	const lb = `apiVersion: hakeeper.io/v1alpha1
kind: LoadBalancer
metadata: {name: NAME, namespace: shop}
spec:
  virtualIPs: ["VIP"]
  vrrp: {virtualRouterID: 7}
  listeners: [{name: http, port: 80, protocol: HTTP, defaultBackend: web}]
  backends: [{name: web, servers: [{name: vm1, address: 198.18.0.21, port: 8080}]}]
`
	named := func(name, vip string) string {
		return strings.ReplaceAll(strings.ReplaceAll(lb, "NAME", name), "VIP", vip)
	}
	service := "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n"
	// Decided as applied in order: b, on a's node, gets its own router ID
	// (a pinned one a holds would be refused, as the operator refuses it).
	b := strings.Replace(named("b", "198.18.0.102"), "  vrrp: {virtualRouterID: 7}\n", "", 1)
	multi := named("a", "198.18.0.101") + "---\n# a comment only\n---\n" + service + "---\n" + b
	code, out, errOut := runCLI(t, multi, "render", "-f", "-", "--node", "n1=198.18.0.11")
	if !strings.Contains(out, "virtual_router_id 7") || !strings.Contains(out, "virtual_router_id 1") {
		t.Errorf("several documents: want router IDs 7 and 1:\n%s", out)
	}
	if code, _, errOut := runCLI(t, named("a", "198.18.0.101")+"---\n"+named("b", "198.18.0.102"), "render", "-f", "-", "--node", "n1=198.18.0.11"); code == 0 ||
		!strings.Contains(errOut, "virtual router ID 7 is held by LoadBalancer shop/a on shared nodes") {
		t.Errorf("two pins of one router ID on one node: exit %d, %s", code, errOut)
	}
	if code != 0 || !strings.Contains(out, "######## LoadBalancer shop/a") || !strings.Contains(out, "######## LoadBalancer shop/b") ||
		!strings.Contains(out, "198.18.0.101:80") || !strings.Contains(out, "198.18.0.102:80") {
		t.Errorf("several documents: exit %d, %s\n%s", code, errOut, out)
	}
	dir := t.TempDir()
	if code, _, errOut := runCLI(t, multi, "render", "-f", "-", "--node", "n1=198.18.0.11", "--out", dir); code != 0 {
		t.Errorf("several documents to --out: exit %d: %s", code, errOut)
	}
	for _, f := range []string{"shop.a/haproxy.cfg", "shop.b/n1/keepalived.conf"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}

	// As kubectl get hlb -o yaml prints a LoadBalancer the operator
	// allocated for: nothing in spec.virtualIPs or spec.vrrp.
	live := strings.Replace(strings.Replace(named("live", "x"), `  virtualIPs: ["x"]`+"\n", "", 1), "  vrrp: {virtualRouterID: 7}\n", "", 1) +
		"status: {virtualIPs: [198.18.0.105/24], virtualRouterID: 42}\n"
	list := "apiVersion: v1\nkind: List\nmetadata: {resourceVersion: \"\"}\nitems:\n- " + strings.ReplaceAll(strings.TrimSpace(live), "\n", "\n  ") + "\n"
	code, out, errOut = runCLI(t, list, "render", "-f", "-", "--node", "n1=198.18.0.11")
	if code != 0 || !strings.Contains(out, "bind 198.18.0.105:80") || !strings.Contains(out, "virtual_router_id 42") ||
		!strings.Contains(out, "198.18.0.105/24") {
		t.Errorf("a List of a live LoadBalancer: exit %d, %s\n%s", code, errOut, out)
	}

	for _, c := range []struct{ name, doc, want string }{
		{"a port as a word", service + "---\n" + strings.Replace(named("web", "198.18.0.101"), "port: 80", `port: "eighty"`, 1),
			`stdin: document 2 (LoadBalancer shop/web): spec.listeners[0].port: expected integer, got string`},
		{"servers as an object", strings.Replace(named("web", "198.18.0.101"), "servers: [{name: vm1, address: 198.18.0.21, port: 8080}]", "servers: {name: vm1}", 1),
			`stdin: document 1 (LoadBalancer shop/web): spec.backends[0].servers: expected array, got object`},
		{"a misspelt field", strings.Replace(named("web", "198.18.0.101"), "listeners:", "listener:", 1),
			`stdin: document 1 (LoadBalancer shop/web): unknown field "spec.listener"`},
		{"no LoadBalancer", service, "stdin holds no LoadBalancer"},
		{"another version", strings.Replace(named("web", "198.18.0.101"), "hakeeper.io/v1alpha1", "hakeeper.io/v2", 1),
			`stdin: document 1 (LoadBalancer shop/web): want apiVersion hakeeper.io/v1alpha1, got "hakeeper.io/v2"`},
	} {
		code, _, errOut := runCLI(t, c.doc, "render", "-f", "-", "--node", "n1=198.18.0.11")
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want %q", c.name, code, errOut, c.want)
		}
	}
}

func TestRenderClassFromStdinIsRefused(t *testing.T) {
	const lb = `apiVersion: hakeeper.io/v1alpha1
kind: LoadBalancer
metadata: {name: web}
spec:
  virtualIPs: ["198.18.0.100"]
  listeners: [{name: http, port: 80, protocol: HTTP, defaultBackend: web}]
  backends: [{name: web, servers: [{name: vm1, address: 198.18.0.21, port: 8080}]}]
`
	code, _, errOut := runCLI(t, lb, "render", "-f", "-", "--class", "-", "--node", "n1=198.18.0.11")
	if code != 1 || !strings.Contains(errOut, "--class -: standard input is -f's") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// TestRenderMatchesTheOperatorOnSamples: render decides through the
// operator's own function, so on the facts controllers' TestSamples gives
// the operator (the sample classes, the nodes and their interfaces, the
// Services' endpoints, the namespace's labels, the router ID allocated in
// that cluster, what the postgres sample's DNS name resolves to there, the
// website applied before postgres) it writes exactly the files the
// operator's ConfigMaps must hold: the same goldens.
func TestRenderMatchesTheOperatorOnSamples(t *testing.T) {
	for _, c := range []struct {
		sample string
		args   []string
		files  map[string]string // written file → golden
	}{
		{"website", []string{"--node", "edge-a=198.18.0.11", "--node", "edge-b=198.18.0.12",
			"--servers", "web=198.18.0.23:8080,198.18.0.24:8080"},
			map[string]string{"haproxy.cfg": "haproxy.cfg.golden", "edge-a/keepalived.conf": "edge-a.keepalived.conf.golden",
				"edge-b/keepalived.conf": "edge-b.keepalived.conf.golden"}},
		// After the website, as TestSamples applies them: its router ID is
		// allocated past the website's and its master is the node that
		// leads fewer LoadBalancers (edge-b).
		{"postgres", []string{"--node", "edge-a=198.18.0.11", "--node", "edge-b=198.18.0.12",
			"--servers", "web=198.18.0.23:8080,198.18.0.24:8080", "--resolve", "pg-standby.db.example.internal=198.18.0.53"},
			map[string]string{"databases.postgres/edge-a/keepalived.conf": "edge-a.keepalived.conf.golden",
				"databases.postgres/edge-b/keepalived.conf": "edge-b.keepalived.conf.golden",
				"databases.postgres/haproxy.cfg":            "haproxy.cfg.golden"}},
		{"cloud-unicast", []string{"--node", "zone-a-1=198.18.0.11", "--node", "zone-b-1=198.18.0.12", "--node", "zone-c-1=198.18.0.13",
			"--servers", "storefront=198.18.0.61:8080,198.18.0.62:8080,[2001:db8::63]:8080",
			"--namespace-label", "hakeeper.io/tls-delegation=allowed", "--router-id", "2"},
			map[string]string{"haproxy.cfg": "haproxy.cfg.golden", "zone-a-1/keepalived.conf": "zone-a-1.keepalived.conf.golden",
				"zone-b-1/keepalived.conf": "zone-b-1.keepalived.conf.golden", "zone-c-1/keepalived.conf": "zone-c-1.keepalived.conf.golden"}},
	} {
		t.Run(c.sample, func(t *testing.T) {
			dir := t.TempDir()
			file := "../../config/samples/" + c.sample + ".yaml"
			if c.sample == "postgres" {
				file = filepath.Join(t.TempDir(), "website-then-postgres.yaml")
				website, err1 := os.ReadFile("../../config/samples/website.yaml")
				postgres, err2 := os.ReadFile("../../config/samples/postgres.yaml")
				if err := errors.Join(err1, err2, os.WriteFile(file, append(append(website, "\n---\n"...), postgres...), 0o644)); err != nil {
					t.Fatal(err)
				}
			}
			args := append([]string{"render", "-f", file, "--class", "../../config/samples/classes.yaml", "--out", dir}, c.args...)
			if code, _, errOut := runCLI(t, "", args...); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			for file, golden := range c.files {
				got, err := os.ReadFile(filepath.Join(dir, file))
				if err != nil {
					t.Fatal(err)
				}
				want, err := os.ReadFile(filepath.Join("..", "render", "testdata", "TestSamples", c.sample, golden))
				if err != nil {
					t.Fatal(err)
				}
				if c.sample == "postgres" {
					// The operator renders the address the name resolves
					// to; the golden, rendered from the spec, holds the name.
					want = []byte(strings.Replace(string(want), "pg-standby.db.example.internal", "198.18.0.53", 1))
				}
				if string(got) != string(want) {
					t.Errorf("%s differs from the operator's %s:\n%s", file, golden, firstDifference(string(got), string(want)))
				}
			}
		})
	}
}

// firstDifference shows the first line where got and want differ.
func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n  render:   %q\n  operator: %q", i+1, gl, wl)
		}
	}
	return ""
}
