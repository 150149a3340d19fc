package priority

import (
	"maps"
	"slices"
	"testing"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
)

func TestAssign(t *testing.T) {
	pinned := []v1alpha1.NodePriority{{Node: "b", Priority: 150}, {Node: "gone", Priority: 200}}
	tests := []struct {
		name     string
		nodes    []string
		previous map[string]int32
		want     map[string]int32
	}{
		{
			name:  "pinned wins, the rest derived in name order",
			nodes: []string{"c", "a", "b"},
			want:  map[string]int32{"a": 100, "b": 150, "c": 50},
		},
		{
			name:     "a new node does not reorder the others",
			nodes:    []string{"a", "aa", "b", "c"},
			previous: map[string]int32{"a": 100, "b": 150, "c": 50},
			want:     map[string]int32{"a": 100, "aa": 25, "b": 150, "c": 50},
		},
		{
			name:     "a removed node frees its priority and moves nobody",
			nodes:    []string{"b", "c"},
			previous: map[string]int32{"a": 100, "b": 150, "c": 50},
			want:     map[string]int32{"b": 150, "c": 50},
		},
		{
			name:     "a previous priority now pinned by another node is reassigned",
			nodes:    []string{"b", "x"},
			previous: map[string]int32{"x": 150},
			want:     map[string]int32{"b": 150, "x": 100},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Assign(pinned, tt.nodes, tt.previous, nil)
			if !maps.Equal(got, tt.want) {
				t.Errorf("Assign() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAssignSpreadsDerivedPrioritiesThenFillsTheGaps(t *testing.T) {
	nodes := []string{"n00", "n01", "n02", "n03", "n04", "n05", "n06", "n07", "n08", "n09", "n10", "n11"}
	got := Assign(nil, nodes, nil, nil)
	want := []int32{100, 50, 25, 13, 7, 4, 2, 1, 99, 98, 97, 96}
	for i, n := range nodes {
		if got[n] != want[i] {
			t.Errorf("%s: priority %d, want %d (all: %v)", n, got[n], want[i], got)
		}
	}
}

func TestAssignManyNodesStaysInRange(t *testing.T) {
	var nodes []string
	for i := range 300 {
		nodes = append(nodes, string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	for n, p := range Assign(nil, nodes, nil, nil) {
		if p < 1 || p > 254 {
			t.Fatalf("node %s got priority %d", n, p)
		}
	}
}

// TestAssignSpreadsMasters: twelve LoadBalancers created one after the
// other on the same three nodes, none pinned. Each node leads four and is
// first backup of four; a fourth node then joins and a first one leaves,
// and no LoadBalancer's order of the remaining nodes changes.
func TestAssignSpreadsMasters(t *testing.T) {
	nodes := []string{"node-a", "node-b", "node-c"}
	var lbs []map[string]int32
	loadOf := func(skip int) Load {
		l := Load{}
		for i, p := range lbs {
			if i != skip {
				l.Add(p)
			}
		}
		return l
	}
	for range 12 {
		lbs = append(lbs, Assign(nil, nodes, nil, loadOf(-1)))
	}
	total := loadOf(-1)
	for _, n := range nodes {
		if total[n] != [2]int{4, 4} {
			t.Errorf("%s leads %d and backs first %d of 12, want 4 and 4 (all: %v)", n, total[n][0], total[n][1], lbs)
		}
	}
	order := func(p map[string]int32, among []string) []string {
		out := slices.Clone(among)
		slices.SortFunc(out, func(a, b string) int { return int(p[b] - p[a]) })
		return out
	}
	for _, change := range [][]string{
		{"node-a", "node-b", "node-c", "node-d"},
		{"node-b", "node-c", "node-d"},
	} {
		for i, before := range lbs {
			after := Assign(nil, change, before, loadOf(i))
			kept := slices.DeleteFunc(slices.Clone(change), func(n string) bool { _, ok := before[n]; return !ok })
			if !slices.Equal(order(before, kept), order(after, kept)) {
				t.Errorf("LoadBalancer %d: nodes %v reordered %v -> %v", i, change, before, after)
			}
			for _, n := range kept {
				if after[n] != before[n] {
					t.Errorf("LoadBalancer %d: %s moved from %d to %d", i, n, before[n], after[n])
				}
			}
			lbs[i] = after
		}
	}
}

func TestLoadCountsLeadsAndFirstBackups(t *testing.T) {
	l := Load{}
	l.Add(map[string]int32{"a": 50, "b": 100, "c": 25})
	l.Add(map[string]int32{"a": 150, "b": 150})
	l.Add(map[string]int32{"c": 1})
	// b leads the first, a the second (a tie, ranked by name), c the third.
	want := Load{"a": {1, 1}, "b": {1, 1}, "c": {1, 0}}
	if !maps.Equal(l, want) {
		t.Errorf("load %v, want %v", l, want)
	}
}
