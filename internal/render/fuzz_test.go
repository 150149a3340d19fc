package render

import (
	"bytes"
	"net/netip"
	"testing"
)

// fuzzField puts one untrusted string into one place of the website
// sample's Input.
type fuzzField struct {
	name   string
	benign string
	set    func(in *Input, v string)
}

var fuzzFields = []fuzzField{
	{"server name", "vm9", func(in *Input, v string) { in.Spec.Backends[0].Servers[0].Name = v }},
	{"server address", "198.18.0.99", func(in *Input, v string) { in.Spec.Backends[0].Servers[0].Address = v }},
	{"route host", "a.example.com", func(in *Input, v string) { in.Spec.Listeners[0].Routes[1].Host = v }},
	{"route path", "/v2", func(in *Input, v string) { in.Spec.Listeners[0].Routes[0].PathPrefix = v }},
	{"check path", "/ping", func(in *Input, v string) { in.Spec.Backends[0].HealthCheck.Path = v }},
	{"check host", "h.example.com", func(in *Input, v string) { in.Spec.Backends[1].HealthCheck.Host = v }},
	{"cookie", "COOKIE", func(in *Input, v string) { in.Spec.Backends[0].StickyCookie.Name = v }},
	{"hash header", "X-User", func(in *Input, v string) { in.Spec.Backends[2].HashHeader = v }},
	{"interface", "bond0", func(in *Input, v string) { in.Interface = v }},
	{"node interface", "eth1", func(in *Input, v string) { in.Nodes[0].Interface = v }},
	{"node name", "edge-z", func(in *Input, v string) { in.Nodes[1].Name = v }},
	{"node address", "198.18.0.19", func(in *Input, v string) { in.Nodes[0].Address = v }},
	{"endpoint address", "198.18.0.29", func(in *Input, v string) { in.Endpoints["web"][0].Address = v }},
	{"virtual IP", "198.18.0.101", func(in *Input, v string) {
		if addr, err := netip.ParseAddr(v); err == nil {
			in.VirtualIPs[0] = netip.PrefixFrom(addr, 24)
		} else {
			in.VirtualIPs[0] = netip.Prefix{}
		}
	}},
	{"listener name", "web", func(in *Input, v string) { in.Spec.Listeners[0].Name = v }},
	{"backend name", "www", func(in *Input, v string) {
		in.Spec.Backends[0].Name = v
		in.Spec.Listeners[0].DefaultBackend = v
	}},
	{"name", "site", func(in *Input, v string) { in.Name = v }},
	{"namespace", "team-a", func(in *Input, v string) { in.Namespace = v }},
}

var fuzzSeeds = []string{
	"ok", "a\nb", "a\n    option httpclose", "x\" y", "'q'", "#c", "a#b", "{", "}", "a b", "a\tb", "\r",
	"é", "ｅｔｈ０", "a\\b", "${HOME}", "\"${HOME}\"", ";", "", "/", "/a b", "/a#b", "198.18.0.1\n", "198.18.0.1/24 dev x",
	"fe80::1%eth0", "[::1]", "*.example.com", "a..b", "-a", strings1024,
}

var strings1024 = string(bytes.Repeat([]byte("a"), 1024))

// FuzzRender shows that no accepted input adds a directive or breaks a file:
// whatever string reaches a config is one token without characters HAProxy
// or Keepalived give meaning to, and the files keep the shape they have
// with a benign value. `go test` runs the seed corpus; `go test -fuzz
// FuzzRender ./internal/render` explores further.
func FuzzRender(f *testing.F) {
	for i := range fuzzFields {
		for _, s := range fuzzSeeds {
			f.Add(uint8(i), s)
		}
	}
	base := sampleCases["website"].input(f)
	f.Fuzz(func(t *testing.T, which uint8, value string) {
		field := fuzzFields[int(which)%len(fuzzFields)]
		got, err := renderEverything(withField(base, field, value))
		if err != nil {
			return
		}
		// An empty optional field means "use the default" and prints nothing.
		if value != "" && !safeTokenRE.MatchString(value) {
			t.Fatalf("%s %q was accepted but is not a safe token", field.name, value)
		}
		want, err := renderEverything(withField(base, field, field.benign))
		if err != nil {
			t.Fatalf("benign %s %q rejected: %v", field.name, field.benign, err)
		}
		for i := range want {
			if bytes.Count(got[i], []byte("\n")) != bytes.Count(want[i], []byte("\n")) {
				t.Fatalf("%s %q changed the number of lines:\n%s", field.name, value, got[i])
			}
		}
	})
}

// withField copies the parts of in that fuzz fields touch, then sets one.
func withField(in Input, f fuzzField, v string) Input {
	in.Spec = *in.Spec.DeepCopy()
	in.Nodes = append([]Node(nil), in.Nodes...)
	eps := map[string][]Endpoint{}
	for k, list := range in.Endpoints {
		eps[k] = append([]Endpoint(nil), list...)
	}
	in.Endpoints = eps
	f.set(&in, v)
	return in
}

func renderEverything(in Input) ([][]byte, error) {
	cfg, err := HAProxyConfig(in)
	if err != nil {
		return nil, err
	}
	out := [][]byte{cfg}
	for _, n := range in.Nodes {
		conf, err := KeepalivedConfig(in, n.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, conf)
	}
	return out, nil
}
