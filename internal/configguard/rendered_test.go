package configguard

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/priority"
	"github.com/hakeeper/hakeeper/internal/render"
)

// These tests render through internal/render's exported API, for the
// samples in config/samples and for the untrusted strings of render's own
// FuzzRender, and require everything the renderer accepts to pass the
// guard, with the default paths and with another run directory.

// samples loads every LoadBalancer in config/samples by name.
func samples(t testing.TB) map[string]*v1alpha1.LoadBalancer {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "config", "samples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*v1alpha1.LoadBalancer{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(data), "\n---\n") {
			var kind metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &kind); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if kind.Kind != "LoadBalancer" {
				continue
			}
			var lb v1alpha1.LoadBalancer
			if err := yaml.Unmarshal([]byte(doc), &lb); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			out[lb.Name] = &lb
		}
	}
	if len(out) == 0 {
		t.Fatal("no LoadBalancer in config/samples")
	}
	return out
}

// inputFor gathers the facts the operator would for a sample: three nodes
// (those the sample pins priorities for first), and for each Service
// backend two endpoints, one per family, and an empty slot.
func inputFor(lb *v1alpha1.LoadBalancer, runDir string) render.Input {
	in := render.Input{Name: lb.Name, Namespace: lb.Namespace, Spec: *lb.Spec.DeepCopy(), VirtualRouterID: 7,
		Endpoints: map[string][]render.Endpoint{}}
	if runDir != "" {
		in.Paths = contract.Paths{RunDir: runDir, ConfigDir: "/etc/elsewhere"}
	}
	var names []string
	for _, p := range lb.Spec.VRRP.Priorities {
		names = append(names, p.Node)
	}
	for i := 0; len(names) < 3; i++ {
		names = append(names, fmt.Sprintf("node-%d", i))
	}
	prios := priority.Assign(lb.Spec.VRRP.Priorities, names, nil, nil)
	for i, n := range names {
		in.Nodes = append(in.Nodes, render.Node{Name: n, Address: fmt.Sprintf("198.18.0.%d", 11+i), Interface: "eth0", Priority: prios[n]})
	}
	setVirtualIPs(&in, lb.Spec.VirtualIPs)
	for _, b := range lb.Spec.Backends {
		if b.ServiceRef != nil {
			in.Endpoints[b.Name] = []render.Endpoint{{Address: "198.18.0.23", Port: 8080}, {Address: "2001:db8::24", Port: 8080}, {}}
		}
	}
	return in
}

// setVirtualIPs gives the sample's addresses the prefix a class would:
// /24 for IPv4, /64 for IPv6.
func setVirtualIPs(in *render.Input, vips []string) {
	for _, v := range vips {
		addr := netip.MustParseAddr(v)
		bits := 64
		if addr.Is4() {
			bits = 24
		}
		in.VirtualIPs = append(in.VirtualIPs, netip.PrefixFrom(addr, bits))
	}
}

// renderAll renders haproxy.cfg and every node's keepalived.conf.
func renderAll(in render.Input) (cfg []byte, confs map[string][]byte, err error) {
	if cfg, err = render.HAProxyConfig(in); err != nil {
		return nil, nil, err
	}
	confs = map[string][]byte{}
	for _, n := range in.Nodes {
		if confs[n.Name], err = render.KeepalivedConfig(in, n.Name); err != nil {
			return nil, nil, err
		}
	}
	return cfg, confs, nil
}

func guardAll(cfg []byte, confs map[string][]byte, runDir string) error {
	if err := HAProxy(string(cfg), runDir); err != nil {
		return fmt.Errorf("%w\n%s", err, cfg)
	}
	for node, conf := range confs {
		if err := Keepalived(string(conf), runDir); err != nil {
			return fmt.Errorf("node %s: %w\n%s", node, err, conf)
		}
	}
	return nil
}

func TestRenderedConfigsPass(t *testing.T) {
	for name, lb := range samples(t) {
		for _, runDir := range []string{"", "/run/elsewhere"} {
			t.Run(name+runDir, func(t *testing.T) {
				cfg, confs, err := renderAll(inputFor(lb, runDir))
				if err != nil {
					t.Fatalf("the sample does not render: %v", err)
				}
				if err := guardAll(cfg, confs, runDir); err != nil {
					t.Fatal(err)
				}
				// The run directory matters.
				other := "/run/other"
				if HAProxy(string(cfg), other) == nil {
					t.Errorf("haproxy.cfg passed with run directory %s", other)
				}
				for node, conf := range confs {
					if Keepalived(string(conf), other) == nil {
						t.Errorf("node %s: keepalived.conf passed with run directory %s", node, other)
					}
				}
			})
		}
	}
}

// fuzzFields are FuzzRender's untrusted strings (internal/render's
// fuzz_test.go), set in the website sample.
var fuzzFields = []struct {
	name string
	set  func(in *render.Input, v string)
}{
	{"server name", func(in *render.Input, v string) { in.Spec.Backends[0].Servers[0].Name = v }},
	{"server address", func(in *render.Input, v string) { in.Spec.Backends[0].Servers[0].Address = v }},
	{"route host", func(in *render.Input, v string) { in.Spec.Listeners[0].Routes[1].Host = v }},
	{"route path", func(in *render.Input, v string) { in.Spec.Listeners[0].Routes[0].PathPrefix = v }},
	{"check path", func(in *render.Input, v string) { in.Spec.Backends[0].HealthCheck.Path = v }},
	{"check host", func(in *render.Input, v string) { in.Spec.Backends[1].HealthCheck.Host = v }},
	{"cookie", func(in *render.Input, v string) { in.Spec.Backends[0].StickyCookie.Name = v }},
	{"hash header", func(in *render.Input, v string) { in.Spec.Backends[2].HashHeader = v }},
	{"node interface", func(in *render.Input, v string) { in.Nodes[0].Interface = v }},
	{"node name", func(in *render.Input, v string) { in.Nodes[1].Name = v }},
	{"node address", func(in *render.Input, v string) { in.Nodes[0].Address = v }},
	{"endpoint address", func(in *render.Input, v string) { in.Endpoints["web"][0].Address = v }},
	{"listener name", func(in *render.Input, v string) { in.Spec.Listeners[0].Name = v }},
	{"backend name", func(in *render.Input, v string) {
		in.Spec.Backends[0].Name = v
		in.Spec.Listeners[0].DefaultBackend = v
		in.Endpoints = map[string][]render.Endpoint{v: in.Endpoints["web"]}
	}},
	{"name", func(in *render.Input, v string) { in.Name = v }},
	{"namespace", func(in *render.Input, v string) { in.Namespace = v }},
	{"IPv4 multicast groups", func(in *render.Input, v string) { in.MulticastGroups.IPv4 = v }},
	{"IPv6 multicast groups", func(in *render.Input, v string) { in.MulticastGroups.IPv6 = v }},
}

var fuzzSeeds = []string{
	// Values each field accepts.
	"vm9", "198.18.0.99", "2001:db8::99", "a.example.com", "/v2", "/ping?x=1&y=2", "/a%20b!*+,;=:@~", "h.example.com",
	"COOKIE", "X-User", "239.255.18.0/24", "ff02::18:0/120", "eth1", "bond0.100", "edge-z", "198.18.0.19", "198.18.0.29", "web", "www", "site", "team-a",
	// Values FuzzRender tries, and more.
	"ok", "a\nb", "a\n    option httpclose", "x\" y", "'q'", "#c", "a#b", "{", "}", "a b", "a\tb", "\r",
	"é", "ｅｔｈ０", "a\\b", "${HOME}", "\"${HOME}\"", ";", "", "/", "/a b", "/a#b", "198.18.0.1\n", "198.18.0.1/24 dev x",
	"fe80::1%eth0", "[::1]", "*.example.com", "a..b", "-a", "!x", "a!", "@a", "a@b", "unix@/x", "/var/run/docker.sock",
	"eth0:1", "a}", "a{", "x:1", string(bytes.Repeat([]byte("a"), 1024)), "/" + string(bytes.Repeat([]byte("a"), 1023)),
}

// FuzzRenderedConfigsPass: whatever the renderer accepts, the guard
// accepts. `go test` runs the seeds; `go test -fuzz
// FuzzRenderedConfigsPass ./internal/configguard` explores further.
func FuzzRenderedConfigsPass(f *testing.F) {
	for i := range fuzzFields {
		for _, s := range fuzzSeeds {
			f.Add(uint8(i), s)
		}
	}
	lb := samples(f)["website"]
	if lb == nil {
		f.Fatal("config/samples has no website sample")
	}
	f.Fuzz(func(t *testing.T, which uint8, value string) {
		field := int(which) % len(fuzzFields)
		for _, runDir := range []string{"", "/run/elsewhere"} {
			cfg, confs, err := renderField(lb, field, value, runDir)
			if err != nil {
				return
			}
			if err := guardAll(cfg, confs, runDir); err != nil {
				t.Fatalf("%s %q renders but the guard refuses it: %v", fuzzFields[field].name, value, err)
			}
		}
	})
}

// renderField renders the website sample with one field set to value.
func renderField(lb *v1alpha1.LoadBalancer, field int, value, runDir string) ([]byte, map[string][]byte, error) {
	in := inputFor(lb, runDir)
	fuzzFields[field].set(&in, value)
	return renderAll(in)
}

// TestFuzzSeedsRender keeps FuzzRenderedConfigsPass meaningful: some seed
// renders for every field.
func TestFuzzSeedsRender(t *testing.T) {
	lb := samples(t)["website"]
	if lb == nil {
		t.Fatal("config/samples has no website sample")
	}
	for i, field := range fuzzFields {
		rendered := 0
		for _, s := range fuzzSeeds {
			if _, _, err := renderField(lb, i, s, ""); err == nil {
				rendered++
			}
		}
		if rendered == 0 {
			t.Errorf("no seed renders with %s", field.name)
		}
	}
}
