package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/plan"
	"github.com/hakeeper/hakeeper/internal/render"
	"github.com/hakeeper/hakeeper/internal/rollout"
)

// TestAnnounce walks the status changes of a LoadBalancer, reconcile by
// reconcile, and the events each deserves: a failover is one event even
// when a reconcile between the two nodes' reports sees nobody holding the
// address; a refusal is one Warning per reason and message.
func TestAnnounce(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const vip = "198.18.0.111/24"
	held := func(nodes ...string) v1alpha1.LoadBalancerStatus {
		st := v1alpha1.LoadBalancerStatus{VirtualIPs: []string{vip}, Holders: []v1alpha1.VirtualIPHolders{{VirtualIP: "198.18.0.111", Nodes: nodes}}}
		switch len(nodes) {
		case 0:
			st.Conditions = []metav1.Condition{{Type: v1alpha1.LoadBalancerReadyCondition, Status: metav1.ConditionFalse,
				Reason: v1alpha1.LoadBalancerNoActiveNodeReason, Message: "No node's interface carries 198.18.0.111"}}
		case 1:
			st.ActiveNode = nodes[0]
			st.Conditions = []metav1.Condition{{Type: v1alpha1.LoadBalancerReadyCondition, Status: metav1.ConditionTrue, Reason: v1alpha1.LoadBalancerAvailableReason}}
		default:
			st.ActiveNode = nodes[0]
			st.Conditions = []metav1.Condition{{Type: v1alpha1.LoadBalancerDegradedCondition, Status: metav1.ConditionTrue,
				Reason: v1alpha1.LoadBalancerSplitBrainReason, Message: "several nodes hold 198.18.0.111: " + strings.Join(nodes, ", ")}}
		}
		return st
	}
	refused := func(reason, message string) v1alpha1.LoadBalancerStatus {
		st := held("node-a")
		st.Conditions = append(st.Conditions, metav1.Condition{Type: v1alpha1.LoadBalancerDegradedCondition, Status: metav1.ConditionTrue, Reason: reason, Message: message})
		return st
	}
	// cause stands for the scope's: what is known of node-a once it lost
	// the address (TestWhyMoved covers the scope's).
	cause := func(from, to, remembered string) string {
		if remembered != "" {
			return remembered
		}
		if to == "node-a" {
			return "node-a has the higher priority"
		}
		return ""
	}
	type reconcile struct {
		at     time.Duration
		status v1alpha1.LoadBalancerStatus
		faults map[string]string
		want   []string // "Type Reason: note"
	}
	const uid = types.UID("uid-1")
	released := func(reason string) v1alpha1.LoadBalancerStatus {
		return v1alpha1.LoadBalancerStatus{Conditions: []metav1.Condition{
			{Type: v1alpha1.LoadBalancerReadyCondition, Status: metav1.ConditionFalse, Reason: reason, Message: "Data plane deleted"},
			{Type: v1alpha1.LoadBalancerDegradedCondition, Status: metav1.ConditionTrue, Reason: reason, Message: "not allowed"}}}
	}
	// Every scenario starts as after a restart of the manager: nothing
	// remembered, the status before says node-a holds the address.
	for _, sc := range []struct {
		name       string
		reconciles []reconcile
	}{
		{
			name: "a failover through a reconcile that sees nobody holding, and the take-back",
			reconciles: []reconcile{
				// node-a's report first: its HAProxy died, it still holds.
				{at: 0, status: held("node-a"), faults: map[string]string{"node-a": "HAProxy died"}},
				{at: 20 * time.Millisecond, status: held(), faults: map[string]string{"node-a": "HAProxy died"}},
				// node-b's report; the kubelet restarted node-a's HAProxy.
				{at: 40 * time.Millisecond, status: held("node-b"),
					want: []string{"Normal VirtualIPMoved: node-b now holds 198.18.0.111 (was node-a: HAProxy died)"}},
				{at: time.Second, status: held("node-b")},
				{at: 5 * time.Second, status: held("node-a"),
					want: []string{"Normal VirtualIPMoved: node-a now holds 198.18.0.111 (was node-b: node-a has the higher priority)"}},
			},
		},
		{
			name: "the holder's fault first seen once nobody holds the address",
			reconciles: []reconcile{
				{at: 0, status: held(), faults: map[string]string{"node-a": "HAProxy stopped answering"}},
				{at: time.Second, status: held(), faults: map[string]string{"node-a": "no server up"}},
				{at: 1200 * time.Millisecond, status: held("node-b"), faults: map[string]string{"node-a": "no server up"},
					want: []string{"Normal VirtualIPMoved: node-b now holds 198.18.0.111 (was node-a: HAProxy stopped answering)"}},
			},
		},
		{
			name: "a fault the holder got over is not the cause of a later move",
			reconciles: []reconcile{
				{at: 0, status: held("node-a"), faults: map[string]string{"node-a": "no server up"}},
				{at: time.Second, status: held("node-a")},
				{at: 2 * time.Second, status: held("node-b"), want: []string{"Normal VirtualIPMoved: node-b now holds 198.18.0.111 (was node-a)"}},
			},
		},
		{
			name: "nobody holds it for longer than a failover: one Warning, later",
			reconciles: []reconcile{
				{at: 0, status: held()},
				{at: time.Second, status: held()},
				{at: 2 * time.Second, status: held(), want: []string{"Warning NoActiveNode: No node's interface carries 198.18.0.111 (was node-a)"}},
				{at: 3 * time.Second, status: held()},
				{at: 9 * time.Second, status: held("node-c"), want: []string{"Normal VirtualIPMoved: node-c now holds 198.18.0.111 (was node-a)"}},
			},
		},
		{
			name: "a split brain is no move; its end may be",
			reconciles: []reconcile{
				{at: 0, status: held("node-a")},
				{at: time.Second, status: held("node-b", "node-a"), want: []string{"Warning SplitBrain: several nodes hold 198.18.0.111: node-b, node-a"}},
				{at: 2 * time.Second, status: held("node-a"), want: []string{"Normal SplitBrainEnded: One node holds the virtual IPs again"}},
				{at: 3 * time.Second, status: held("node-b", "node-a"), want: []string{"Warning SplitBrain: several nodes hold 198.18.0.111: node-b, node-a"}},
				{at: 4 * time.Second, status: held("node-b"), want: []string{"Normal SplitBrainEnded: One node holds the virtual IPs again",
					"Normal VirtualIPMoved: node-b now holds 198.18.0.111 (was node-a)"}},
			},
		},
		{
			name: "released, then served again: no move from the holder before",
			reconciles: []reconcile{
				{at: 0, status: released(v1alpha1.LoadBalancerNotAllowedByClassReason), want: []string{"Warning NotAllowedByClass: not allowed"}},
				{at: time.Minute, status: held("node-b")},
			},
		},
		{
			name: "refusals: once per reason and message",
			reconciles: []reconcile{
				{at: 0, status: refused(v1alpha1.LoadBalancerInvalidSpecReason, "spec.listeners[0].port: 0"),
					want: []string{"Warning InvalidSpec: spec.listeners[0].port: 0"}},
				{at: time.Second, status: refused(v1alpha1.LoadBalancerInvalidSpecReason, "spec.listeners[0].port: 0")},
				{at: 2 * time.Second, status: refused(v1alpha1.LoadBalancerInvalidSpecReason, "spec.listeners[1].port: 0"),
					want: []string{"Warning InvalidSpec: spec.listeners[1].port: 0"}},
				{at: 3 * time.Second, status: refused(v1alpha1.LoadBalancerConflictReason, "LoadBalancer shop/old holds 198.18.0.111"),
					want: []string{"Warning Conflict: LoadBalancer shop/old holds 198.18.0.111"}},
				{at: 4 * time.Second, status: held("node-a")},
				{at: 5 * time.Second, status: refused(v1alpha1.LoadBalancerConfigRejectedReason, "node-b: haproxy: unable to load certificate"),
					want: []string{"Warning ConfigRejected: node-b: haproxy: unable to load certificate"}},
			},
		},
	} {
		t.Run(sc.name, func(t *testing.T) {
			var mem holderMemory
			before := held("node-a")
			for i, r := range sc.reconciles {
				news, next, _ := announce(uid, &before, &r.status, mem, r.faults, t0.Add(r.at), cause)
				var got []string
				for _, a := range news {
					got = append(got, fmt.Sprintf("%s %s: %s", a.eventType, a.reason, a.note))
				}
				if fmt.Sprint(got) != fmt.Sprint(r.want) {
					t.Errorf("reconcile %d at %v: events %q, want %q", i, r.at, got, r.want)
				}
				mem, before = next, r.status
			}
		})
	}
	t.Run("a vacancy asks to be looked at again when it would be announced", func(t *testing.T) {
		_, mem, recheck := announce(uid, addr(held("node-a")), addr(held()), holderMemory{}, nil, t0, cause)
		if recheck != vacancyAfter {
			t.Errorf("recheck %v, want %v", recheck, vacancyAfter)
		}
		_, _, recheck = announce(uid, addr(held()), addr(held()), mem, nil, t0.Add(time.Second), cause)
		if recheck != vacancyAfter-time.Second {
			t.Errorf("recheck %v, want %v", recheck, vacancyAfter-time.Second)
		}
	})
	t.Run("a cache behind the last status write tells nothing twice", func(t *testing.T) {
		stale := held("node-a")
		split, refusedNow := held("node-b", "node-a"), refused(v1alpha1.LoadBalancerConflictReason, "taken")
		news, mem, _ := announce(uid, &stale, &split, holderMemory{}, nil, t0, cause)
		if len(news) != 1 {
			t.Fatalf("events %+v, want the split brain's", news)
		}
		if news, _, _ = announce(uid, &stale, &split, mem, nil, t0.Add(time.Second), cause); len(news) != 0 {
			t.Errorf("the same split brain, read again from a stale cache: events %+v", news)
		}
		news, mem, _ = announce(uid, &stale, &refusedNow, holderMemory{}, nil, t0, cause)
		if len(news) != 1 {
			t.Fatalf("events %+v, want the refusal's", news)
		}
		if news, _, _ = announce(uid, &stale, &refusedNow, mem, nil, t0.Add(time.Second), cause); len(news) != 0 {
			t.Errorf("the same refusal, read again from a stale cache: events %+v", news)
		}
	})
	t.Run("deleted and created again under its name: nothing remembered", func(t *testing.T) {
		_, mem, _ := announce(uid, addr(held("node-a")), addr(held("node-a")), holderMemory{}, nil, t0, cause)
		if news, _, _ := announce("uid-2", &v1alpha1.LoadBalancerStatus{}, addr(held("node-b")), mem, nil, t0.Add(time.Minute), cause); len(news) != 0 {
			t.Errorf("a new LoadBalancer's first holder announced as a move: %+v", news)
		}
	})
}

func addr[T any](v T) *T { return &v }

// TestWhyMoved: the cause a move's event gives, from what the reconcile
// gathered of the node that lost the address.
func TestWhyMoved(t *testing.T) {
	s := func(edit func(*scope)) *scope {
		sc := &scope{
			Plan: &plan.Plan{Nodes: []render.Node{{Name: "node-a", Priority: 200}, {Name: "node-b", Priority: 150}}},
			reports: map[string]contract.NodeReport{
				"node-a": {Role: v1alpha1.VRRPRoleBackup, Healthy: true},
				"node-b": {Role: v1alpha1.VRRPRoleMaster, Healthy: true},
			},
		}
		edit(sc)
		return sc
	}
	none := func(*scope) {}
	for _, c := range []struct {
		name             string
		scope            *scope
		from, to, before string
		want             string
	}{
		{"what the agent reported while it held them", s(none), "node-a", "node-b", "HAProxy died", "HAProxy died"},
		{"what the agent reports now", s(func(s *scope) { s.reports["node-a"] = contract.NodeReport{Fault: "no server up"} }), "node-a", "node-b", "", "no server up"},
		{"a handover before its pod is replaced", s(func(s *scope) { s.rollout = rollout.Plan{Handover: []string{"node-a"}} }), "node-a", "node-b", "under maintenance",
			"handed over before its pod is replaced"},
		{"a cordoned node", s(func(s *scope) { s.Maintenance = []string{"node-a"} }), "node-a", "node-b", "", "handed over: the node is cordoned or under maintenance"},
		{"no longer selected", s(none), "node-z", "node-b", "", "no longer runs the data plane"},
		{"no report", s(func(s *scope) { delete(s.reports, "node-a") }), "node-a", "node-b", "", "its agent does not report"},
		{"keepalived gone", s(func(s *scope) { s.reports["node-a"] = contract.NodeReport{Role: v1alpha1.VRRPRoleUnknown} }), "node-a", "node-b", "", "keepalived is not running"},
		{"the take-back", s(none), "node-b", "node-a", "", "node-a has the higher priority"},
		{"nothing tells", s(none), "node-a", "node-b", "", ""},
		{"refused: no plan", &scope{}, "node-a", "node-b", "", ""},
	} {
		if got := c.scope.whyMoved(c.from, c.to, c.before); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
