package controllers

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/render"
)

// Event reasons for what happened to a LoadBalancer's traffic, beside the
// conditions that say how things stand.
const (
	EventVirtualIPMoved  = "VirtualIPMoved"
	EventSplitBrainEnded = "SplitBrainEnded"
)

// announcement is one event for `kubectl events`: what a person wants to
// know happened, once per change, never once per reconcile.
type announcement struct {
	eventType, reason, action, note string
}

// holderMemory is what the reconciler remembers of a LoadBalancer for its
// events between reconciles. A failover's two reports come from two
// nodes, and a reconcile between them sees nobody holding the virtual IPs:
// the move is still one event, from the last holder to the next. And a
// reconcile may read the LoadBalancer from a cache that does not show the
// status the last one wrote yet: what was told is remembered here, not
// read back from status.
type holderMemory struct {
	// uid of the LoadBalancer remembered: one deleted and created again
	// under its name is another, with nothing to remember.
	uid types.UID
	// node held the virtual IPs alone when last seen.
	node string
	// fault is what node's agent reported wrong while it was the holder,
	// or first once nobody was: by the time the next node's report shows
	// the move, the kubelet may have restarted what failed.
	fault string
	// vacantSince: nobody has held the virtual IPs since; zero while
	// someone does. vacancyAnnounced: the event for it went out.
	vacantSince      time.Time
	vacancyAnnounced bool
	// degraded is the Degraded condition's reason and message (empty
	// while not True) as last written; known says degraded is.
	degraded [2]string
	known    bool
}

// vacancyAfter is how long nobody may hold the virtual IPs before an
// event says so: less is the gap between a failover's two reports.
const vacancyAfter = 1500 * time.Millisecond

// moveCause says why the virtual IPs left from for to, given the fault
// remembered of from; "" when nothing tells.
type moveCause func(from, to, remembered string) string

// announce decides the events for a status change of the LoadBalancer
// with uid, from the status before and after the reconcile, what is
// remembered, what each node's agent reports wrong (faults), and why a
// move happened. It returns the memory to keep once the status is
// written, and how soon to look again (a vacancy not yet announced).
func announce(uid types.UID, before, after *v1alpha1.LoadBalancerStatus, mem holderMemory, faults map[string]string, now time.Time, cause moveCause) ([]announcement, holderMemory, time.Duration) {
	if mem.uid != uid {
		mem = holderMemory{uid: uid}
	}
	if !mem.known {
		// Nothing remembered (the manager restarted): status says.
		reason, message := trueCondition(before, v1alpha1.LoadBalancerDegradedCondition)
		mem.degraded, mem.known = [2]string{reason, message}, true
		mem.node = before.ActiveNode
	}
	var out []announcement
	// What went wrong on the holder: what its agent reports while it
	// holds the addresses; once nobody does, the first fault reported
	// (what follows, a restart, is not why it lost them).
	if mem.node != "" {
		switch f := faults[mem.node]; {
		case mem.node == after.ActiveNode:
			mem.fault = f
		case after.ActiveNode == "" && mem.fault == "":
			mem.fault = f
		}
	}
	was := mem.degraded
	degraded, message := trueCondition(after, v1alpha1.LoadBalancerDegradedCondition)
	mem.degraded = [2]string{degraded, message}
	switch {
	case degraded == v1alpha1.LoadBalancerSplitBrainReason && was[0] != degraded:
		out = append(out, announcement{corev1.EventTypeWarning, v1alpha1.LoadBalancerSplitBrainReason, "Observe", message})
	case was[0] == v1alpha1.LoadBalancerSplitBrainReason && degraded != was[0]:
		out = append(out, announcement{corev1.EventTypeNormal, EventSplitBrainEnded, "Observe", "One node holds the virtual IPs again"})
	}
	// A refusal: once per reason and message.
	if announcedRefusal(degraded) && mem.degraded != was {
		out = append(out, announcement{corev1.EventTypeWarning, degraded, "Apply", message})
	}

	ready := meta.FindStatusCondition(after.Conditions, v1alpha1.LoadBalancerReadyCondition)
	alone := after.ActiveNode != "" && (after.Holders == nil || len(after.Holders) > 0 && len(after.Holders[0].Nodes) == 1)
	var recheck time.Duration
	switch {
	case alone:
		if from := mem.node; from != after.ActiveNode {
			if from != "" {
				note := fmt.Sprintf("%s now holds %s (was %s", after.ActiveNode, strings.Join(addresses(after.VirtualIPs), ", "), from)
				if why := cause(from, after.ActiveNode, mem.fault); why != "" {
					note += ": " + why
				}
				out = append(out, announcement{corev1.EventTypeNormal, EventVirtualIPMoved, "Failover", note + ")"})
			}
			mem.fault = faults[after.ActiveNode]
		}
		mem.node, mem.vacantSince, mem.vacancyAnnounced = after.ActiveNode, time.Time{}, false
	case after.ActiveNode == "" && ready != nil && ready.Reason == v1alpha1.LoadBalancerNoActiveNodeReason && mem.node != "":
		if mem.vacantSince.IsZero() {
			mem.vacantSince = now
		}
		if wait := vacancyAfter - now.Sub(mem.vacantSince); wait > 0 {
			recheck = wait
		} else if !mem.vacancyAnnounced {
			out = append(out, announcement{corev1.EventTypeWarning, v1alpha1.LoadBalancerNoActiveNodeReason, "Observe",
				fmt.Sprintf("%s (was %s)", ready.Message, mem.node)})
			mem.vacancyAnnounced = true
		}
	case after.ActiveNode == "" && (ready == nil || ready.Reason != v1alpha1.LoadBalancerNoActiveNodeReason):
		// Released, refused before it ever served, no node selected: a
		// holder later is no move from the one before.
		mem.node, mem.fault, mem.vacantSince, mem.vacancyAnnounced = "", "", time.Time{}, false
	}
	return out, mem, recheck
}

// announcedRefusal tells the Degraded reasons where something asked for is not
// applied: each deserves a Warning a person reads.
func announcedRefusal(reason string) bool {
	return stalls(reason) || reason == v1alpha1.LoadBalancerLimitExceededReason || reason == v1alpha1.LoadBalancerReferenceNotFoundReason
}

// trueCondition is the reason and message of a condition of typ that is
// True; "" when it is not.
func trueCondition(st *v1alpha1.LoadBalancerStatus, typ string) (string, string) {
	c := meta.FindStatusCondition(st.Conditions, typ)
	if c == nil || c.Status != metav1.ConditionTrue {
		return "", ""
	}
	return c.Reason, c.Message
}

// addresses are the virtual IPs without their prefix lengths.
func addresses(vips []string) []string {
	out := make([]string, len(vips))
	for i, v := range vips {
		out[i], _, _ = strings.Cut(v, "/")
	}
	return out
}

// whyMoved says why the virtual IPs left from for to, from what the
// reconcile gathered: a handover the operator asked for, what from's agent
// reported wrong while it held them (remembered) or reports now,
// keepalived's state, or to's higher priority (a node back from a fault
// taking them back).
func (s *scope) whyMoved(from, to, remembered string) string {
	if s.Plan == nil {
		return ""
	}
	priority := func(name string) (int32, bool) {
		i := slices.IndexFunc(s.Nodes, func(n render.Node) bool { return n.Name == name })
		if i < 0 {
			return 0, false
		}
		return s.Nodes[i].Priority, true
	}
	fromPriority, selected := priority(from)
	rep, reported := s.reports[from]
	switch {
	case !selected:
		return "no longer runs the data plane"
	case slices.Contains(s.rollout.Handover, from):
		return "handed over before its pod is replaced"
	case slices.Contains(s.Maintenance, from):
		return "handed over: the node is cordoned or under maintenance"
	case remembered != "":
		return remembered
	case !reported:
		return "its agent does not report"
	case rep.Fault != "":
		return rep.Fault
	case rep.Role == v1alpha1.VRRPRoleUnknown:
		return "keepalived is not running"
	case rep.Role == v1alpha1.VRRPRoleFault:
		return "keepalived went FAULT"
	}
	if toPriority, ok := priority(to); ok && toPriority > fromPriority {
		return to + " has the higher priority"
	}
	return ""
}

// faults are what each node's agent reports wrong, by node.
func (s *scope) faults() map[string]string {
	out := make(map[string]string, len(s.reports))
	for name, rep := range s.reports {
		if rep.Fault != "" {
			out[name] = rep.Fault
		}
	}
	return out
}
