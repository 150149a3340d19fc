package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
)

// computeStatus derives the whole status from this reconcile's facts and
// the nodes' reports. It keeps lastTransitionTime where a condition did not
// change, so an unchanged status compares equal and is not written.
// reconcileErr is the error that ended this reconcile, if any.
func computeStatus(lb *v1alpha1.LoadBalancer, s *scope, reconcileErr error) v1alpha1.LoadBalancerStatus {
	st := conditionsStatus(lb, s, reconcileErr)
	setKstatus(&st, lb.Generation)
	return st
}

// setKstatus derives Reconciling and Stalled from the other conditions:
// kstatus reads a LoadBalancer as Current exactly when it is Ready for its
// generation with nothing rolling out, Failed when it is Stalled.
func setKstatus(st *v1alpha1.LoadBalancerStatus, gen int64) {
	ready := meta.FindStatusCondition(st.Conditions, v1alpha1.LoadBalancerReadyCondition)
	progressing := meta.FindStatusCondition(st.Conditions, v1alpha1.LoadBalancerProgressingCondition)
	degraded := meta.FindStatusCondition(st.Conditions, v1alpha1.LoadBalancerDegradedCondition)
	var stalled *metav1.Condition
	switch {
	case degraded != nil && degraded.Status == metav1.ConditionTrue && stalls(degraded.Reason):
		stalled = degraded
	case ready != nil && ready.Status == metav1.ConditionFalse && ready.Reason == v1alpha1.LoadBalancerNoMatchingNodesReason:
		stalled = ready
	}
	if stalled != nil {
		setCondition(st, gen, v1alpha1.LoadBalancerStalledCondition, metav1.ConditionTrue, stalled.Reason, stalled.Message)
		setCondition(st, gen, v1alpha1.LoadBalancerReconcilingCondition, metav1.ConditionFalse, stalled.Reason, "Stalled: "+stalled.Message)
		return
	}
	setCondition(st, gen, v1alpha1.LoadBalancerStalledCondition, metav1.ConditionFalse, v1alpha1.LoadBalancerAsExpectedReason, "Not stalled")
	switch {
	case progressing != nil && progressing.Status != metav1.ConditionFalse:
		setCondition(st, gen, v1alpha1.LoadBalancerReconcilingCondition, metav1.ConditionTrue, progressing.Reason, progressing.Message)
	case ready == nil || ready.Status != metav1.ConditionTrue:
		reason, message := v1alpha1.LoadBalancerPendingReason, "Not Ready yet"
		if ready != nil {
			reason, message = ready.Reason, ready.Message
		}
		setCondition(st, gen, v1alpha1.LoadBalancerReconcilingCondition, metav1.ConditionTrue, reason, message)
	default:
		setCondition(st, gen, v1alpha1.LoadBalancerReconcilingCondition, metav1.ConditionFalse, v1alpha1.LoadBalancerAvailableReason, ready.Message)
	}
}

// stalls tells the Degraded reasons no retry fixes: the spec needs a change
// (or the class, or a node's config check, or another LoadBalancer).
func stalls(reason string) bool {
	switch reason {
	case v1alpha1.LoadBalancerInvalidSpecReason, v1alpha1.LoadBalancerClassNotFoundReason, v1alpha1.LoadBalancerNotAllowedByClassReason,
		v1alpha1.LoadBalancerAddressUnavailableReason, v1alpha1.LoadBalancerConflictReason, v1alpha1.LoadBalancerAdoptionRefusedReason,
		v1alpha1.LoadBalancerConfigRejectedReason:
		return true
	}
	return false
}

func conditionsStatus(lb *v1alpha1.LoadBalancer, s *scope, reconcileErr error) v1alpha1.LoadBalancerStatus {
	st := *lb.Status.DeepCopy()
	gen := lb.Generation
	if s.className != "" {
		st.ClassName = s.className
	}
	if reconcileErr != nil && !s.stopped() {
		// A transient error: keep what we knew, retry with backoff, and say
		// why in the API's own words (a missing permission shows here).
		setCondition(&st, gen, v1alpha1.LoadBalancerProgressingCondition, metav1.ConditionUnknown, v1alpha1.LoadBalancerReconcileErrorReason,
			"Reconcile failed and will be retried: "+reconcileErr.Error())
		return st
	}
	if s.stopped() {
		setCondition(&st, gen, v1alpha1.LoadBalancerDegradedCondition, metav1.ConditionTrue, s.stopReason, s.stopMessage)
		setCondition(&st, gen, v1alpha1.LoadBalancerProgressingCondition, metav1.ConditionFalse, s.stopReason, "Not applied: "+s.stopMessage)
		if s.released {
			st.VirtualIPs, st.VirtualRouterID, st.ActiveNode = nil, 0, ""
			st.Holders, st.Nodes, st.Backends, st.ReadyNodes = nil, nil, nil, ""
			setCondition(&st, gen, v1alpha1.LoadBalancerReadyCondition, metav1.ConditionFalse, s.stopReason, "Data plane deleted: "+s.stopMessage)
		}
		if meta.FindStatusCondition(st.Conditions, v1alpha1.LoadBalancerReadyCondition) == nil {
			setCondition(&st, gen, v1alpha1.LoadBalancerReadyCondition, metav1.ConditionFalse, s.stopReason, "Never applied: "+s.stopMessage)
		}
		st.ObservedGeneration = gen
		return st
	}
	st.ObservedGeneration = gen
	st.VirtualRouterID = s.RouterID
	st.VirtualIPs = nil
	for _, v := range s.VirtualIPs {
		st.VirtualIPs = append(st.VirtualIPs, v.String())
	}
	st.Nodes = nodeStatuses(s)
	st.ReadyNodes = readyNodes(st.Nodes)
	st.Holders = holders(s)
	st.ActiveNode, st.Backends = activeNodeAndBackends(lb, s, st.Holders)
	setDegraded(&st, gen, s)
	setProgressing(&st, gen, s)
	setReady(&st, gen, s)
	return st
}

func setCondition(st *v1alpha1.LoadBalancerStatus, gen int64, typ string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: truncate(message), ObservedGeneration: gen,
	})
}

// truncate keeps condition messages within the API's limit.
func truncate(s string) string {
	const max = 32768
	if len(s) > max {
		return s[:max-3] + "..."
	}
	return s
}

func nodeStatuses(s *scope) []v1alpha1.NodeStatus {
	out := make([]v1alpha1.NodeStatus, 0, len(s.Nodes))
	for _, n := range s.Nodes {
		rep, reported := s.reports[n.Name]
		ns := v1alpha1.NodeStatus{Name: n.Name, Priority: n.Priority, Role: v1alpha1.VRRPRoleUnknown}
		switch {
		case slices.Contains(s.Pending, n.Name):
			ns.Message = "Waiting for the agent to report the interface holding " + n.Address
			if n.Interface != "" {
				ns.Message = "Waiting for the agent to report its interface's IPv6 link-local address, which its VRRP adverts come from"
			}
		case !reported:
			ns.Message = "Waiting for the agent to report"
		default:
			if rep.Role != "" {
				ns.Role = rep.Role
			}
			ns.ConfigHash = rep.ConfigHash
			ns.VRRPTransitions = rep.Transitions
			ns.Ready = rep.Healthy && rep.ConfigHash == s.ExpectedHash[n.Name]
			ns.Message = rep.Message
			if ns.Message == "" && rep.ConfigHash != s.ExpectedHash[n.Name] {
				ns.Message = "Runs an older config"
			}
		}
		out = append(out, ns)
	}
	return out
}

// maxReadyNodesListed bounds status.readyNodes: a printer column, read
// by a person, not a list to parse (status.nodes is that).
const maxReadyNodesListed = 8

// readyNodes lists the ready nodes, highest priority first (then by
// name): the first eight named, the rest as a count.
func readyNodes(nodes []v1alpha1.NodeStatus) string {
	var ready []v1alpha1.NodeStatus
	for _, n := range nodes {
		if n.Ready {
			ready = append(ready, n)
		}
	}
	slices.SortFunc(ready, func(a, b v1alpha1.NodeStatus) int {
		if a.Priority != b.Priority {
			return int(b.Priority - a.Priority)
		}
		return strings.Compare(a.Name, b.Name)
	})
	var names []string
	for i, n := range ready {
		if i == maxReadyNodesListed {
			names = append(names, fmt.Sprintf("+%d more", len(ready)-i))
			break
		}
		names = append(names, n.Name)
	}
	return strings.Join(names, ",")
}

// holders are, per virtual IP, the nodes whose agents see it on their
// interface; nil while no agent observes its interface (older agents).
func holders(s *scope) []v1alpha1.VirtualIPHolders {
	observed := false
	for _, n := range s.Nodes {
		observed = observed || s.reports[n.Name].HoldsObserved
	}
	if !observed {
		return nil
	}
	out := make([]v1alpha1.VirtualIPHolders, 0, len(s.VirtualIPs))
	for _, v := range s.VirtualIPs {
		addr := v.Addr().String()
		h := v1alpha1.VirtualIPHolders{VirtualIP: addr}
		for _, n := range s.Nodes {
			if slices.Contains(s.reports[n.Name].Holds, addr) {
				h.Nodes = append(h.Nodes, n.Name)
			}
		}
		out = append(out, h)
	}
	return out
}

// activeNodeAndBackends picks the node holding the virtual IPs: the one
// whose interface carries the first (the highest priority, should
// several), or without observations the highest-priority MASTER. It takes
// the backend counts from its HAProxy, the one serving.
func activeNodeAndBackends(lb *v1alpha1.LoadBalancer, s *scope, holders []v1alpha1.VirtualIPHolders) (string, []v1alpha1.BackendStatus) {
	claims := func(name string) bool { return s.reports[name].Role == v1alpha1.VRRPRoleMaster }
	if holders != nil {
		claims = func(name string) bool { return len(holders) > 0 && slices.Contains(holders[0].Nodes, name) }
	}
	active := ""
	var best int32
	for _, n := range s.Nodes {
		if claims(n.Name) && n.Priority > best {
			active, best = n.Name, n.Priority
		}
	}
	counts := s.reports[active].Backends
	out := make([]v1alpha1.BackendStatus, 0, len(lb.Spec.Backends))
	for _, b := range lb.Spec.Backends {
		bs := v1alpha1.BackendStatus{Name: b.Name, ServersTotal: s.ServersTotal[b.Name]}
		if c, ok := counts[b.Name]; ok {
			bs.ServersUp = c.Up
		}
		out = append(out, bs)
	}
	return active, out
}

func masters(s *scope) []string {
	var out []string
	for _, n := range s.Nodes {
		if s.reports[n.Name].Role == v1alpha1.VRRPRoleMaster {
			out = append(out, n.Name)
		}
	}
	return out
}

func setDegraded(st *v1alpha1.LoadBalancerStatus, gen int64, s *scope) {
	var problems []string
	reason := v1alpha1.LoadBalancerAsExpectedReason
	add := func(r string, msgs ...string) {
		if len(msgs) == 0 {
			return
		}
		if reason == v1alpha1.LoadBalancerAsExpectedReason {
			reason = r
		}
		problems = append(problems, msgs...)
	}
	add(v1alpha1.LoadBalancerReferenceNotFoundReason, s.Missing...)
	add(v1alpha1.LoadBalancerNotAllowedByClassReason, s.Refused...)
	for _, n := range st.Nodes {
		if rep := s.reports[n.Name]; rep.Message != "" {
			add(v1alpha1.LoadBalancerConfigRejectedReason, fmt.Sprintf("node %s: %s", n.Name, rep.Message))
		}
	}
	switch {
	case s.splitBrainPending:
	case st.Holders != nil:
		for _, h := range st.Holders {
			if len(h.Nodes) > 1 {
				add(v1alpha1.LoadBalancerSplitBrainReason, fmt.Sprintf("several nodes hold %s: %s", h.VirtualIP, strings.Join(h.Nodes, ", ")))
			}
		}
	case len(masters(s)) > 1:
		add(v1alpha1.LoadBalancerSplitBrainReason, fmt.Sprintf("several nodes hold the virtual IPs: %s", strings.Join(masters(s), ", ")))
	}
	if st.ActiveNode != "" {
		for _, b := range st.Backends {
			if b.ServersUp == 0 {
				add(v1alpha1.LoadBalancerServersDownReason, fmt.Sprintf("backend %s has no server up (%d configured)", b.Name, b.ServersTotal))
			}
		}
	}
	if len(problems) == 0 {
		setCondition(st, gen, v1alpha1.LoadBalancerDegradedCondition, metav1.ConditionFalse, reason, "No problem found")
		return
	}
	setCondition(st, gen, v1alpha1.LoadBalancerDegradedCondition, metav1.ConditionTrue, reason, strings.Join(problems, "; "))
}

func setProgressing(st *v1alpha1.LoadBalancerStatus, gen int64, s *scope) {
	var behind []string
	for _, n := range s.Nodes {
		if want, ok := s.ExpectedHash[n.Name]; !ok || s.reports[n.Name].ConfigHash != want {
			behind = append(behind, n.Name)
		}
	}
	if ds := s.daemonSet; ds != nil && ds.Status.UpdatedNumberScheduled < ds.Status.DesiredNumberScheduled {
		behind = append(behind, fmt.Sprintf("DaemonSet %d/%d pods updated", ds.Status.UpdatedNumberScheduled, ds.Status.DesiredNumberScheduled))
	}
	if !s.rollout.Done && s.rollout.Waiting != "" {
		behind = append(behind, "rollout: "+s.rollout.Waiting)
	}
	if len(behind) == 0 {
		setCondition(st, gen, v1alpha1.LoadBalancerProgressingCondition, metav1.ConditionFalse, v1alpha1.LoadBalancerAsExpectedReason, "Every node runs the current config")
		return
	}
	setCondition(st, gen, v1alpha1.LoadBalancerProgressingCondition, metav1.ConditionTrue, v1alpha1.LoadBalancerRollingOutReason,
		"Not yet running the current config: "+strings.Join(behind, ", "))
}

func setReady(st *v1alpha1.LoadBalancerStatus, gen int64, s *scope) {
	switch {
	case len(s.Nodes) == 0:
		setCondition(st, gen, v1alpha1.LoadBalancerReadyCondition, metav1.ConditionFalse, v1alpha1.LoadBalancerNoMatchingNodesReason,
			fmt.Sprintf("No node matches LoadBalancerClass %s's data-plane nodes and spec.nodeSelector", s.Class.Name))
	case st.ActiveNode == "":
		setCondition(st, gen, v1alpha1.LoadBalancerReadyCondition, metav1.ConditionFalse, v1alpha1.LoadBalancerNoActiveNodeReason, noActiveNodeMessage(st))
	case !nodeReady(st, st.ActiveNode):
		setCondition(st, gen, v1alpha1.LoadBalancerReadyCondition, metav1.ConditionFalse, v1alpha1.LoadBalancerRollingOutReason,
			fmt.Sprintf("Node %s holds the virtual IPs but does not run the current config or is unhealthy", st.ActiveNode))
	default:
		setCondition(st, gen, v1alpha1.LoadBalancerReadyCondition, metav1.ConditionTrue, v1alpha1.LoadBalancerAvailableReason,
			fmt.Sprintf("Node %s serves %s", st.ActiveNode, strings.Join(st.VirtualIPs, ", ")))
	}
}

func noActiveNodeMessage(st *v1alpha1.LoadBalancerStatus) string {
	if st.Holders == nil {
		return "No node holds the virtual IPs yet"
	}
	return "No node's interface carries " + st.Holders[0].VirtualIP
}

func nodeReady(st *v1alpha1.LoadBalancerStatus, name string) bool {
	i := slices.IndexFunc(st.Nodes, func(n v1alpha1.NodeStatus) bool { return n.Name == name })
	return i >= 0 && st.Nodes[i].Ready
}

// splitBrainAfter is how long several holders of a virtual IP must be seen
// before status says SplitBrain. A node taking the VIP back by preemption
// holds it together with the one letting go for milliseconds, but a
// report lags the interface: an agent reads it when the kernel says an
// address changed (every idle interval, 1 s, where that watch failed) and
// its report is written a moment later, so it can show the loser holding
// after it let go, which is not a split brain (the fresh-clone CI saw a
// new LoadBalancer flicker to Degraded so when agents polled every 0.5 s).
const splitBrainAfter = 1500 * time.Millisecond

// observeHolders starts or ends the wait for a split brain to last.
func (r *LoadBalancerReconciler) observeHolders(_ context.Context, s *scope) error {
	key := keyOf(s.lb)
	several := false
	if hs := holders(s); hs != nil {
		for _, h := range hs {
			several = several || len(h.Nodes) > 1
		}
	} else {
		several = len(masters(s)) > 1
	}
	if !several {
		r.splitSince.Delete(key)
		return nil
	}
	first, _ := r.splitSince.LoadOrStore(key, r.now())
	if wait := splitBrainAfter - r.now().Sub(first.(time.Time)); wait > 0 {
		s.splitBrainPending = true
		if s.retryAfter == 0 || wait < s.retryAfter {
			s.retryAfter = wait
		}
	}
	return nil
}
