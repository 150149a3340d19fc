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
//
// Which new node takes which of those priorities depends on the other
// LoadBalancers sharing the nodes: the node that leads the fewest of them
// (has their highest priority) takes the highest, so with several
// LoadBalancers and no pinned priorities each node is master of its share
// of them instead of the first node by name being master of all.
package priority

import (
	"slices"
	"strings"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
)

const (
	minPriority = 1
	maxPriority = 254
)

// spreadPriorities are handed out first (see the package comment).
var spreadPriorities = []int32{v1alpha1.DefaultDerivedPriority, 50, 25, 13, 7, 4, 2, 1}

// Load counts, per node, how many other LoadBalancers it leads (index 0:
// their highest priority, so their master while healthy) and how many it
// backs first (index 1: second highest, where their VIP goes on failover).
type Load map[string][2]int

// Add counts one other LoadBalancer's priorities. Equal priorities (pinned
// so on purpose) are ranked by name: keepalived breaks such a tie by
// address, which is not known here, and either way it is one lead.
func (l Load) Add(priorities map[string]int32) {
	nodes := make([]string, 0, len(priorities))
	for n := range priorities {
		nodes = append(nodes, n)
	}
	slices.SortFunc(nodes, func(a, b string) int {
		if priorities[a] != priorities[b] {
			return int(priorities[b] - priorities[a])
		}
		return strings.Compare(a, b)
	})
	for rank, n := range nodes[:min(2, len(nodes))] {
		c := l[n]
		c[rank]++
		l[n] = c
	}
}

// Assign returns the priority of every node in nodes. previous holds the
// assignment recorded last time (it may be nil); entries for nodes that are
// gone are ignored. load is what the other LoadBalancers give each node (it
// may be nil): new nodes take the free priorities least loaded first.
func Assign(pinned []v1alpha1.NodePriority, nodes []string, previous map[string]int32, load Load) map[string]int32 {
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
	// The highest free priority to the node leading fewest others, the
	// next to the one backing fewest first; ties by name.
	for rank := range min(2, len(fresh)) {
		rest := fresh[rank:]
		slices.SortStableFunc(rest, func(a, b string) int {
			la, lb := load[a], load[b]
			if la[rank] != lb[rank] {
				return la[rank] - lb[rank]
			}
			return la[1-rank] - lb[1-rank]
		})
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
