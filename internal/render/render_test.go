package render

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"k8s.io/utils/ptr"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/keepalivedconf"
	"github.com/hakeeper/hakeeper/internal/priority"
)

var update = flag.Bool("update", false, "rewrite golden files")

// sampleCase is a sample from config/samples with the facts the operator
// would gather for it.
type sampleCase struct {
	file string
	// class, vips and iface are what the sample's class in
	// config/samples/classes.yaml gives it.
	class     string
	vips      []string
	iface     string
	nodes     []Node
	endpoints map[string][]Endpoint
	routerID  int32
	// after are the samples applied before this one on the same nodes:
	// the operator spreads masters, so their priorities decide this one's.
	after []string
}

var sampleCases = map[string]sampleCase{
	"website": {
		file:  "website.yaml",
		class: "edge",
		vips:  []string{"198.18.0.100/24"},
		nodes: []Node{
			{Name: "edge-a", Address: "198.18.0.11", Interface: "eth0"},
			{Name: "edge-b", Address: "198.18.0.12", Interface: "eth0"},
		},
		endpoints: map[string][]Endpoint{"web": {{"198.18.0.23", 8080}, {"198.18.0.24", 8080}}},
	},
	"postgres": {
		file:  "postgres.yaml",
		class: "edge",
		vips:  []string{"198.18.0.110/24"},
		nodes: []Node{
			{Name: "edge-a", Address: "198.18.0.11", Interface: "eth0"},
			{Name: "edge-b", Address: "198.18.0.12", Interface: "eth0"},
		},
		// The router ID the operator allocates when the samples are applied
		// in order (website pins 51): controllers' tests compare with these
		// goldens. Likewise the priorities: website leads on edge-a, so
		// postgres's master is edge-b.
		routerID: 1,
		after:    []string{"website"},
	},
	"cloud-unicast": {
		file:  "cloud-unicast.yaml",
		class: "cloud",
		vips:  []string{"198.18.0.120/24", "2001:db8::120/64"},
		iface: "ens5",
		nodes: []Node{
			{Name: "zone-a-1", Address: "198.18.0.11"},
			{Name: "zone-b-1", Address: "198.18.0.12"},
			{Name: "zone-c-1", Address: "198.18.0.13"},
		},
		endpoints: map[string][]Endpoint{"storefront": {{"198.18.0.61", 8080}, {"198.18.0.62", 8080}, {"2001:db8::63", 8080}}},
		routerID:  2,
	},
}

func loadSample(t testing.TB, file string) *v1alpha1.LoadBalancer {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", file))
	if err != nil {
		t.Fatal(err)
	}
	var lb v1alpha1.LoadBalancer
	if err := yaml.UnmarshalStrict(data, &lb); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return &lb
}

// loadClass reads one LoadBalancerClass from config/samples/classes.yaml.
func loadClass(t testing.TB, name string) *v1alpha1.LoadBalancerClass {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", "classes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var class v1alpha1.LoadBalancerClass
		if err := yaml.UnmarshalStrict([]byte(doc), &class); err != nil {
			t.Fatalf("classes.yaml: %v", err)
		}
		if class.Name == name {
			return &class
		}
	}
	t.Fatalf("classes.yaml has no class %s", name)
	return nil
}

func (c sampleCase) input(t testing.TB) Input {
	lb := loadSample(t, c.file)
	if lb.Spec.ClassName != c.class {
		t.Fatalf("%s uses class %q, the test expects %q", c.file, lb.Spec.ClassName, c.class)
	}
	class := loadClass(t, c.class)
	in := Input{Name: lb.Name, Namespace: lb.Namespace, Spec: class.WithClassDefaults(lb.Spec),
		Interface: c.iface, Endpoints: c.endpoints, VirtualRouterID: c.routerID}
	if g := class.Spec.VRRP.MulticastGroups; g != nil {
		in.MulticastGroups = *g
	}
	for _, v := range c.vips {
		in.VirtualIPs = append(in.VirtualIPs, netip.MustParsePrefix(v))
	}
	if id := lb.Spec.VRRP.VirtualRouterID; id != nil {
		in.VirtualRouterID = *id
	}
	// HAProxy's health port as the operator places it by default
	// (desired.HealthPorts with base 19000).
	in.HealthPort = 19000 + 255 + in.VirtualRouterID
	names := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		names[i] = n.Name
	}
	prios := priority.Assign(lb.Spec.VRRP.Priorities, names, nil, c.load(t))
	for _, n := range c.nodes {
		n.Priority = prios[n.Name]
		in.Nodes = append(in.Nodes, n)
	}
	return in
}

// load is what the samples applied before this one give its nodes.
func (c sampleCase) load(t testing.TB) priority.Load {
	l := priority.Load{}
	for _, name := range c.after {
		prios := map[string]int32{}
		for _, n := range sampleCases[name].input(t).Nodes {
			prios[n.Name] = n.Priority
		}
		l.Add(prios)
	}
	return l
}

// TestSamples renders every sample to golden files. The goldens are then
// run through the real haproxy and keepalived by TestGoldensPassRealTools.
func TestSamples(t *testing.T) {
	for name, c := range sampleCases {
		t.Run(name, func(t *testing.T) {
			in := c.input(t)
			cfg, err := HAProxyConfig(in)
			if err != nil {
				t.Fatal(err)
			}
			assertGolden(t, "haproxy.cfg.golden", cfg)
			for _, n := range in.Nodes {
				conf, err := KeepalivedConfig(in, n.Name)
				if err != nil {
					t.Fatal(err)
				}
				assertGolden(t, n.Name+".keepalived.conf.golden", conf)
			}
		})
	}
}

func assertGolden(t *testing.T, file string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", t.Name(), file)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/render -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the rendered output; if the change is intended, run go test ./internal/render -update\n--- got:\n%s", path, got)
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	for name, c := range sampleCases {
		in := c.input(t)
		first, err := HAProxyConfig(in)
		if err != nil {
			t.Fatal(err)
		}
		// Reversing node order must change nothing: peers are sorted.
		for i, j := 0, len(in.Nodes)-1; i < j; i, j = i+1, j-1 {
			in.Nodes[i], in.Nodes[j] = in.Nodes[j], in.Nodes[i]
		}
		for range 20 {
			again, err := HAProxyConfig(in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(first, again) {
				t.Fatalf("%s: haproxy.cfg differs between renders", name)
			}
		}
		a, err := KeepalivedConfig(c.input(t), in.Nodes[0].Name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := KeepalivedConfig(in, in.Nodes[0].Name)
		if err != nil {
			t.Fatal(err)
		}
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Fatalf("%s: keepalived.conf depends on node order", name)
		}
	}
}

func TestEndpointsFillSlots(t *testing.T) {
	in := sampleCases["website"].input(t)
	var eps []Endpoint
	for i := range 5 {
		eps = append(eps, Endpoint{Address: "198.18.1." + string(rune('1'+i)), Port: 8080})
	}
	in.Endpoints = map[string][]Endpoint{"web": eps}
	cfg, err := HAProxyConfig(in)
	if err != nil {
		t.Fatal(err)
	}
	text := string(cfg)
	// serverSlots is 4: five endpoints take two steps of four slots.
	if got := strings.Count(text, "server ep_"); got != 8 {
		t.Errorf("got %d slot servers, want 8", got)
	}
	if got := strings.Count(text, " disabled"); got != 3 {
		t.Errorf("got %d disabled slots, want 3", got)
	}
	if !strings.Contains(text, "server ep_5 198.18.1.5:8080 weight 100 cookie ep_5\n") {
		t.Errorf("fifth endpoint not in slot 5:\n%s", text)
	}
}

func TestUnknownNode(t *testing.T) {
	in := sampleCases["website"].input(t)
	if _, err := KeepalivedConfig(in, "nowhere"); err == nil || !strings.Contains(err.Error(), "nowhere") {
		t.Fatalf("got %v, want an error naming the node", err)
	}
}

// TestHAProxyServers: the servers the runtime API can change come as data,
// and the skeleton hash moves exactly when something else changes.
func TestHAProxyServers(t *testing.T) {
	in := sampleCases["website"].input(t)
	cfg, base, err := HAProxyConfigAndServers(in)
	if err != nil {
		t.Fatal(err)
	}
	if alone, err := HAProxyConfig(in); err != nil || !bytes.Equal(alone, cfg) {
		t.Fatalf("haproxy.cfg differs from HAProxyConfig's (%v)", err)
	}
	if err := base.Validate(); err != nil {
		t.Fatal(err)
	}
	web := base.Backends["be_web"]
	// vm1, vm2 and four slots, two of them filled.
	if len(web) != 6 || web[0].Name != "vm1" || web[2] != (contract.Server{Name: "ep_1", Address: "198.18.0.23", Port: 8080, Weight: 100}) ||
		!web[5].Disabled {
		t.Fatalf("be_web: %+v", web)
	}
	skeletonOf := func(mutate func(*Input)) string {
		t.Helper()
		in := sampleCases["website"].input(t)
		mutate(&in)
		_, set, err := HAProxyConfigAndServers(in)
		if err != nil {
			t.Fatal(err)
		}
		return set.Skeleton
	}
	for name, mutate := range map[string]func(*Input){
		"an endpoint moves": func(in *Input) { in.Endpoints["web"][0].Address = "198.18.0.29" },
		"a slot fills":      func(in *Input) { in.Endpoints["web"] = append(in.Endpoints["web"], Endpoint{"198.18.0.25", 8080}) },
		"a static weight":   func(in *Input) { in.Spec.Backends[0].Servers[0].Weight = ptr.To[int32](7) },
		"a static address":  func(in *Input) { in.Spec.Backends[0].Servers[0].Address = "198.18.0.40" },
	} {
		if got := skeletonOf(mutate); got != base.Skeleton {
			t.Errorf("%s changed the skeleton", name)
		}
	}
	for name, mutate := range map[string]func(*Input){
		"balance":                 func(in *Input) { in.Spec.Backends[0].Balance = v1alpha1.BalanceLeastConn },
		"a slot more":             func(in *Input) { in.Spec.Backends[0].ServiceRef.ServerSlots = ptr.To[int32](8) },
		"a server becomes a name": func(in *Input) { in.Spec.Backends[0].Servers[0].Address = "vm1.example.com" },
		"a backup flag":           func(in *Input) { in.Spec.Backends[0].Servers[0].Backup = true },
		"a timeout":               func(in *Input) { in.Spec.HAProxy.Timeouts.ClientSeconds = ptr.To[int32](9) },
	} {
		if got := skeletonOf(mutate); got == base.Skeleton {
			t.Errorf("%s left the skeleton unchanged", name)
		}
	}
}

// TestKeepalivedVirtualAddressesReadsBack: what the supervisor removes
// after keepalived is killed is exactly what the rendered config adds, for
// both families, advertised and excluded.
func TestKeepalivedVirtualAddressesReadsBack(t *testing.T) {
	for name, c := range sampleCases {
		in := c.input(t)
		for _, n := range in.Nodes {
			conf, err := KeepalivedConfig(in, n.Name)
			if err != nil {
				t.Fatal(err)
			}
			got, err := keepalivedconf.VirtualAddresses(conf)
			if err != nil {
				t.Fatalf("%s/%s: %v", name, n.Name, err)
			}
			iface := in.Interface
			if iface == "" {
				iface = n.Interface
			}
			var want []keepalivedconf.VirtualAddress
			for _, v := range c.vips {
				want = append(want, keepalivedconf.VirtualAddress{Prefix: netip.MustParsePrefix(v), Interface: iface})
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s/%s: read back %v, rendered %v", name, n.Name, got, want)
			}
		}
	}
	for _, bad := range []string{
		"virtual_ipaddress {\n 198.18.0.1/24 dev\n}\n",
		"virtual_ipaddress {\n 198.18.0.1 dev eth0\n}\n",
		"virtual_ipaddress {\n 198.18.0.1/24 dev eth0\n",
	} {
		if _, err := keepalivedconf.VirtualAddresses([]byte(bad)); err == nil {
			t.Errorf("%q read without an error", bad)
		}
	}
}

// TestOneAdvertisedAddress: the adverts carry the first address of the
// instance's family only, so adding or removing any other VIP leaves them
// as they were while the nodes reload one after another.
func TestOneAdvertisedAddress(t *testing.T) {
	vips := []netip.Prefix{netip.MustParsePrefix("198.18.0.100/24"), netip.MustParsePrefix("2001:db8::100/64"),
		netip.MustParsePrefix("198.18.0.101/24"), netip.MustParsePrefix("198.18.0.102/24")}
	advertised, excluded := splitAdvertised(vips, true)
	if !slices.Equal(advertised, []string{"198.18.0.100/24"}) ||
		!slices.Equal(excluded, []string{"2001:db8::100/64", "198.18.0.101/24", "198.18.0.102/24"}) {
		t.Errorf("IPv4 instance: advertised %v, excluded %v", advertised, excluded)
	}
	advertised, excluded = splitAdvertised(vips, false)
	if !slices.Equal(advertised, []string{"2001:db8::100/64"}) || len(excluded) != 3 {
		t.Errorf("IPv6 instance: advertised %v, excluded %v", advertised, excluded)
	}
	// One VIP, or more of either family: the same advert.
	for _, some := range [][]netip.Prefix{vips[:1], vips[:2], vips[:3], vips} {
		if a, _ := splitAdvertised(some, true); !slices.Equal(a, []string{"198.18.0.100/24"}) {
			t.Errorf("%v advertises %v", some, a)
		}
	}
}

// TestVRRPFilterFacts: keepalived's supervisor reads back the router ID and
// family of every sample's instance, and the peers are each node's source
// of adverts: InternalIPs for IPv4 and IPv6 unicast, reported link-local
// addresses for IPv6 multicast, where a node not yet reported is left out.
func TestVRRPFilterFacts(t *testing.T) {
	for name, c := range sampleCases {
		in := c.input(t)
		var addrs []string
		for _, n := range in.Nodes {
			addrs = append(addrs, n.Address)
			conf, err := KeepalivedConfig(in, n.Name)
			if err != nil {
				t.Fatal(err)
			}
			id, ipv6, err := keepalivedconf.Instance(conf)
			if err != nil || int32(id) != in.VirtualRouterID || ipv6 == in.IPv4() {
				t.Errorf("%s/%s: read back router ID %d, IPv6 %v (%v); rendered %d, IPv6 %v", name, n.Name, id, ipv6, err, in.VirtualRouterID, !in.IPv4())
			}
		}
		slices.Sort(addrs)
		if got := VRRPPeers(in); !slices.Equal(got, addrs) {
			t.Errorf("%s: peers %v, want the nodes' addresses %v", name, got, addrs)
		}
	}
	v6 := Input{
		Spec:       v1alpha1.LoadBalancerSpec{},
		VirtualIPs: []netip.Prefix{netip.MustParsePrefix("2001:db8::100/64")},
		Nodes: []Node{{Name: "a", Address: "2001:db8::11", LinkLocal: "fe80::a"}, {Name: "b", Address: "2001:db8::12"},
			{Name: "c", Address: "2001:db8::13", LinkLocal: "fe80::c"}},
	}
	if got := VRRPPeers(v6); !slices.Equal(got, []string{"fe80::a", "fe80::c"}) {
		t.Errorf("IPv6 multicast peers %v, want the reported link-local addresses", got)
	}
	v6.Spec.VRRP.Mode = v1alpha1.VRRPModeUnicast
	if got := VRRPPeers(v6); !slices.Equal(got, []string{"2001:db8::11", "2001:db8::12", "2001:db8::13"}) {
		t.Errorf("IPv6 unicast peers %v, want the InternalIPs", got)
	}
	for _, bad := range []string{"", "vrrp_instance x {\n    virtual_router_id 300\n}\n",
		"virtual_router_id 5\nvirtual_router_id 6\n", "virtual_router_id 5\n"} {
		if _, _, err := keepalivedconf.Instance([]byte(bad)); err == nil {
			t.Errorf("%q read without an error", bad)
		}
	}
}

// TestMulticastGroupPerRouterID: the class's block of VRRP's family plus
// the router ID; VRRP's own group without a block and for unicast; a bad
// block is refused, named.
func TestMulticastGroupPerRouterID(t *testing.T) {
	groups := v1alpha1.VRRPMulticastGroups{IPv4: "239.255.18.0/24", IPv6: "ff02::18:0/120"}
	for _, c := range []struct {
		name   string
		vip    string
		rid    int32
		groups v1alpha1.VRRPMulticastGroups
		mode   v1alpha1.VRRPMode
		want   string
	}{
		{"IPv4", "198.18.0.100/24", 7, groups, "", "239.255.18.7"},
		{"IPv4, router ID 255", "198.18.0.100/24", 255, groups, "", "239.255.18.255"},
		{"IPv6", "2001:db8::100/64", 7, groups, "", "ff02::18:7"},
		{"a wider block", "198.18.0.100/24", 9, v1alpha1.VRRPMulticastGroups{IPv4: "239.255.0.0/16"}, "", "239.255.0.9"},
		{"no block of the family", "2001:db8::100/64", 7, v1alpha1.VRRPMulticastGroups{IPv4: "239.255.18.0/24"}, "", ""},
		{"no blocks", "198.18.0.100/24", 7, v1alpha1.VRRPMulticastGroups{}, "", ""},
		{"unicast", "198.18.0.100/24", 7, groups, v1alpha1.VRRPModeUnicast, ""},
	} {
		in := Input{VirtualIPs: []netip.Prefix{netip.MustParsePrefix(c.vip)}, VirtualRouterID: c.rid, MulticastGroups: c.groups}
		in.Spec.VRRP.Mode = c.mode
		if got := in.MulticastGroup(); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	in := sampleCases["website"].input(t)
	in.MulticastGroups = v1alpha1.VRRPMulticastGroups{IPv4: "239.255.18.0/24"}
	conf, err := KeepalivedConfig(in, "edge-a")
	if err != nil || !strings.Contains(string(conf), "\n    vrrp_mcast_group4 239.255.18.51\n") {
		t.Errorf("keepalived.conf without the group: %v\n%s", err, conf)
	}
	for block, want := range map[string]string{
		"239.255.18.1/24": "multicastGroups.ipv4: Invalid value: \"239.255.18.1/24\": must have no host bits set",
		"239.255.18.0/25": "at least 8 host bits",
		"198.18.0.0/24":   "must be a multicast block of its family",
		"ff02::18:0/120":  "must be a multicast block of its family",
		"239.255.18.0":    "must be a network in CIDR notation",
	} {
		in.MulticastGroups.IPv4 = block
		if _, err := KeepalivedConfig(in, "edge-a"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("block %s: %v, want %q", block, err, want)
		}
	}
}
