package controllers

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
)

// TestSetKstatusDecidesByReason: Stalled and Reconciling, which kstatus
// and Flux read, follow the other conditions' reasons, never their
// messages.
func TestSetKstatusDecidesByReason(t *testing.T) {
	cond := func(typ string, status metav1.ConditionStatus, reason, message string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: message}
	}
	const (
		ready       = v1alpha1.LoadBalancerReadyCondition
		progressing = v1alpha1.LoadBalancerProgressingCondition
		degraded    = v1alpha1.LoadBalancerDegradedCondition
	)
	for _, c := range []struct {
		name                 string
		conditions           []metav1.Condition
		stalled, reconciling metav1.ConditionStatus
		reason               string // of Stalled when True, else of Reconciling
	}{
		{"nothing yet", nil, metav1.ConditionFalse, metav1.ConditionTrue, v1alpha1.LoadBalancerPendingReason},
		{"refused spec", []metav1.Condition{cond(degraded, metav1.ConditionTrue, v1alpha1.LoadBalancerInvalidSpecReason, "x")},
			metav1.ConditionTrue, metav1.ConditionFalse, v1alpha1.LoadBalancerInvalidSpecReason},
		{"no node matches", []metav1.Condition{cond(ready, metav1.ConditionFalse, v1alpha1.LoadBalancerNoMatchingNodesReason, "anything")},
			metav1.ConditionTrue, metav1.ConditionFalse, v1alpha1.LoadBalancerNoMatchingNodesReason},
		// The message of the old test, under the reason that waits.
		{"no holder yet", []metav1.Condition{cond(ready, metav1.ConditionFalse, v1alpha1.LoadBalancerNoActiveNodeReason, "No node matches nothing: a message")},
			metav1.ConditionFalse, metav1.ConditionTrue, v1alpha1.LoadBalancerNoActiveNodeReason},
		{"rolling out", []metav1.Condition{cond(progressing, metav1.ConditionTrue, v1alpha1.LoadBalancerRollingOutReason, "x"),
			cond(ready, metav1.ConditionTrue, v1alpha1.LoadBalancerAvailableReason, "x")},
			metav1.ConditionFalse, metav1.ConditionTrue, v1alpha1.LoadBalancerRollingOutReason},
		{"degraded but not stalled", []metav1.Condition{cond(degraded, metav1.ConditionTrue, v1alpha1.LoadBalancerServersDownReason, "x"),
			cond(ready, metav1.ConditionTrue, v1alpha1.LoadBalancerAvailableReason, "x")},
			metav1.ConditionFalse, metav1.ConditionFalse, v1alpha1.LoadBalancerAvailableReason},
	} {
		st := &v1alpha1.LoadBalancerStatus{Conditions: c.conditions}
		setKstatus(st, 3)
		s := meta.FindStatusCondition(st.Conditions, v1alpha1.LoadBalancerStalledCondition)
		r := meta.FindStatusCondition(st.Conditions, v1alpha1.LoadBalancerReconcilingCondition)
		if s == nil || r == nil || s.Status != c.stalled || r.Status != c.reconciling || s.ObservedGeneration != 3 {
			t.Errorf("%s: stalled %+v, reconciling %+v", c.name, s, r)
			continue
		}
		got := r.Reason
		if s.Status == metav1.ConditionTrue {
			got = s.Reason
		}
		if got != c.reason {
			t.Errorf("%s: reason %s, want %s", c.name, got, c.reason)
		}
	}
}
