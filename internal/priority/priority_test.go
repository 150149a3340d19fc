package priority

import (
	"maps"
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
			got := Assign(pinned, tt.nodes, tt.previous)
			if !maps.Equal(got, tt.want) {
				t.Errorf("Assign() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAssignSpreadsDerivedPrioritiesThenFillsTheGaps(t *testing.T) {
	nodes := []string{"n00", "n01", "n02", "n03", "n04", "n05", "n06", "n07", "n08", "n09", "n10", "n11"}
	got := Assign(nil, nodes, nil)
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
	for n, p := range Assign(nil, nodes, nil) {
		if p < 1 || p > 254 {
			t.Fatalf("node %s got priority %d", n, p)
		}
	}
}
