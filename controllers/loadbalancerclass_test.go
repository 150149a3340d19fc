package controllers_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
)

// waitDegraded waits until the LoadBalancer is Degraded with reason and a
// message holding every one of parts, for its current generation.
func waitDegraded(t *testing.T, lb *v1alpha1.LoadBalancer, reason string, parts ...string) *metav1.Condition {
	t.Helper()
	var c *metav1.Condition
	eventually(t, fmt.Sprintf("%s Degraded %s", lb.Name, reason), func() error {
		got := getLB(t, lb)
		c = condition(got, v1alpha1.LoadBalancerDegradedCondition)
		if c == nil || c.Status != metav1.ConditionTrue || c.Reason != reason || c.ObservedGeneration != got.Generation {
			return fmt.Errorf("degraded: %+v", c)
		}
		for _, p := range parts {
			if !strings.Contains(c.Message, p) {
				return fmt.Errorf("message %q does not mention %q", c.Message, p)
			}
		}
		return nil
	})
	return c
}

// waitApplied waits until the LoadBalancer's haproxy.cfg is in the
// data-plane namespace and returns it.
func waitApplied(t *testing.T, lb *v1alpha1.LoadBalancer) string {
	t.Helper()
	return configMap(t, dataPlaneNamespace, desired.NamesFor(lb).HAProxyConfigMap).Data[contract.KeyHAProxyConfig]
}

// TestRequestedVIPIsANodeAddress: a virtual IP that is a node's address
// would be taken from the node by keepalived. Allocation skips it; a
// request for it is refused with AddressUnavailable, naming the field and
// the node, and nothing is applied.
func TestRequestedVIPIsANodeAddress(t *testing.T) {
	ns := namespace(t, "nodeaddr")
	createClass(t, testClass("nodeaddr", "198.18.10.64/27"))
	// The pool's lowest address is a node's.
	node(t, "na-1", "198.18.10.64", map[string]string{"pool": "nodeaddr"})
	service(t, ns, "web", "http", 80, 8080, "198.18.12.11")

	allocated := smallLB(ns, "nodeaddr", "", "nodeaddr")
	allocated.Name = "allocated"
	createLB(t, allocated)
	waitApplied(t, allocated)
	eventually(t, "an allocated address other than the node's", func() error {
		vips := getLB(t, allocated).Status.VirtualIPs
		if len(vips) != 1 {
			return fmt.Errorf("status.virtualIPs %v", vips)
		}
		p := netip.MustParsePrefix(vips[0])
		if p.Addr() == netip.MustParseAddr("198.18.10.64") || !netip.MustParsePrefix("198.18.10.64/27").Contains(p.Addr()) || p.Bits() != 24 {
			return fmt.Errorf("allocated %s: want an address of 198.18.10.64/27 other than node na-1's, with prefix 24", p)
		}
		return nil
	})

	requested := smallLB(ns, "nodeaddr", "198.18.10.64", "nodeaddr")
	requested.Name = "requested"
	createLB(t, requested)
	waitDegraded(t, requested, v1alpha1.LoadBalancerAddressUnavailableReason, "spec.virtualIPs[0]", "198.18.10.64", "node na-1")
	assertNothingApplied(t, requested)
	if vips := getLB(t, requested).Status.VirtualIPs; len(vips) != 0 {
		t.Errorf("a refused LoadBalancer reports virtual IPs %v", vips)
	}

	t.Run("usable once the node gives the address up", func(t *testing.T) {
		n := &corev1.Node{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: "na-1"}, n); err != nil {
			t.Fatal(err)
		}
		n.Status.Addresses[0].Address = "198.18.10.1"
		if err := k8s.Status().Update(ctx, n); err != nil {
			t.Fatal(err)
		}
		if cfg := waitApplied(t, requested); !strings.Contains(cfg, "bind 198.18.10.64:80 ") {
			t.Errorf("haproxy.cfg does not bind 198.18.10.64:\n%s", cfg)
		}
		waitForClassAndVIPs(t, requested, "nodeaddr", "198.18.10.64/24")
	})

	t.Run("a node outside the LoadBalancer's selector", func(t *testing.T) {
		// Holds the address but runs no data plane of this LoadBalancer.
		other := node(t, "na-x", "198.18.10.90", nil)
		lb := smallLB(ns, "nodeaddr", "198.18.10.90", "nodeaddr")
		lb.Name = "requested-x"
		createLB(t, lb)
		waitDegraded(t, lb, v1alpha1.LoadBalancerAddressUnavailableReason, "spec.virtualIPs[0]", "198.18.10.90", "node na-x")
		assertNothingApplied(t, lb)
		deleteAndWait(t, other)
		waitApplied(t, lb)
		waitForClassAndVIPs(t, lb, "nodeaddr", "198.18.10.90/24")
	})
}

// TestClassRefusals: what the class does not allow, or a class that does
// not exist, is reported and nothing is applied; once the obstacle goes
// (the class appears, the namespace is labelled), the LoadBalancer is
// applied without being touched.
func TestClassRefusals(t *testing.T) {
	ns := namespace(t, "refusals")
	node(t, "rf-1", "198.18.13.1", map[string]string{"pool": "refusals"})
	service(t, ns, "web", "http", 80, 8080, "198.18.12.11")
	createClass(t, testClass("refusals", "198.18.13.96/27"))

	t.Run("virtual IP outside the pools", func(t *testing.T) {
		lb := smallLB(ns, "refusals", "198.18.13.50", "refusals")
		lb.Name = "outside"
		createLB(t, lb)
		waitDegraded(t, lb, v1alpha1.LoadBalancerNotAllowedByClassReason, "spec.virtualIPs[0]", "198.18.13.50", "198.18.13.96/27")
		assertNothingApplied(t, lb)
	})

	t.Run("namespace the class does not select", func(t *testing.T) {
		// The sample class cloud allows only namespace shop.
		lb := smallLB(ns, "cloud", "198.18.0.121", "refusals")
		lb.Name = "cloud"
		createLB(t, lb)
		waitDegraded(t, lb, v1alpha1.LoadBalancerNotAllowedByClassReason, "cloud", "namespace refusals")
		assertNothingApplied(t, lb)
	})

	t.Run("labelling the namespace lets it in", func(t *testing.T) {
		tenantNS := namespace(t, "refusals-tenant")
		service(t, tenantNS, "web", "http", 80, 8080, "198.18.12.11")
		class := testClass("refusals-tenants", "198.18.14.96/27")
		class.Spec.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"hakeeper.io/tenant": "yes"}}
		createClass(t, class)
		lb := smallLB(tenantNS, "refusals-tenants", "", "refusals")
		createLB(t, lb)
		waitDegraded(t, lb, v1alpha1.LoadBalancerNotAllowedByClassReason, "refusals-tenants", "namespace refusals-tenant")
		assertNothingApplied(t, lb)
		nsObj := &corev1.Namespace{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: tenantNS}, nsObj); err != nil {
			t.Fatal(err)
		}
		nsObj.Labels["hakeeper.io/tenant"] = "yes"
		if err := k8s.Update(ctx, nsObj); err != nil {
			t.Fatal(err)
		}
		waitApplied(t, lb)
		waitClass(t, lb, "refusals-tenants")
	})

	t.Run("class not found until it is created", func(t *testing.T) {
		lb := smallLB(ns, "refusals-later", "198.18.15.100", "refusals")
		lb.Name = "later"
		createLB(t, lb)
		waitDegraded(t, lb, v1alpha1.LoadBalancerClassNotFoundReason, "refusals-later")
		assertNothingApplied(t, lb)
		createClass(t, testClass("refusals-later", "198.18.15.96/27"))
		cfg := waitApplied(t, lb)
		if !strings.Contains(cfg, "bind 198.18.15.100:80") {
			t.Errorf("haproxy.cfg does not bind the requested address:\n%s", cfg)
		}
		waitForClassAndVIPs(t, lb, "refusals-later", "198.18.15.100/24")
	})

	t.Run("no className takes the default class", func(t *testing.T) {
		lb := smallLB(ns, "", "", "refusals")
		lb.Name = "default"
		createLB(t, lb)
		waitApplied(t, lb)
		waitClass(t, lb, "edge")
		vips := getLB(t, lb).Status.VirtualIPs
		if len(vips) != 1 || !netip.MustParsePrefix("198.18.0.96/27").Contains(netip.MustParsePrefix(vips[0]).Addr()) || !strings.HasSuffix(vips[0], "/24") {
			t.Errorf("status.virtualIPs %v: want one address of class edge's pool 198.18.0.96/27, with prefix 24", vips)
		}
	})

	t.Run("several default classes", func(t *testing.T) {
		second := testClass("refusals-second-default", "198.18.16.96/27")
		second.Annotations = map[string]string{v1alpha1.AnnotationDefaultClass: "true"}
		createClass(t, second)
		lb := smallLB(ns, "", "", "refusals")
		lb.Name = "ambiguous"
		createLB(t, lb)
		waitDegraded(t, lb, v1alpha1.LoadBalancerClassNotFoundReason, "several", "edge", "refusals-second-default")
		assertNothingApplied(t, lb)
		// With one default left, the LoadBalancer takes it.
		deleteAndWait(t, second)
		waitApplied(t, lb)
		waitClass(t, lb, "edge")
	})
}

// waitClass waits until status names the class in use.
func waitClass(t *testing.T, lb *v1alpha1.LoadBalancer, class string) {
	t.Helper()
	eventually(t, lb.Name+" status.className", func() error {
		if got := getLB(t, lb).Status.ClassName; got != class {
			return fmt.Errorf("status.className %q, want %q", got, class)
		}
		return nil
	})
}

// TestBackendPolicy: HAProxy runs on the host's network, so a static
// server at a node's address or a virtual IP is refused (nothing applied),
// and a Service endpoint at a loopback, link-local or not-allowed address is
// left out of haproxy.cfg and reported.
func TestBackendPolicy(t *testing.T) {
	ns := namespace(t, "backends")
	node(t, "bp-1", "198.18.11.1", map[string]string{"pool": "backends"})
	class := testClass("backends", "198.18.11.96/27")
	class.Spec.Backends.AllowedCIDRs = []string{"198.18.0.0/16"}
	createClass(t, class)
	service(t, ns, "web", "http", 80, 8080, "198.18.12.11")

	for _, tc := range []struct{ name, address, why string }{
		{"node-server", "198.18.11.1", "node bp-1"},
		{"pool-server", "198.18.11.120", "virtual IP pool backends"},
		{"outside-server", "10.1.2.3", "allowedCIDRs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lb := smallLB(ns, "backends", "", "backends")
			lb.Name = tc.name
			lb.Spec.Backends[0].Servers[0].Address = tc.address
			createLB(t, lb)
			waitDegraded(t, lb, v1alpha1.LoadBalancerNotAllowedByClassReason, "spec.backends[0].servers[0].address", tc.address, tc.why)
			assertNothingApplied(t, lb)
		})
	}

	t.Run("no static servers", func(t *testing.T) {
		none := testClass("backends-none", "198.18.17.96/27")
		none.Spec.Backends.StaticServers = v1alpha1.StaticServersNone
		createClass(t, none)
		lb := smallLB(ns, "backends-none", "", "backends")
		lb.Name = "static"
		createLB(t, lb)
		waitDegraded(t, lb, v1alpha1.LoadBalancerNotAllowedByClassReason, "spec.backends[0].servers[0].address", "allows no static servers")
		assertNothingApplied(t, lb)
	})

	t.Run("refused endpoints are left out and reported", func(t *testing.T) {
		// Endpoints at a node's address, in the pool, outside allowedCIDRs
		// or multicast, beside two allowed ones.
		refused := map[string]string{
			"198.18.11.1":   "198.18.11.1 is an address of node bp-1",
			"198.18.11.100": "198.18.11.100 is in the virtual IP pool backends",
			"10.1.2.3":      "10.1.2.3 is outside LoadBalancerClass backends's backends.allowedCIDRs",
			"239.1.2.3":     "239.1.2.3 is not a unicast address",
		}
		endpointSlice(t, ns, "web-refused", "web", "http", 8080, discoveryv1.AddressTypeIPv4,
			"198.18.11.1", "198.18.11.100", "10.1.2.3", "239.1.2.3", "198.18.12.12")
		// Loopback and link-local (cloud metadata) endpoints: this API
		// server refuses them in EndpointSlices; should one accept them,
		// they must be left out too.
		for i, addr := range []string{"127.0.0.1", "169.254.169.254"} {
			s := &discoveryv1.EndpointSlice{
				ObjectMeta:  metav1.ObjectMeta{Name: fmt.Sprintf("web-local-%d", i), Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
				AddressType: discoveryv1.AddressTypeIPv4,
				Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(8080))}},
				Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
			}
			switch err := k8s.Create(ctx, s); {
			case err == nil:
				refused[addr] = addr
			case apierrors.IsInvalid(err):
				t.Logf("the API server refuses an EndpointSlice at %s: %v", addr, err)
			default:
				t.Fatal(err)
			}
		}
		lb := smallLB(ns, "backends", "", "backends")
		lb.Name = "endpoints"
		lb.Spec.Backends[0].ServiceRef.ServerSlots = ptr.To(int32(8))
		createLB(t, lb)
		var parts []string
		for _, why := range refused {
			parts = append(parts, why)
		}
		c := waitDegraded(t, lb, v1alpha1.LoadBalancerNotAllowedByClassReason, parts...)
		if strings.Contains(c.Message, "198.18.12.11") || strings.Contains(c.Message, "198.18.12.12") {
			t.Errorf("an allowed endpoint is reported: %s", c.Message)
		}
		var cfg string
		eventually(t, "allowed endpoints in haproxy.cfg", func() error {
			cfg = waitApplied(t, lb)
			for _, ep := range []string{"198.18.12.11:8080", "198.18.12.12:8080", "198.18.2.1:8080"} {
				if !strings.Contains(cfg, ep) {
					return fmt.Errorf("haproxy.cfg lacks %s", ep)
				}
			}
			return nil
		})
		for addr := range refused {
			if strings.Contains(cfg, " "+addr+":") {
				t.Errorf("haproxy.cfg holds refused endpoint %s:\n%s", addr, cfg)
			}
		}
		if got := getLB(t, lb).Status.Backends; len(got) != 1 || got[0].ServersTotal != 3 {
			t.Errorf("status.backends %+v: want 3 servers (one static, two allowed endpoints)", got)
		}
	})
}
