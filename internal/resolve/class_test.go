package resolve

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/render"
)

func class(name string, isDefault bool, pools ...v1alpha1.VirtualIPPool) v1alpha1.LoadBalancerClass {
	c := v1alpha1.LoadBalancerClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.LoadBalancerClassSpec{VirtualIPPools: pools}}
	if isDefault {
		c.Annotations = map[string]string{v1alpha1.AnnotationDefaultClass: "true"}
	}
	return c
}

func TestClassName(t *testing.T) {
	lb := &v1alpha1.LoadBalancer{}
	if _, err := ClassName(lb, []v1alpha1.LoadBalancerClass{class("a", false)}); err == nil || !strings.Contains(err.Error(), "no LoadBalancerClass is marked") {
		t.Errorf("no default: got %v", err)
	}
	if _, err := ClassName(lb, []v1alpha1.LoadBalancerClass{class("a", true), class("b", true)}); err == nil || !strings.Contains(err.Error(), "a, b") {
		t.Errorf("two defaults: got %v", err)
	}
	if got, err := ClassName(lb, []v1alpha1.LoadBalancerClass{class("a", false), class("b", true)}); err != nil || got != "b" {
		t.Errorf("default: got %q, %v", got, err)
	}
	// Recorded in status: a new default moves nobody.
	lb.Status.ClassName = "a"
	if got, _ := ClassName(lb, []v1alpha1.LoadBalancerClass{class("b", true)}); got != "a" {
		t.Errorf("recorded: got %q", got)
	}
	lb.Spec.ClassName = "c"
	if got, _ := ClassName(lb, nil); got != "c" {
		t.Errorf("named: got %q", got)
	}
}

func TestNamespaceAllowedAndPlacement(t *testing.T) {
	c := class("a", false)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"tier": "web"}}}
	if ok, _ := NamespaceAllowed(&c, ns); !ok {
		t.Error("no selector must allow every namespace")
	}
	c.Spec.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "db"}}
	if ok, _ := NamespaceAllowed(&c, ns); ok {
		t.Error("a namespace outside the selector was allowed")
	}
	c.Spec.DataPlane.NodeSelector = map[string]string{"edge": "true"}
	c.Spec.DataPlane.Tolerations = []corev1.Toleration{{Key: "edge", Operator: corev1.TolerationOpExists}}
	lb := &v1alpha1.LoadBalancer{Spec: v1alpha1.LoadBalancerSpec{NodeSelector: map[string]string{"zone": "a"}}}
	p, err := PlacementOf(&c, lb)
	if err != nil || p.NodeSelector["edge"] != "true" || p.NodeSelector["zone"] != "a" || len(p.Tolerations) != 1 {
		t.Errorf("narrowing: got %+v, %v", p, err)
	}
	lb.Spec.NodeSelector = map[string]string{"edge": "false"}
	if _, err := PlacementOf(&c, lb); err == nil || !strings.Contains(err.Error(), "spec.nodeSelector.edge") {
		t.Errorf("widening: got %v", err)
	}
	c.Spec.DataPlane.NodeSelector = nil
	if _, err := PlacementOf(&c, lb); err == nil || !strings.Contains(err.Error(), "dataPlane.nodeSelector is empty") {
		t.Errorf("a class selecting every node: got %v", err)
	}
}

func pools(t *testing.T, ps ...v1alpha1.VirtualIPPool) []Pool {
	t.Helper()
	c := class("edge", false, ps...)
	out, err := Pools(&c)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func reasonOf(err error) string {
	var ae *AddressError
	if errors.As(err, &ae) {
		return ae.Reason
	}
	return ""
}

func TestRequestedVirtualIPs(t *testing.T) {
	ps := pools(t,
		v1alpha1.VirtualIPPool{Name: "v4", CIDR: "198.18.0.0/24", PrefixLength: ptr.To[int32](24)},
		v1alpha1.VirtualIPPool{Name: "v6", CIDR: "2001:db8::/120", PrefixLength: ptr.To[int32](64)})
	nodes := map[netip.Addr]string{netip.MustParseAddr("198.18.0.11"): "edge-a"}
	in := VIPInput{Class: "edge", Pools: ps, NodeAddresses: nodes}
	for _, tc := range []struct {
		vip, want, reason string
	}{
		{vip: "198.18.0.100", want: "198.18.0.100/24"},
		{vip: "2001:db8::10", want: "2001:db8::10/64"},
		{vip: "198.18.0.11", reason: v1alpha1.LoadBalancerAddressUnavailableReason},
		{vip: "198.18.0.0", reason: v1alpha1.LoadBalancerAddressUnavailableReason},
		{vip: "198.18.0.255", reason: v1alpha1.LoadBalancerAddressUnavailableReason},
		{vip: "2001:db8::", reason: v1alpha1.LoadBalancerAddressUnavailableReason},
		{vip: "198.18.1.1", reason: v1alpha1.LoadBalancerNotAllowedByClassReason},
		{vip: "127.0.0.1", reason: v1alpha1.LoadBalancerNotAllowedByClassReason},
		{vip: "169.254.169.254", reason: v1alpha1.LoadBalancerNotAllowedByClassReason},
		{vip: "224.0.0.18", reason: v1alpha1.LoadBalancerNotAllowedByClassReason},
		{vip: "0.0.0.0", reason: v1alpha1.LoadBalancerNotAllowedByClassReason},
	} {
		in.Requested = []string{tc.vip}
		got, err := AssignVirtualIPs(in)
		if tc.reason != "" {
			if reasonOf(err) != tc.reason || !strings.Contains(err.Error(), "spec.virtualIPs[0]") {
				t.Errorf("%s: got %v (%q), want reason %s naming the field", tc.vip, err, reasonOf(err), tc.reason)
			}
			continue
		}
		if err != nil || len(got) != 1 || got[0].String() != tc.want {
			t.Errorf("%s: got %v, %v; want %s", tc.vip, got, err, tc.want)
		}
	}
}

func TestAllocatedVirtualIPs(t *testing.T) {
	// A /29 inside a /24 (nothing reserved) and a /30 that is its own
	// subnet (network and broadcast reserved).
	ps := pools(t,
		v1alpha1.VirtualIPPool{Name: "a", CIDR: "198.18.0.96/29", PrefixLength: ptr.To[int32](24)},
		v1alpha1.VirtualIPPool{Name: "b", CIDR: "198.18.5.0/30"})
	nodes := map[netip.Addr]string{netip.MustParseAddr("198.18.0.97"): "edge-a"}
	taken := map[netip.Addr]string{}
	var got []string
	// A burst: every allocation sees the ones before it, as the reconciler
	// does through its allocation record; none is handed out twice.
	for i := range 10 {
		vips, err := AssignVirtualIPs(VIPInput{Class: "edge", Pools: ps, NodeAddresses: nodes, Others: ClaimMaps{Held: taken}})
		if err != nil {
			if i != 9 || reasonOf(err) != v1alpha1.LoadBalancerAddressUnavailableReason || !strings.Contains(err.Error(), "exhausted") {
				t.Fatalf("allocation %d: %v", i, err)
			}
			break
		}
		taken[vips[0].Addr()] = "lb"
		got = append(got, vips[0].String())
	}
	want := "198.18.0.96/24 198.18.0.98/24 198.18.0.99/24 198.18.0.100/24 198.18.0.101/24 198.18.0.102/24 198.18.0.103/24 198.18.5.1/30 198.18.5.2/30"
	if strings.Join(got, " ") != want {
		t.Errorf("got %v\nwant %s", got, want)
	}
	// A previous allocation is kept while it is free, even when another
	// LoadBalancer asks for it: asking dislodges nobody.
	vips, err := AssignVirtualIPs(VIPInput{Pools: ps, Previous: []string{"198.18.0.102/24"}, Others: ClaimMaps{Requested: map[netip.Addr]string{netip.MustParseAddr("198.18.0.102"): "attacker"}}})
	if err != nil || vips[0].String() != "198.18.0.102/24" {
		t.Errorf("previous: got %v, %v", vips, err)
	}
	// IPv6 asked of a class without an IPv6 pool.
	_, err = AssignVirtualIPs(VIPInput{Class: "edge", Pools: ps, Families: []corev1.IPFamily{corev1.IPv6Protocol}})
	if reasonOf(err) != v1alpha1.LoadBalancerNotAllowedByClassReason {
		t.Errorf("IPv6: got %v", err)
	}
	// A huge IPv6 pool is walked only as far as needed.
	big := pools(t, v1alpha1.VirtualIPPool{Name: "v6", CIDR: "2001:db8::/64"})
	vips, err = AssignVirtualIPs(VIPInput{Pools: big})
	if err != nil || vips[0].String() != "2001:db8::1/64" {
		t.Errorf("IPv6 pool: got %v, %v", vips, err)
	}
}

func TestBackendPolicy(t *testing.T) {
	c := class("edge", false, v1alpha1.VirtualIPPool{Name: "v4", CIDR: "198.18.0.96/27", PrefixLength: ptr.To[int32](24)})
	c.Spec.Backends.AllowedCIDRs = []string{"198.18.0.0/16"}
	ps := pools(t, c.Spec.VirtualIPPools...)
	nodes := map[netip.Addr]string{netip.MustParseAddr("198.18.0.11"): "edge-a"}
	p, err := NewBackendPolicy(&c, ps, nodes)
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{
		"198.18.0.21": "", "127.0.0.1": "loopback", "169.254.169.254": "link-local", "198.18.0.11": "node edge-a",
		"198.18.0.100": "pool v4", "10.0.0.1": "allowedCIDRs", "0.0.0.0": "not a unicast", "::1": "loopback",
	} {
		got := p.Refuses(netip.MustParseAddr(addr))
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("%s: got %q, want %q", addr, got, want)
		}
	}
	spec := &v1alpha1.LoadBalancerSpec{Backends: []v1alpha1.Backend{{
		Name:        "web",
		Servers:     []v1alpha1.Server{{Name: "a", Address: "198.18.0.21"}, {Name: "b", Address: "db.example.com"}, {Name: "c", Address: "198.18.0.11"}},
		ServiceRef:  &v1alpha1.ServiceReference{Name: "web", ServerSlots: ptr.To[int32](300)},
		HealthCheck: &v1alpha1.HealthCheck{Type: v1alpha1.HealthCheckTCP, IntervalMilliseconds: ptr.To[int32](100)},
	}}}
	got := p.CheckSpec(spec).ToAggregate().Error()
	for _, want := range []string{
		"spec.backends[0].servers[1].address: Forbidden: db.example.com: LoadBalancerClass edge allows static servers only by IP address",
		"spec.backends[0].serviceRef.serverSlots: Invalid value: 300",
		"spec.backends[0].servers: Invalid value: 303",
		"spec.backends[0].healthCheck.intervalMilliseconds: Invalid value: 100",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if strings.Contains(got, "servers[0]") {
		t.Errorf("an allowed server was refused:\n%s", got)
	}
	c.Spec.Limits.MaxServersPerBackend = ptr.To[int32](3)
	small, _ := NewBackendPolicy(&c, ps, nodes)
	two := &v1alpha1.Backend{Name: "web", Servers: []v1alpha1.Server{{Name: "a"}}}
	if got, msg := small.CapEndpoints(two, []render.Endpoint{{Address: "198.18.0.21"}, {Address: "198.18.0.22"}, {Address: "198.18.0.23"}}); len(got) != 2 ||
		!strings.Contains(msg, "1 of 3 endpoints left out") {
		t.Errorf("cap: kept %v, %q", got, msg)
	}
	kept, dropped := p.FilterEndpoints("web", []render.Endpoint{{Address: "198.18.0.21", Port: 80}, {Address: "127.0.0.1", Port: 22}, {Address: "169.254.169.254", Port: 80}})
	if len(kept) != 1 || len(dropped) != 2 || !strings.Contains(dropped[0], "loopback") {
		t.Errorf("endpoints: kept %v, dropped %v", kept, dropped)
	}
}
