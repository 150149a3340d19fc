package controllers

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/plan"
	"github.com/hakeeper/hakeeper/internal/render"
)

// TestComputeStatus derives the whole status from a reconcile's facts, as
// the reconciler does at its end, with no API server: each case names the
// conditions (type: status and reason) and fields it must produce.
func TestComputeStatus(t *testing.T) {
	const gen = 4
	vip := netip.MustParsePrefix("198.18.0.100/24")
	lb := func() *v1alpha1.LoadBalancer {
		return &v1alpha1.LoadBalancer{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Generation: gen},
			Spec:       v1alpha1.LoadBalancerSpec{Backends: []v1alpha1.Backend{{Name: "app"}}},
			Status: v1alpha1.LoadBalancerStatus{ObservedGeneration: gen - 1, VirtualIPs: []string{vip.String()}, VirtualRouterID: 9,
				Conditions: []metav1.Condition{{Type: v1alpha1.LoadBalancerReadyCondition, Status: metav1.ConditionTrue,
					Reason: v1alpha1.LoadBalancerAvailableReason, Message: "Node a serves"}}},
		}
	}
	report := func(hash string, holds ...string) contract.NodeReport {
		return contract.NodeReport{Healthy: true, ConfigHash: hash, Role: v1alpha1.VRRPRoleBackup, HoldsObserved: true, Holds: holds,
			Backends: map[string]contract.BackendCount{"app": {Up: 2, Total: 2}}}
	}
	// applied is a scope after a whole reconcile: nodes a (100) and b (50),
	// both on the current config, a holding the address.
	applied := func() *scope {
		return &scope{
			className: "edge",
			Plan: &plan.Plan{
				Class:    &v1alpha1.LoadBalancerClass{ObjectMeta: metav1.ObjectMeta{Name: "edge"}},
				RouterID: 9, VirtualIPs: []netip.Prefix{vip},
				Nodes:        []render.Node{{Name: "a", Address: "198.18.0.11", Priority: 100}, {Name: "b", Address: "198.18.0.12", Priority: 50}},
				ExpectedHash: map[string]string{"a": "h1", "b": "h1"},
				ServersTotal: map[string]int32{"app": 2},
			},
			reports: map[string]contract.NodeReport{"a": report("h1", vip.Addr().String()), "b": report("h1")},
		}
	}
	type want map[string]string // condition type → "Status/Reason"
	for _, c := range []struct {
		name  string
		scope func() *scope
		err   error
		want  want
		check func(t *testing.T, st v1alpha1.LoadBalancerStatus)
	}{
		{
			name: "served", scope: applied,
			want: want{"Ready": "True/Available", "Progressing": "False/AsExpected", "Degraded": "False/AsExpected",
				"Reconciling": "False/Available", "Stalled": "False/AsExpected"},
			check: func(t *testing.T, st v1alpha1.LoadBalancerStatus) {
				if st.ActiveNode != "a" || st.ObservedGeneration != gen || st.VirtualRouterID != 9 || len(st.Nodes) != 2 || !st.Nodes[0].Ready ||
					len(st.Backends) != 1 || st.Backends[0].ServersUp != 2 || st.Backends[0].ServersTotal != 2 {
					t.Errorf("status %+v", st)
				}
			},
		},
		{
			name: "a transient error keeps what was known", scope: func() *scope { return &scope{} }, err: errors.New("etcd is slow"),
			want: want{"Progressing": "Unknown/ReconcileError", "Ready": "True/Available"},
			check: func(t *testing.T, st v1alpha1.LoadBalancerStatus) {
				if st.ObservedGeneration != gen-1 || len(st.VirtualIPs) != 1 {
					t.Errorf("a failed reconcile changed what was known: %+v", st)
				}
			},
		},
		{
			name: "refused, never applied",
			scope: func() *scope {
				s := &scope{}
				s.stop(v1alpha1.LoadBalancerConflictReason, "virtual IP 198.18.0.100 is held by LoadBalancer shop/old")
				return s
			},
			want: want{"Degraded": "True/Conflict", "Progressing": "False/Conflict", "Stalled": "True/Conflict", "Reconciling": "False/Conflict"},
			check: func(t *testing.T, st v1alpha1.LoadBalancerStatus) {
				if st.ObservedGeneration != gen {
					t.Errorf("observedGeneration %d", st.ObservedGeneration)
				}
			},
		},
		{
			name: "revoked and released: nothing held any more",
			scope: func() *scope {
				s := &scope{revoked: true, released: true}
				s.stop(v1alpha1.LoadBalancerNotAllowedByClassReason, "LoadBalancerClass edge does not allow namespace shop")
				return s
			},
			want: want{"Ready": "False/NotAllowedByClass", "Degraded": "True/NotAllowedByClass", "Stalled": "True/NotAllowedByClass"},
			check: func(t *testing.T, st v1alpha1.LoadBalancerStatus) {
				if st.VirtualIPs != nil || st.VirtualRouterID != 0 || st.ActiveNode != "" || st.Nodes != nil {
					t.Errorf("a released LoadBalancer still claims %+v", st)
				}
				if c := meta.FindStatusCondition(st.Conditions, v1alpha1.LoadBalancerReadyCondition); !strings.HasPrefix(c.Message, "Data plane deleted: ") {
					t.Errorf("Ready %q", c.Message)
				}
			},
		},
		{
			name:  "no node matches: stalled by reason",
			scope: func() *scope { s := applied(); s.Nodes = nil; return s },
			want:  want{"Ready": "False/NoMatchingNodes", "Stalled": "True/NoMatchingNodes"},
		},
		{
			name: "no holder yet",
			scope: func() *scope {
				s := applied()
				s.reports["a"] = report("h1")
				return s
			},
			want: want{"Ready": "False/NoActiveNode", "Stalled": "False/AsExpected", "Reconciling": "True/NoActiveNode"},
		},
		{
			name: "the holder runs an older config",
			scope: func() *scope {
				s := applied()
				s.ExpectedHash["a"] = "h2"
				return s
			},
			want: want{"Ready": "False/RollingOut", "Progressing": "True/RollingOut", "Reconciling": "True/RollingOut"},
		},
		{
			name: "two holders: a split brain",
			scope: func() *scope {
				s := applied()
				s.reports["b"] = report("h1", vip.Addr().String())
				return s
			},
			want: want{"Degraded": "True/SplitBrain", "Ready": "True/Available"},
		},
		{
			name: "two holders, not yet for long enough",
			scope: func() *scope {
				s := applied()
				s.reports["b"] = report("h1", vip.Addr().String())
				s.splitBrainPending = true
				return s
			},
			want: want{"Degraded": "False/AsExpected"},
		},
		{
			name: "no server up on the holder",
			scope: func() *scope {
				s := applied()
				r := s.reports["a"]
				r.Backends = map[string]contract.BackendCount{"app": {Up: 0, Total: 2}}
				s.reports["a"] = r
				return s
			},
			want: want{"Degraded": "True/ServersDown", "Stalled": "False/AsExpected"},
		},
		{
			name:  "a Service not found: applied anyway, degraded",
			scope: func() *scope { s := applied(); s.Missing = []string{"Service api not found"}; return s },
			want:  want{"Degraded": "True/ReferenceNotFound", "Ready": "True/Available"},
		},
		{
			name: "a node's agent refused the config",
			scope: func() *scope {
				s := applied()
				r := s.reports["b"]
				r.Message = "haproxy -c: unknown keyword"
				s.reports["b"] = r
				return s
			},
			want: want{"Degraded": "True/ConfigRejected", "Stalled": "True/ConfigRejected"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := computeStatus(lb(), c.scope(), c.err)
			for typ, w := range c.want {
				cond := meta.FindStatusCondition(st.Conditions, typ)
				if cond == nil {
					t.Errorf("no %s condition", typ)
					continue
				}
				if got := string(cond.Status) + "/" + cond.Reason; got != w {
					t.Errorf("%s: %s (%s), want %s", typ, got, cond.Message, w)
				}
			}
			if c.check != nil {
				c.check(t, st)
			}
		})
	}
}

// TestReadyNodes: the wide view's column lists the ready nodes by
// priority, and a long list ends with a count.
func TestReadyNodes(t *testing.T) {
	node := func(name string, priority int32, ready bool) v1alpha1.NodeStatus {
		return v1alpha1.NodeStatus{Name: name, Priority: priority, Ready: ready}
	}
	if got := readyNodes([]v1alpha1.NodeStatus{node("c", 100, true), node("a", 150, true), node("b", 200, false), node("d", 100, true)}); got != "a,c,d" {
		t.Errorf("readyNodes = %q, want a,c,d (b not ready; equal priorities by name)", got)
	}
	if got := readyNodes([]v1alpha1.NodeStatus{node("a", 100, false)}); got != "" {
		t.Errorf("readyNodes = %q, want empty", got)
	}
	var many []v1alpha1.NodeStatus
	for i := range 11 {
		many = append(many, node(fmt.Sprintf("n%02d", i), int32(200-i), true))
	}
	if got := readyNodes(many); got != "n00,n01,n02,n03,n04,n05,n06,n07,+3 more" {
		t.Errorf("readyNodes = %q", got)
	}
}
