package controllers_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/cli"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
)

// TestNamespaceShare: a tenant creating LoadBalancers in a loop stops at
// its namespace's share of the class, with a condition naming the limit,
// and another tenant still gets an address and a router ID. A pinned
// router ID takes nothing from the LoadBalancer that holds it.
func TestNamespaceShare(t *testing.T) {
	greedy, other := namespace(t, "share-greedy"), namespace(t, "share-other")
	node(t, "sh-1", "198.18.20.1", map[string]string{"pool": "share"})
	for _, ns := range []string{greedy, other} {
		service(t, ns, "web", "http", 80, 8080, "198.18.12.11")
	}
	class := testClass("share", "198.18.20.96/27")
	class.Spec.Limits.MaxLoadBalancersPerNamespace = ptr.To(int32(3))
	class.Spec.Limits.MaxVirtualIPsPerNamespace = ptr.To(int32(4))
	createClass(t, class)

	var lbs []*v1alpha1.LoadBalancer
	for i := range 5 {
		lb := smallLB(greedy, "share", "", "share")
		lb.Name = fmt.Sprintf("greedy-%d", i)
		createLB(t, lb)
		lbs = append(lbs, lb)
		if i < 3 {
			waitApplied(t, lb)
			continue
		}
		waitDegraded(t, lb, v1alpha1.LoadBalancerLimitExceededReason,
			"namespace share-greedy has 3 LoadBalancers of LoadBalancerClass share served before this one", "allows 3 per namespace (limits.maxLoadBalancersPerNamespace)")
		assertNothingApplied(t, lb)
	}

	// The other tenant is served.
	fair := smallLB(other, "share", "", "share")
	fair.Name = "fair"
	createLB(t, fair)
	waitApplied(t, fair)
	eventually(t, "the other tenant's address and router ID", func() error {
		got := getLB(t, fair)
		if len(got.Status.VirtualIPs) != 1 || got.Status.VirtualRouterID == 0 {
			return fmt.Errorf("status.virtualIPs %v, virtualRouterID %d", got.Status.VirtualIPs, got.Status.VirtualRouterID)
		}
		return nil
	})

	// Its virtual IPs count too: 3 held, 2 more asked for, 4 allowed.
	wide := smallLB(other, "share", "", "share")
	wide.Name = "wide"
	wide.Spec.VirtualIPs = []string{"198.18.20.120", "198.18.20.121", "198.18.20.122", "198.18.20.123"}
	createLB(t, wide)
	waitDegraded(t, wide, v1alpha1.LoadBalancerLimitExceededReason, "1 virtual IPs of LoadBalancerClass share served before this LoadBalancer, which asks for 4", "limits.maxVirtualIPsPerNamespace")
	assertNothingApplied(t, wide)

	// A pin on a held router ID: refused, and the holder keeps its ID and
	// every object untouched.
	victim := getLB(t, lbs[0])
	before := resourceVersions(t, victim)
	pin := smallLB(other, "share", "", "share")
	pin.Name = "pin"
	pin.Spec.VRRP.VirtualRouterID = ptr.To(victim.Status.VirtualRouterID)
	createLB(t, pin)
	waitDegraded(t, pin, v1alpha1.LoadBalancerConflictReason, fmt.Sprintf("virtual router ID %d is held by LoadBalancer share-greedy/greedy-0", victim.Status.VirtualRouterID))
	assertNothingApplied(t, pin)
	time.Sleep(time.Second) // what a displacement would have written by now
	if got := getLB(t, victim).Status.VirtualRouterID; got != victim.Status.VirtualRouterID {
		t.Errorf("the holder's router ID moved from %d to %d", victim.Status.VirtualRouterID, got)
	}
	if changed := changedKeys(before, resourceVersions(t, victim)); len(changed) > 0 {
		t.Errorf("the holder's objects changed under a pin of its router ID: %v", changed)
	}

	// Room made: the oldest waiting LoadBalancer is served, and only it.
	deleteAndWait(t, lbs[1])
	eventually(t, "greedy-3 applied", func() error {
		got := getLB(t, lbs[3])
		if len(got.Status.VirtualIPs) == 0 {
			return fmt.Errorf("not applied: %+v", condition(got, v1alpha1.LoadBalancerDegradedCondition))
		}
		return nil
	})
	waitDegraded(t, lbs[4], v1alpha1.LoadBalancerLimitExceededReason, "limits.maxLoadBalancersPerNamespace")
	assertNothingApplied(t, lbs[4])
}

// TestPerLoadBalancerCaps: what one LoadBalancer may ask of nodes every
// tenant shares is capped by its class, and the class's caps bound the
// defaults of a LoadBalancer that sets nothing.
func TestPerLoadBalancerCaps(t *testing.T) {
	ns := namespace(t, "caps")
	node(t, "cp-1", "198.18.21.1", map[string]string{"pool": "caps"})
	service(t, ns, "web", "http", 80, 8080, "198.18.12.11")
	class := testClass("caps", "198.18.21.96/27")
	class.Spec.Limits.MaxServers = ptr.To(int32(8))
	class.Spec.Limits.MaxThreads = ptr.To(int32(2))
	class.Spec.Limits.MaxConnections = ptr.To(int32(5000))
	class.Spec.Limits.MaxTimeoutSeconds = ptr.To(int32(600))
	createClass(t, class)

	for _, tc := range []struct {
		name   string
		change func(*v1alpha1.LoadBalancerSpec)
		want   []string
	}{
		{"adverts", func(s *v1alpha1.LoadBalancerSpec) { s.VRRP.AdvertIntervalMilliseconds = ptr.To(int32(10)) },
			[]string{"spec.vrrp.advertIntervalMilliseconds", "limits.minAdvertIntervalMilliseconds"}},
		{"connections", func(s *v1alpha1.LoadBalancerSpec) { s.HAProxy.MaxConnections = ptr.To(int32(1000000)) },
			[]string{"spec.haproxy.maxConnections", "at most 5000 (limits.maxConnections)"}},
		{"listener-connections", func(s *v1alpha1.LoadBalancerSpec) { s.Listeners[0].Bind.MaxConnections = ptr.To(int32(6000)) },
			[]string{"spec.listeners[0].bind.maxConnections", "limits.maxConnections"}},
		{"threads", func(s *v1alpha1.LoadBalancerSpec) { s.HAProxy.Threads = ptr.To(int32(64)) },
			[]string{"spec.haproxy.threads", "at most 2 (limits.maxThreads)"}},
		{"timeouts", func(s *v1alpha1.LoadBalancerSpec) { s.HAProxy.Timeouts.TunnelSeconds = ptr.To(int32(86400)) },
			[]string{"spec.haproxy.timeouts.tunnelSeconds", "limits.maxTimeoutSeconds"}},
		{"servers", func(s *v1alpha1.LoadBalancerSpec) {
			s.Backends[0].ServiceRef.ServerSlots = ptr.To(int32(8)) // 8 slots and one static server
		}, []string{"spec.backends", "over all backends", "limits.maxServers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lb := smallLB(ns, "caps", "", "caps")
			lb.Name = tc.name
			tc.change(&lb.Spec)
			createLB(t, lb)
			waitDegraded(t, lb, v1alpha1.LoadBalancerNotAllowedByClassReason, tc.want...)
			assertNothingApplied(t, lb)
		})
	}

	t.Run("defaults within the caps", func(t *testing.T) {
		lb := smallLB(ns, "caps", "", "caps")
		lb.Name = "defaults"
		createLB(t, lb)
		cfg := waitApplied(t, lb)
		for _, want := range []string{"nbthread 2", "maxconn 5000", "timeout tunnel 600s", "hard-stop-after 300s"} {
			if !strings.Contains(cfg, want) {
				t.Errorf("haproxy.cfg lacks %q", want)
			}
		}
	})
}

// TestRenderRefusesWhatTheOperatorRefuses runs each refused spec through
// the operator and through `hakeeper render --class` with the same class
// and nodes: both refuse, in the same words.
func TestRenderRefusesWhatTheOperatorRefuses(t *testing.T) {
	ns := namespace(t, "parity")
	node(t, "pr-1", "198.18.22.1", map[string]string{"pool": "parity"})
	service(t, ns, "web", "http", 80, 8080, "198.18.12.11")
	class := testClass("parity", "198.18.22.96/27")
	class.Spec.Backends.AllowedCIDRs = []string{"198.18.0.0/16"}
	class.Spec.Backends.StaticServers = v1alpha1.StaticServersIPAddressesAndDNSNames
	createClass(t, class)
	classFile := filepath.Join(t.TempDir(), "class.yaml")
	class.APIVersion, class.Kind = v1alpha1.GroupVersion.String(), "LoadBalancerClass"
	data, err := yaml.Marshal(class)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(classFile, data, 0o644); err != nil {
		t.Fatal(err)
	}

	server := func(address string) func(*v1alpha1.LoadBalancerSpec) {
		return func(s *v1alpha1.LoadBalancerSpec) { s.Backends[0].Servers[0].Address = address }
	}
	for _, tc := range []struct {
		name   string
		change func(*v1alpha1.LoadBalancerSpec)
		want   string
	}{
		{"outside-allowed", server("8.8.8.8"), "8.8.8.8 is outside LoadBalancerClass parity's backends.allowedCIDRs"},
		{"node-address", server("198.18.22.1"), "198.18.22.1 is an address of node pr-1"},
		{"azure-wireserver", server("168.63.129.16"), "Azure's WireServer"},
		{"alibaba-metadata", server("100.100.100.200"), "Alibaba Cloud's instance metadata"},
		{"aws-metadata-v6", server("fd00:ec2::254"), "AWS's IPv6 instance metadata"},
		{"name-to-loopback", server(loopbackName(t)), loopbackName(t) + " resolves to 127."},
		{"adverts", func(s *v1alpha1.LoadBalancerSpec) { s.VRRP.AdvertIntervalMilliseconds = ptr.To(int32(10)) }, "limits.minAdvertIntervalMilliseconds"},
		// Decided after the class's policy, by the same function: the
		// address, outside every pool of the class.
		{"outside-pools", func(s *v1alpha1.LoadBalancerSpec) { s.VirtualIPs = []string{"198.18.99.100"} }, "198.18.99.100 is in none of LoadBalancerClass parity's pools"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lb := smallLB(ns, "parity", "198.18.22.100", "parity")
			lb.Name = tc.name
			tc.change(&lb.Spec)
			createLB(t, lb)
			c := waitDegraded(t, lb, v1alpha1.LoadBalancerNotAllowedByClassReason, tc.want)
			assertNothingApplied(t, lb)

			lb.APIVersion, lb.Kind = v1alpha1.GroupVersion.String(), "LoadBalancer"
			lb.ObjectMeta = metav1.ObjectMeta{Name: lb.Name, Namespace: lb.Namespace}
			doc, err := yaml.Marshal(lb)
			if err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			code := cli.Run(context.Background(), []string{"render", "-f", "-", "--class", classFile, "--node", "pr-1=198.18.22.1",
				"--servers", "web=198.18.12.11:8080"}, cli.Streams{In: bytes.NewReader(doc), Out: &out, Err: &errOut})
			if code == 0 {
				t.Fatalf("render accepted what the operator refused (%s):\n%s", c.Message, out.String())
			}
			for _, part := range strings.Split(c.Message, "; ") {
				if !strings.Contains(errOut.String(), part) {
					t.Errorf("render's refusal lacks the operator's %q:\n%s", part, errOut.String())
				}
			}
		})
	}
}

// TestRevocation: a tightened backend policy takes the refused servers
// away from a running LoadBalancer; a namespace the class stops allowing
// loses its data plane once status says why; a class in use cannot be
// deleted and says which LoadBalancers hold it.
func TestRevocation(t *testing.T) {
	ns := namespace(t, "revoke")
	node(t, "rv-1", "198.18.23.1", map[string]string{"pool": "revoke"})
	service(t, ns, "web", "http", 80, 8080, "198.18.12.11")
	class := testClass("revoke", "198.18.23.96/27")
	class.Spec.Backends.AllowedCIDRs = []string{"198.18.0.0/16"}
	class.Spec.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"hakeeper.io/revoke": "yes"}}
	createClass(t, class)
	setNamespaceLabel(t, ns, "hakeeper.io/revoke", "yes")

	lb := smallLB(ns, "revoke", "", "revoke")
	createLB(t, lb)
	eventually(t, "static server applied", func() error {
		if cfg := waitApplied(t, lb); !strings.Contains(cfg, "198.18.2.1:8080") {
			return fmt.Errorf("haproxy.cfg lacks the static server")
		}
		return nil
	})

	t.Run("an address the node holds but does not list", func(t *testing.T) {
		// rv-1's agent reports a CNI gateway at the Service endpoint's
		// address: HAProxy there would reach the node itself.
		reportNode(t, lb, "rv-1", contract.NodeReport{Interface: "eth0", Addresses: []string{"198.18.12.11"}})
		eventually(t, "the endpoint left out", func() error {
			cfg := configMap(t, dataPlaneNamespace, desired.NamesFor(lb).HAProxyConfigMap).Data[contract.KeyHAProxyConfig]
			if strings.Contains(cfg, "198.18.12.11") {
				return fmt.Errorf("haproxy.cfg still has endpoint 198.18.12.11")
			}
			return nil
		})
		waitDegraded(t, lb, v1alpha1.LoadBalancerNotAllowedByClassReason, "198.18.12.11 is an address of node rv-1")
		reportNode(t, lb, "rv-1", contract.NodeReport{Interface: "eth0"})
	})

	t.Run("tightened allowedCIDRs", func(t *testing.T) {
		patchClass(t, "revoke", func(c *v1alpha1.LoadBalancerClass) { c.Spec.Backends.AllowedCIDRs = []string{"198.18.12.0/24"} })
		eventually(t, "the refused server taken away", func() error {
			cfg := configMap(t, dataPlaneNamespace, desired.NamesFor(lb).HAProxyConfigMap).Data[contract.KeyHAProxyConfig]
			if strings.Contains(cfg, "198.18.2.1") {
				return fmt.Errorf("haproxy.cfg still has server 198.18.2.1")
			}
			return nil
		})
		waitDegraded(t, lb, v1alpha1.LoadBalancerNotAllowedByClassReason, "spec.backends[0].servers[0].address", "198.18.2.1 is outside")
	})

	t.Run("class in use", func(t *testing.T) {
		live := &v1alpha1.LoadBalancerClass{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: "revoke"}, live); err != nil {
			t.Fatal(err)
		}
		if err := k8s.Delete(ctx, live); err != nil {
			t.Fatal(err)
		}
		waitObjectEvent(t, "LoadBalancerClass", "revoke", "InUse", "revoke/lb")
		if err := k8s.Get(ctx, client.ObjectKey{Name: "revoke"}, live); err != nil || live.DeletionTimestamp == nil {
			t.Fatalf("a class in use: %v, deletionTimestamp %v", err, live.DeletionTimestamp)
		}
		newcomer := smallLB(ns, "revoke", "", "revoke")
		newcomer.Name = "newcomer"
		createLB(t, newcomer)
		waitDegraded(t, newcomer, v1alpha1.LoadBalancerClassNotFoundReason, "LoadBalancerClass revoke is being deleted")
		assertNothingApplied(t, newcomer)
		deleteAndWait(t, newcomer)
	})

	t.Run("namespace no longer allowed", func(t *testing.T) {
		setNamespaceLabel(t, ns, "hakeeper.io/revoke", "")
		waitDegraded(t, lb, v1alpha1.LoadBalancerNotAllowedByClassReason, "does not allow namespace revoke")
		eventually(t, "data plane deleted and addresses released", func() error {
			got := getLB(t, lb)
			if len(got.Status.VirtualIPs) > 0 || got.Status.VirtualRouterID != 0 {
				return fmt.Errorf("status still holds %v, router ID %d", got.Status.VirtualIPs, got.Status.VirtualRouterID)
			}
			return nil
		})
		assertNothingApplied(t, lb)
		waitEvent(t, lb, "Revoked")
		deleteAndWait(t, lb)
		eventually(t, "the class deleted once unused", func() error {
			err := k8s.Get(ctx, client.ObjectKey{Name: "revoke"}, &v1alpha1.LoadBalancerClass{})
			if client.IgnoreNotFound(err) != nil || err == nil {
				return fmt.Errorf("class still there: %v", err)
			}
			return nil
		})
	})
}

// loopbackName is a name the system's resolver answers with a loopback
// address (from /etc/hosts): the machine's own name, or one of Debian's
// loopback aliases. The API refuses "localhost" itself.
func loopbackName(t *testing.T) string {
	t.Helper()
	host, _ := os.Hostname()
	for _, name := range []string{strings.ToLower(host), "localhost.localdomain", "ip6-localhost", "ip6-loopback"} {
		addrs, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip4", name)
		if err == nil && len(addrs) > 0 && addrs[0].IsLoopback() {
			return name
		}
	}
	t.Skip("no name resolves to an IPv4 loopback address on this machine")
	return ""
}

// setNamespaceLabel sets a label on a namespace, or removes it for "".
func setNamespaceLabel(t *testing.T, name, key, value string) {
	t.Helper()
	ns := &corev1.Namespace{}
	if err := k8s.Get(ctx, client.ObjectKey{Name: name}, ns); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(ns.DeepCopy())
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	if value == "" {
		delete(ns.Labels, key)
	} else {
		ns.Labels[key] = value
	}
	if err := k8s.Patch(ctx, ns, patch); err != nil {
		t.Fatal(err)
	}
}

// patchClass changes a class as its admin would.
func patchClass(t *testing.T, name string, change func(*v1alpha1.LoadBalancerClass)) {
	t.Helper()
	c := &v1alpha1.LoadBalancerClass{}
	if err := k8s.Get(ctx, client.ObjectKey{Name: name}, c); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(c.DeepCopy())
	change(c)
	if err := k8s.Patch(ctx, c, patch); err != nil {
		t.Fatal(err)
	}
}

// waitObjectEvent waits for an event about a cluster-scoped object whose
// note mentions want.
func waitObjectEvent(t *testing.T, kind, name, reason, want string) {
	t.Helper()
	eventually(t, fmt.Sprintf("event %s on %s %s", reason, kind, name), func() error {
		var list eventsv1.EventList
		if err := k8s.List(ctx, &list); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Regarding.Kind == kind && e.Regarding.Name == name && e.Reason == reason && strings.Contains(e.Note, want) {
				return nil
			}
		}
		return fmt.Errorf("no such event among %d", len(list.Items))
	})
}
