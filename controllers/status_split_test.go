package controllers

import (
	"context"
	"net/netip"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/plan"
	"github.com/hakeeper/hakeeper/internal/render"
)

// TestSplitBrainWaitsOnItsClock: two holders of a virtual IP are a split
// brain only once seen for splitBrainAfter; until then the reconcile asks
// to come back when it would be. On a fake clock, no sleep.
func TestSplitBrainWaitsOnItsClock(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Unix(1000, 0))
	r := &LoadBalancerReconciler{Clock: clk}
	vip := "198.18.0.111"
	scopeWith := func(holders ...string) *scope {
		s := &scope{
			lb: &v1alpha1.LoadBalancer{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}},
			Plan: &plan.Plan{VirtualIPs: []netip.Prefix{netip.MustParsePrefix(vip + "/24")},
				Nodes: []render.Node{{Name: "a"}, {Name: "b"}}},
			reports: map[string]contract.NodeReport{},
		}
		for _, n := range []string{"a", "b"} {
			s.reports[n] = contract.NodeReport{HoldsObserved: true}
		}
		for _, h := range holders {
			s.reports[h] = contract.NodeReport{HoldsObserved: true, Holds: []string{vip}}
		}
		return s
	}
	for _, step := range []struct {
		advance    time.Duration
		holders    []string
		pending    bool
		retryAfter time.Duration
	}{
		{0, []string{"a", "b"}, true, splitBrainAfter},
		{time.Second, []string{"a", "b"}, true, splitBrainAfter - time.Second},
		{600 * time.Millisecond, []string{"a", "b"}, false, 0}, // lasted: reported
		{0, []string{"b"}, false, 0},                           // over: the wait starts afresh
		{0, []string{"a", "b"}, true, splitBrainAfter},
	} {
		clk.SetTime(clk.Now().Add(step.advance))
		s := scopeWith(step.holders...)
		if err := r.observeHolders(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		if s.splitBrainPending != step.pending || s.retryAfter != step.retryAfter {
			t.Errorf("at %v with holders %v: pending %v, retry after %v; want %v, %v",
				clk.Now().Sub(time.Unix(1000, 0)), step.holders, s.splitBrainPending, s.retryAfter, step.pending, step.retryAfter)
		}
	}
}
