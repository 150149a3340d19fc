package resolve

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/render"
)

func node(name string, labels map[string]string, taints ...corev1.Taint) corev1.Node {
	return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: corev1.NodeSpec{Taints: taints}}
}

func names(nodes []*corev1.Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	return out
}

func TestSelectNodes(t *testing.T) {
	edge := map[string]string{"edge": "true"}
	dedicated := corev1.Taint{Key: "dedicated", Value: "edge", Effect: corev1.TaintEffectNoSchedule}
	nodes := []corev1.Node{
		node("c", edge),
		node("a", edge),
		node("b", nil),
		node("d", edge, dedicated),
		node("e", edge, corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute}),
		node("f", edge, corev1.Taint{Key: "soft", Effect: corev1.TaintEffectPreferNoSchedule}),
	}
	if got, want := names(SelectNodes(nodes, edge, nil)), []string{"a", "c", "e", "f"}; !reflect.DeepEqual(got, want) {
		t.Errorf("without tolerations: got %v, want %v", got, want)
	}
	tol := []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "edge", Effect: corev1.TaintEffectNoSchedule}}
	if got, want := names(SelectNodes(nodes, edge, tol)), []string{"a", "c", "d", "e", "f"}; !reflect.DeepEqual(got, want) {
		t.Errorf("with toleration: got %v, want %v", got, want)
	}
	if got := len(SelectNodes(nodes, nil, nil)); got != 5 {
		t.Errorf("empty selector: got %d nodes, want 5", got)
	}
}

func TestInternalIP(t *testing.T) {
	n := corev1.Node{Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
		{Type: corev1.NodeExternalIP, Address: "203.0.113.1"},
		{Type: corev1.NodeInternalIP, Address: "2001:db8::1"},
		{Type: corev1.NodeInternalIP, Address: "198.18.0.11"},
	}}}
	if got := InternalIP(&n, true); got != "198.18.0.11" {
		t.Errorf("IPv4: got %q", got)
	}
	if got := InternalIP(&n, false); got != "2001:db8::1" {
		t.Errorf("IPv6: got %q", got)
	}
}

func slice(ports map[string]int32, eps ...discoveryv1.Endpoint) discoveryv1.EndpointSlice {
	s := discoveryv1.EndpointSlice{AddressType: discoveryv1.AddressTypeIPv4, Endpoints: eps}
	for name, p := range ports {
		s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: ptr.To(name), Port: ptr.To(p)})
	}
	return s
}

func ep(addr string, ready *bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: ready}}
}

func TestReadyEndpoints(t *testing.T) {
	slices := []discoveryv1.EndpointSlice{
		slice(map[string]int32{"http": 8080}, ep("198.18.0.3", nil), ep("198.18.0.1", ptr.To(true)), ep("198.18.0.9", ptr.To(false))),
		slice(map[string]int32{"http": 8080}, ep("198.18.0.2", nil), ep("198.18.0.1", nil)),
		slice(map[string]int32{"metrics": 9090}, ep("198.18.0.7", nil)),
		{AddressType: discoveryv1.AddressTypeFQDN, Endpoints: []discoveryv1.Endpoint{ep("x.example.com", nil)}},
	}
	got := ReadyEndpoints(slices, "http")
	want := []render.Endpoint{{Address: "198.18.0.1", Port: 8080}, {Address: "198.18.0.2", Port: 8080}, {Address: "198.18.0.3", Port: 8080}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestServicePortName(t *testing.T) {
	svc := &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "admin", Port: 9000}}}}
	if name, ok := ServicePortName(svc, intstr.FromInt32(9000)); !ok || name != "admin" {
		t.Errorf("by number: %q %v", name, ok)
	}
	if name, ok := ServicePortName(svc, intstr.FromString("http")); !ok || name != "http" {
		t.Errorf("by name: %q %v", name, ok)
	}
	if _, ok := ServicePortName(svc, intstr.FromString("nope")); ok {
		t.Error("found a port that does not exist")
	}
}

func eps(addrs ...string) []render.Endpoint {
	var out []render.Endpoint
	for _, a := range addrs {
		out = append(out, render.Endpoint{Address: a, Port: 80})
	}
	return out
}

func keys(list []render.Endpoint) []string {
	out := make([]string, len(list))
	for i, e := range list {
		out[i] = SlotKey(e)
	}
	return out
}

func TestAssignSlotsKeepsEndpointsInPlace(t *testing.T) {
	ref := &v1alpha1.ServiceReference{ServerSlots: ptr.To(int32(4))}
	first := AssignSlots(ref, eps("198.18.0.1", "198.18.0.2", "198.18.0.3"), nil)
	if got := keys(first); !reflect.DeepEqual(got, []string{"198.18.0.1:80", "198.18.0.2:80", "198.18.0.3:80", ""}) {
		t.Fatalf("first assignment: %v", got)
	}
	// .2 leaves, .4 and .5 arrive: .1 and .3 stay put, .4 takes .2's slot.
	second := AssignSlots(ref, eps("198.18.0.1", "198.18.0.3", "198.18.0.4", "198.18.0.5"), keys(first))
	if got := keys(second); !reflect.DeepEqual(got, []string{"198.18.0.1:80", "198.18.0.4:80", "198.18.0.3:80", "198.18.0.5:80"}) {
		t.Fatalf("second assignment: %v", got)
	}
	// A fifth endpoint grows the backend by another four slots.
	third := AssignSlots(ref, eps("198.18.0.1", "198.18.0.3", "198.18.0.4", "198.18.0.5", "198.18.0.6"), keys(second))
	if len(third) != 8 || SlotKey(third[4]) != "198.18.0.6:80" {
		t.Fatalf("third assignment: %v", keys(third))
	}
}

func claim(key string, age int, vips []string, ports []int32, nodes []string, id int32) Claim {
	var addrs []netip.Addr
	for _, v := range vips {
		addrs = append(addrs, netip.MustParsePrefix(v).Addr())
	}
	c := NewClaim(key, time.Unix(int64(1000-age), 0), addrs, ports, nodes)
	c.RouterID, c.HeldRouterID = id, id
	return c
}

func TestConflicts(t *testing.T) {
	old := claim("ns/old", 10, []string{"198.18.0.100/24"}, []int32{80}, []string{"a", "b"}, 51)
	tests := []struct {
		name string
		self Claim
		want string
	}{
		{"same VIP and port", claim("ns/new", 1, []string{"198.18.0.100/32"}, []int32{80}, []string{"c"}, 9), "virtual IP 198.18.0.100 is already claimed by LoadBalancer ns/old (both listen on port 80)"},
		{"same VIP, other port", claim("ns/new", 1, []string{"198.18.0.100/24"}, []int32{443}, []string{"c"}, 9), "virtual IP 198.18.0.100 is already claimed by LoadBalancer ns/old"},
		{"same router ID on a shared node", claim("ns/new", 1, []string{"198.18.0.101/24"}, []int32{80}, []string{"b", "c"}, 51), "virtual router ID 51 is held by LoadBalancer ns/old"},
		{"same router ID elsewhere", claim("ns/new", 1, []string{"198.18.0.101/24"}, []int32{80}, []string{"c"}, 51), ""},
		{"the older one does not lose", claim("ns/older", 20, []string{"198.18.0.100/24"}, []int32{80}, []string{"a"}, 51), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(Conflicts(tt.self, []Claim{old, tt.self}), "; ")
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestHolderKeepsItsAddress: whoever was applied with an address keeps it
// against any request, however old the requester; a refused LoadBalancer's
// request claims nothing.
func TestHolderKeepsItsAddress(t *testing.T) {
	vip := netip.MustParseAddr("198.18.0.100")
	holder := claim("ns/holder", 1, []string{"198.18.0.100/24"}, []int32{80}, []string{"a"}, 9)
	holder.Held = []netip.Addr{vip}
	oldRequester := claim("ns/attacker", 50, []string{"198.18.0.100/24"}, []int32{80}, []string{"a"}, 8)
	if got := Conflicts(holder, []Claim{oldRequester}); len(got) != 0 {
		t.Errorf("the holder lost its address to an older request: %v", got)
	}
	if got := strings.Join(Conflicts(oldRequester, []Claim{holder}), "; "); !strings.Contains(got, "is held by LoadBalancer ns/holder") {
		t.Errorf("the older requester of a held address: got %q", got)
	}
	// Both hold it (a leftover): the older one keeps it.
	oldHolder := oldRequester
	oldHolder.Held = []netip.Addr{vip}
	if got := Conflicts(oldHolder, []Claim{holder}); len(got) != 0 {
		t.Errorf("the older of two holders: %v", got)
	}
	if got := Conflicts(holder, []Claim{oldHolder}); len(got) == 0 {
		t.Error("the younger of two holders kept the address")
	}
	// Neither holds it: the older request wins, unless it was refused.
	newcomer := claim("ns/new", 1, []string{"198.18.0.100/24"}, []int32{80}, []string{"b"}, 7)
	if got := Conflicts(newcomer, []Claim{oldRequester}); len(got) == 0 {
		t.Error("the newer of two requests won")
	}
	refused := oldRequester
	refused.Refused = true
	if got := Conflicts(newcomer, []Claim{refused}); len(got) != 0 {
		t.Errorf("a refused request blocked another: %v", got)
	}
}

// allocateAmong is AllocateRouterID with every other claim at hand: all
// of them nearby candidates, and the IDs any of them uses.
func allocateAmong(self Claim, others []Claim, previous int32) (int32, error) {
	return AllocateRouterID(self, others, func(id int32) bool {
		return slices.ContainsFunc(others, func(o Claim) bool { return o.Key != self.Key && (o.RouterID == id || o.HeldRouterID == id) })
	}, previous)
}

func TestAllocateRouterID(t *testing.T) {
	self := claim("ns/self", 1, nil, nil, []string{"a"}, 0)
	others := []Claim{
		claim("ns/x", 5, nil, nil, []string{"a"}, 1),
		claim("ns/y", 5, nil, nil, []string{"z"}, 2),
	}
	if id, err := allocateAmong(self, others, 0); err != nil || id != 3 {
		t.Errorf("fresh: got %d, %v; want 3", id, err)
	}
	if id, _ := allocateAmong(self, others, 2); id != 2 {
		t.Errorf("previous ID used only on other nodes is kept: got %d", id)
	}
	if id, _ := allocateAmong(self, others, 1); id != 3 {
		t.Errorf("previous ID now used by an older LoadBalancer on a shared node is replaced: got %d", id)
	}
	younger := []Claim{claim("ns/young", 0, nil, nil, []string{"a"}, 1)}
	if id, _ := allocateAmong(self, younger, 1); id != 1 {
		t.Errorf("a younger LoadBalancer's colliding allocation must move, not this one: got %d", id)
	}
	var full []Claim
	for id := int32(1); id <= 255; id++ {
		nodes := []string{"z"}
		if id != 7 {
			nodes = []string{"a"}
		}
		full = append(full, claim("ns/o"+string(rune(id)), 5, nil, nil, nodes, id))
	}
	if id, err := allocateAmong(self, full, 0); err != nil || id != 7 {
		t.Errorf("exhausted: got %d, %v; want 7, used only elsewhere", id, err)
	}
}

// TestPinnedRouterIDDisplacesNobody: a pin never takes an ID another
// LoadBalancer holds, whatever their ages, and a refused claim's pin keeps
// no ID from anyone.
func TestPinnedRouterIDDisplacesNobody(t *testing.T) {
	holder := claim("ns/holder", 1, nil, nil, []string{"a"}, 7)
	pinner := claim("ns/pinner", 50, nil, nil, []string{"a"}, 7)
	pinner.Explicit, pinner.HeldRouterID = true, 0
	if got := strings.Join(Conflicts(pinner, []Claim{holder}), "; "); !strings.Contains(got, "virtual router ID 7 is held by LoadBalancer ns/holder") {
		t.Errorf("an older pin of a held ID: got %q", got)
	}
	if id, err := allocateAmong(holder, []Claim{pinner}, 7); err != nil || id != 7 {
		t.Errorf("the holder was moved off its ID by an older pin: got %d, %v", id, err)
	}
	// A pin not yet applied keeps the ID from new allocations...
	newcomer := claim("ns/new", 0, nil, nil, []string{"a"}, 0)
	if id, _ := allocateAmong(newcomer, []Claim{pinner}, 0); id == 7 {
		t.Error("a new allocation took an ID a waiting pin asks for")
	}
	// ...unless it is refused: it asks for nothing.
	refused := pinner
	refused.Refused, refused.RouterID = true, 0
	if id, _ := allocateAmong(newcomer, []Claim{refused}, 0); id != 1 {
		t.Errorf("a refused pin kept an ID: got %d, want 1", id)
	}
}
