package controllers_test

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
)

// TestAllocationBurst creates LoadBalancers without virtual IPs all at
// once, faster than the manager's cache follows their status, from a class
// whose pools hold exactly as many addresses: each gets its own, inside the
// pools, and keeps it; the pools are then exhausted; an address is free
// again once its LoadBalancer is deleted.
func TestAllocationBurst(t *testing.T) {
	const count = 20
	ns := namespace(t, "allocation")
	node(t, "al-1", "198.18.7.1", map[string]string{"pool": "allocation"})
	service(t, ns, "web", "http", 80, 8080, "198.18.12.11")
	class := testClass("allocation", "198.18.7.64/28")
	// 16 + 4 = 20 addresses, with prefix length 24 on the interface.
	class.Spec.VirtualIPPools = append(class.Spec.VirtualIPPools,
		v1alpha1.VirtualIPPool{Name: "allocation-small", CIDR: "198.18.7.80/30", PrefixLength: ptr.To(int32(24))})
	class.Spec.Limits.MaxLoadBalancersPerNamespace = ptr.To(int32(count + 2))
	createClass(t, class)
	pools := []netip.Prefix{netip.MustParsePrefix("198.18.7.64/28"), netip.MustParsePrefix("198.18.7.80/30")}
	inPools := func(a netip.Addr) bool { return pools[0].Contains(a) || pools[1].Contains(a) }

	lbs := make([]*v1alpha1.LoadBalancer, count)
	for i := range lbs {
		lbs[i] = smallLB(ns, "allocation", "", "allocation")
		lbs[i].Name = fmt.Sprintf("burst-%02d", i)
	}
	var wg sync.WaitGroup
	errs := make([]error, count)
	for i, lb := range lbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = k8s.Create(ctx, lb)
		}()
	}
	wg.Wait()
	for i, lb := range lbs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		t.Cleanup(func() { deleteAndWait(t, lb) })
	}

	// seen is the first address status gave each LoadBalancer: an address
	// must never move, not even while the burst settles.
	seen := map[string]netip.Addr{}
	var moved []string
	// held maps each LoadBalancer to its address, checking every address is
	// distinct, in the pools, with prefix 24.
	held := func() (map[string]netip.Addr, error) {
		out := map[string]netip.Addr{}
		owner := map[netip.Addr]string{}
		var problems []error
		for _, lb := range lbs {
			got := &v1alpha1.LoadBalancer{}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(lb), got); err != nil {
				return nil, err
			}
			if len(got.Status.VirtualIPs) != 1 {
				problems = append(problems, fmt.Errorf("%s: status.virtualIPs %v", lb.Name, got.Status.VirtualIPs))
				continue
			}
			p, err := netip.ParsePrefix(got.Status.VirtualIPs[0])
			if err != nil || p.Bits() != 24 || !inPools(p.Addr()) {
				problems = append(problems, fmt.Errorf("%s: %s is not an address of the pools with prefix 24", lb.Name, got.Status.VirtualIPs[0]))
				continue
			}
			if before, ok := seen[lb.Name]; ok && before != p.Addr() {
				moved = append(moved, fmt.Sprintf("%s: %s, then %s", lb.Name, before, p.Addr()))
			}
			seen[lb.Name] = p.Addr()
			if other, ok := owner[p.Addr()]; ok {
				problems = append(problems, fmt.Errorf("%s and %s share %s", other, lb.Name, p.Addr()))
			}
			owner[p.Addr()] = lb.Name
			out[lb.Name] = p.Addr()
		}
		return out, errors.Join(problems...)
	}
	var first map[string]netip.Addr
	eventually(t, "distinct addresses from the pools", func() error {
		var err error
		first, err = held()
		return err
	})
	if len(moved) > 0 {
		t.Errorf("allocated addresses moved: %s", strings.Join(moved, "; "))
	}
	checkBinds := func() error {
		for _, lb := range lbs {
			cm := configMap(t, dataPlaneNamespace, desired.NamesFor(lb).HAProxyConfigMap)
			if want := fmt.Sprintf("bind %s:80 ", first[lb.Name]); !strings.Contains(cm.Data[contract.KeyHAProxyConfig], want) {
				return fmt.Errorf("%s: haproxy.cfg lacks %q", lb.Name, want)
			}
		}
		return nil
	}
	eventually(t, "haproxy.cfg binds each allocated address", checkBinds)

	t.Run("allocations are stable", func(t *testing.T) {
		// An annotation makes the manager reconcile every one again, at once.
		for _, lb := range lbs {
			touch(t, lb)
		}
		settle(t)
		again, err := held()
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(again) != fmt.Sprint(first) {
			t.Errorf("addresses moved after a reconcile:\nbefore %v\nafter  %v", first, again)
		}
		// A spec change, which status must acknowledge, proves a reconcile.
		for i, lb := range lbs {
			patch := fmt.Appendf(nil, `{"spec":{"haproxy":{"maxConnections":%d}}}`, 1000+i)
			if err := k8s.Patch(ctx, &v1alpha1.LoadBalancer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: lb.Name}},
				client.RawPatch("application/merge-patch+json", patch)); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, "every spec change reconciled", func() error {
			for _, lb := range lbs {
				got := getLB(t, lb)
				if got.Status.ObservedGeneration != got.Generation {
					return fmt.Errorf("%s: observed generation %d of %d", lb.Name, got.Status.ObservedGeneration, got.Generation)
				}
			}
			return nil
		})
		if again, err = held(); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(again) != fmt.Sprint(first) {
			t.Errorf("addresses moved after a spec change:\nbefore %v\nafter  %v", first, again)
		}
		if len(moved) > 0 {
			t.Errorf("allocated addresses moved: %s", strings.Join(moved, "; "))
		}
		if err := checkBinds(); err != nil {
			t.Error(err)
		}
	})

	// Created in a subtest, deleted with the others.
	newer := smallLB(ns, "allocation", "", "allocation")
	newer.Name = "newer"
	t.Cleanup(func() { deleteAndWait(t, newer) })
	t.Run("a deleted LoadBalancer's address goes to a new one", func(t *testing.T) {
		gone := lbs[7]
		freed := first[gone.Name]
		deleteAndWait(t, gone)
		// The only free address: a new LoadBalancer can get it only if it
		// was released.
		create(t, newer)
		waitForClassAndVIPs(t, newer, "allocation", netip.PrefixFrom(freed, 24).String())
		if cfg := waitApplied(t, newer); !strings.Contains(cfg, fmt.Sprintf("bind %s:80 ", freed)) {
			t.Errorf("haproxy.cfg does not bind %s:\n%s", freed, cfg)
		}
	})

	extra := smallLB(ns, "allocation", "", "allocation")
	extra.Name = "extra"
	createLB(t, extra)
	t.Run("the pools are exhausted", func(t *testing.T) {
		waitDegraded(t, extra, v1alpha1.LoadBalancerAddressUnavailableReason, "exhausted", "198.18.7.64/28", "198.18.7.80/30")
		assertNothingApplied(t, extra)
	})

	t.Run("a LoadBalancer waiting for an address gets a released one", func(t *testing.T) {
		gone := lbs[11]
		freed := first[gone.Name]
		deleteAndWait(t, gone)
		waitForClassAndVIPs(t, extra, "allocation", netip.PrefixFrom(freed, 24).String())
	})
}
