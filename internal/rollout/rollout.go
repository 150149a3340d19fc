// Package rollout decides the next step of a data-plane rollout the
// operator drives itself. The DaemonSet's OnDelete strategy leaves pods
// made from an older template running until the operator deletes them; it
// deletes one at a time: backups first, each only once every replaced pod
// serves the current config, and a node holding the virtual IPs last,
// after it has handed them over (its claim lowered through the
// maintenance file), so the move is planned and not a failure.
//
// Pure: the controller gathers the pods and the agents' reports, and
// carries out the plan.
package rollout

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// HandoverTimeout bounds how long a node may keep the virtual IPs after
// it was asked to hand them over. Past it the pod is replaced anyway: a
// rollout must finish, and the backups take over by VRRP's own timeout.
const HandoverTimeout = time.Minute

// Pod is one data-plane pod as the rollout sees it.
type Pod struct {
	Name string
	UID  string
	Node string
	// Current: made from the DaemonSet's current template.
	Current bool
	// Terminating: its deletion has started.
	Terminating bool
	// Ready is the pod's Ready condition.
	Ready bool
	// HandoverSince is when the operator asked its node to hand the
	// virtual IPs over; zero when it has not.
	HandoverSince time.Time
}

// Node is what a node's agent reports.
type Node struct {
	// ServingPod is the pod whose agent reports a healthy HAProxy running
	// the current config; empty when none does.
	ServingPod string
	// Holds: the node carries the virtual IPs (or, from an agent that does
	// not look at its interface, is VRRP master).
	Holds bool
}

// Action is what the controller does to one pod.
type Action string

const (
	// None: nothing to do now; Plan.Waiting says why.
	None Action = ""
	// Delete the pod; the DaemonSet controller makes its replacement.
	Delete Action = "Delete"
	// MarkHandover records on the pod when its node was asked to hand the
	// virtual IPs over.
	MarkHandover Action = "MarkHandover"
)

// Plan is the rollout's next step.
type Plan struct {
	// Done: every pod runs the current template.
	Done bool
	// Action on Pod.
	Action Action
	Pod    Pod
	// Reason explains the action, for an Event.
	Reason string
	// Handover are the nodes whose claim is lowered so that they hand the
	// virtual IPs over: their pod is marked and not yet replaced.
	Handover []string
	// Unmark are pods marked for a handover that run the current template
	// again (the template was rolled back): their mark must go, or their
	// node would stay lowered.
	Unmark []Pod
	// Waiting says what the rollout waits for, for status.
	Waiting string
}

// Next plans the next step for the pods of one DaemonSet. wanted are the
// nodes that should run a pod, now is the time marks are compared with.
func Next(pods []Pod, nodes map[string]Node, wanted []string, now time.Time) Plan {
	var p Plan
	var outdated []Pod
	hasPod := map[string]bool{}
	for _, pod := range pods {
		marked := !pod.HandoverSince.IsZero()
		switch {
		case marked && pod.Current:
			p.Unmark = append(p.Unmark, pod)
		case marked:
			p.Handover = append(p.Handover, pod.Node)
		}
		if !pod.Terminating {
			hasPod[pod.Node] = true
		}
		if !pod.Current && !pod.Terminating {
			outdated = append(outdated, pod)
		}
	}
	slices.Sort(p.Handover)
	p.Handover = slices.Compact(p.Handover)
	if len(outdated) == 0 {
		p.Done = true
		return p
	}
	// One node at a time: a pod still stopping, a node without its pod,
	// or a replaced pod not yet serving means the last step is not over.
	for _, pod := range pods {
		if pod.Terminating {
			p.Waiting = fmt.Sprintf("pod %s on node %s is stopping", pod.Name, pod.Node)
			return p
		}
	}
	for _, n := range wanted {
		if !hasPod[n] {
			p.Waiting = fmt.Sprintf("node %s has no data-plane pod yet", n)
			return p
		}
	}
	for _, pod := range pods {
		if !pod.Current {
			continue
		}
		if !pod.Ready || nodes[pod.Node].ServingPod != pod.Name {
			p.Waiting = fmt.Sprintf("pod %s on node %s does not serve the current config yet", pod.Name, pod.Node)
			return p
		}
	}
	// A pod that serves nothing goes first, then the backups', the
	// holders' last; by node name within each.
	rank := func(pod Pod) int {
		switch {
		case nodes[pod.Node].ServingPod != pod.Name:
			return 0
		case !nodes[pod.Node].Holds:
			return 1
		}
		return 2
	}
	slices.SortFunc(outdated, func(a, b Pod) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a.Node, b.Node))
	})
	next := outdated[0]
	p.Pod = next
	if rank(next) < 2 {
		p.Action, p.Reason = Delete, fmt.Sprintf("node %s does not hold the virtual IPs", next.Node)
		if !next.HandoverSince.IsZero() {
			p.Reason = fmt.Sprintf("node %s handed the virtual IPs over", next.Node)
		}
		return p
	}
	takers := 0
	for _, pod := range pods {
		if pod.Node != next.Node && nodes[pod.Node].ServingPod == pod.Name {
			takers++
		}
	}
	switch {
	case takers == 0:
		p.Action, p.Reason = Delete, fmt.Sprintf("node %s holds the virtual IPs and no other node serves to take them over", next.Node)
	case next.HandoverSince.IsZero():
		p.Action, p.Reason = MarkHandover, fmt.Sprintf("node %s holds the virtual IPs: it hands them over before its pod is replaced", next.Node)
		p.Handover = append(p.Handover, next.Node)
		slices.Sort(p.Handover)
		p.Handover = slices.Compact(p.Handover)
		p.Waiting = fmt.Sprintf("node %s hands the virtual IPs over", next.Node)
	case now.Sub(next.HandoverSince) >= HandoverTimeout:
		p.Action, p.Reason = Delete, fmt.Sprintf("node %s still holds the virtual IPs %v after it was asked to hand them over", next.Node, HandoverTimeout)
	default:
		p.Waiting = fmt.Sprintf("node %s hands the virtual IPs over (asked %v ago)", next.Node, now.Sub(next.HandoverSince).Round(time.Second))
	}
	return p
}
