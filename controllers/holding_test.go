package controllers_test

import (
	"fmt"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
)

// TestHolderKeepsItsAddress: a LoadBalancer that asks for another's
// allocated address gets Conflict, and the holder keeps the address
// however often it is reconciled: asking dislodges nobody.
func TestHolderKeepsItsAddress(t *testing.T) {
	ns := namespace(t, "holding")
	node(t, "hold-1", "198.18.23.1", map[string]string{"pool": "holding"})
	service(t, ns, "web", "http", 80, 8080, "198.18.13.11")
	createClass(t, testClass("holding", "198.18.23.96/27"))
	holder := smallLB(ns, "holding", "", "holding")
	holder.Name = "holder"
	createLB(t, holder)
	waitForClassAndVIPs(t, holder, "holding", "198.18.23.96/24")
	waitApplied(t, holder)

	asker := smallLB(ns, "holding", "198.18.23.96", "holding")
	asker.Name = "asker"
	createLB(t, asker)
	waitDegraded(t, asker, v1alpha1.LoadBalancerConflictReason, "virtual IP 198.18.23.96 is held by LoadBalancer holding/holder")
	assertNothingApplied(t, asker)
	before := reconciles(t, holder)
	touch(t, holder)
	settle(t)
	// Reconciled since the touch: the address below is what a reconcile
	// kept, not what nobody looked at.
	reconciledAgain(t, holder, before, 1)
	if got := getLB(t, holder).Status.VirtualIPs; fmt.Sprint(got) != "[198.18.23.96/24]" {
		t.Errorf("the holder moved to %v", got)
	}
}

// TestDataPlaneNeverOutlivesItsLoadBalancer: a finalizer removed by hand
// is put back, and a LoadBalancer deleted without it still has its data
// plane deleted, so no orphan keeps serving an address that is handed out
// again.
func TestDataPlaneNeverOutlivesItsLoadBalancer(t *testing.T) {
	ns := namespace(t, "orphans")
	node(t, "orphan-1", "198.18.24.1", map[string]string{"pool": "orphans"})
	service(t, ns, "web", "http", 80, 8080, "198.18.14.11")
	createClass(t, testClass("orphans", "198.18.24.96/27"))
	lb := smallLB(ns, "orphans", "", "orphans")
	createLB(t, lb)
	checkOwnership(t, lb)

	removeFinalizers := func() {
		t.Helper()
		patch := []byte(`{"metadata":{"finalizers":null}}`)
		if err := k8s.Patch(ctx, getLB(t, lb), client.RawPatch("application/merge-patch+json", patch)); err != nil {
			t.Fatal(err)
		}
	}
	removeFinalizers()
	eventually(t, "the finalizer put back", func() error {
		if f := getLB(t, lb).Finalizers; len(f) != 1 {
			return fmt.Errorf("finalizers %v", f)
		}
		return nil
	})

	// Removed and deleted at once: whichever the operator sees first, the
	// data plane goes.
	removeFinalizers()
	if err := k8s.Delete(ctx, lb); err != nil {
		t.Fatal(err)
	}
	waitDataPlaneGone(t, lb)
}
