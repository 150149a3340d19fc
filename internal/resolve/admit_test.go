package resolve

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
)

// TestAdmitServers: written addresses and resolved names are checked
// alike; the refused are left out with the reason, names that do not
// resolve left out apart, and what is kept is rendered by address.
func TestAdmitServers(t *testing.T) {
	class := &v1alpha1.LoadBalancerClass{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Spec: v1alpha1.LoadBalancerClassSpec{
		Backends: v1alpha1.BackendPolicy{StaticServers: v1alpha1.StaticServersIPAddressesAndDNSNames, AllowedCIDRs: []string{"198.18.0.0/16", "fd00::/8"}}}}
	policy, err := NewBackendPolicy(class, nil, map[netip.Addr]string{netip.MustParseAddr("198.18.0.11"): "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string][]netip.Addr{
		"good.example":  {netip.MustParseAddr("198.18.0.21")},
		"mixed.example": {netip.MustParseAddr("198.18.0.22"), netip.MustParseAddr("198.18.0.11")},
	}
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		if a, ok := names[host]; ok {
			return a, nil
		}
		return nil, errors.New("no such host")
	}
	spec := &v1alpha1.LoadBalancerSpec{Backends: []v1alpha1.Backend{{Name: "web", Servers: []v1alpha1.Server{
		{Name: "ok", Address: "198.18.0.20"}, {Name: "named", Address: "good.example"}, {Name: "mixed", Address: "mixed.example"},
		{Name: "wire", Address: "168.63.129.16"}, {Name: "ali", Address: "100.100.100.200"}, {Name: "aws", Address: "fd00:ec2::254"},
		{Name: "node", Address: "198.18.0.11"}, {Name: "gone", Address: "gone.example"},
	}}}}
	a := Admit(context.Background(), class, policy, spec, lookup)
	if len(a.Errors) > 0 {
		t.Fatal(a.Errors)
	}
	var kept []string
	for _, s := range a.Spec.Backends[0].Servers {
		kept = append(kept, s.Name+"="+s.Address)
	}
	if got := strings.Join(kept, " "); got != "ok=198.18.0.20 named=198.18.0.21" || !a.Named {
		t.Errorf("kept %q (named %v)", got, a.Named)
	}
	left := strings.Join(a.LeftOut, "\n")
	for _, want := range []string{
		"servers[2].address: mixed.example resolves to 198.18.0.11 is an address of node node-a",
		"servers[3].address: 168.63.129.16 is Azure's WireServer",
		"servers[4].address: 100.100.100.200 is Alibaba Cloud's instance metadata",
		"servers[5].address: fd00:ec2::254 is AWS's IPv6 instance metadata",
		"servers[6].address: 198.18.0.11 is an address of node node-a",
	} {
		if !strings.Contains(left, want) {
			t.Errorf("left out lacks %q:\n%s", want, left)
		}
	}
	if len(a.Unresolved) != 1 || !strings.Contains(a.Unresolved[0], "servers[7] (gone) left out: no such host") {
		t.Errorf("unresolved %v", a.Unresolved)
	}
	if spec.Backends[0].Servers[1].Address != "good.example" {
		t.Error("Admit changed the spec it was given")
	}
}

// TestNamespaceShare: holders come before newcomers, then the older; the
// count and the virtual IPs are each limited.
func TestNamespaceShare(t *testing.T) {
	l := LimitsOf(&v1alpha1.LoadBalancerClass{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Spec: v1alpha1.LoadBalancerClassSpec{
		Limits: v1alpha1.ClassLimits{MaxLoadBalancersPerNamespace: ptr.To(int32(2)), MaxVirtualIPsPerNamespace: ptr.To(int32(3))}}})
	at := func(s int) time.Time { return time.Unix(int64(s), 0) }
	old := Tenancy{Key: "ns/old", Created: at(1), VirtualIPs: 1}
	holder := Tenancy{Key: "ns/holder", Created: at(5), Holds: true, VirtualIPs: 1}
	young := Tenancy{Key: "ns/young", Created: at(9), VirtualIPs: 1}
	all := []Tenancy{old, holder, young}
	if msg := l.CheckNamespace("ns", holder, all); msg != "" {
		t.Errorf("a holder refused: %s", msg)
	}
	if msg := l.CheckNamespace("ns", old, all); msg != "" {
		t.Errorf("the oldest newcomer refused: %s", msg)
	}
	if msg := l.CheckNamespace("ns", young, all); !strings.Contains(msg, "has 2 LoadBalancers of LoadBalancerClass c served before this one") || !strings.Contains(msg, "limits.maxLoadBalancersPerNamespace") {
		t.Errorf("the third: %q", msg)
	}
	wide := Tenancy{Key: "ns/wide", Created: at(2), VirtualIPs: 2}
	if msg := l.CheckNamespace("ns", wide, []Tenancy{holder}); msg != "" {
		t.Errorf("1 held and 2 asked for, 3 allowed: refused: %s", msg)
	}
	wide.VirtualIPs = 3
	if msg := l.CheckNamespace("ns", wide, []Tenancy{holder}); !strings.Contains(msg, "asks for 3") || !strings.Contains(msg, "limits.maxVirtualIPsPerNamespace") {
		t.Errorf("1 held and 3 asked for, 3 allowed: %q", msg)
	}
	// The wide request waits, and blocks no smaller one behind it.
	small := Tenancy{Key: "ns/small", Created: at(3), VirtualIPs: 1}
	if msg := l.CheckNamespace("ns", small, []Tenancy{holder, wide}); msg != "" {
		t.Errorf("a request that fits, behind one that does not: %s", msg)
	}
	// Holders stay served under a lowered limit; newcomers wait.
	other := Tenancy{Key: "ns/other-holder", Created: at(7), Holds: true, VirtualIPs: 1}
	third := Tenancy{Key: "ns/third-holder", Created: at(8), Holds: true, VirtualIPs: 1}
	if msg := l.CheckNamespace("ns", third, []Tenancy{holder, other}); msg != "" {
		t.Errorf("a holder beyond a lowered limit: %s", msg)
	}
	if msg := l.CheckNamespace("ns", old, []Tenancy{holder, other, third}); !strings.Contains(msg, "has 3 LoadBalancers") {
		t.Errorf("a newcomer beside three holders under a limit of 2: %q", msg)
	}
}
