package controllers

import (
	"slices"
	"testing"
)

// TestAllocationsIndexFollowsChanges: what this process applied is found
// by address, router ID and node until it changes or goes, and no value
// it no longer has still leads to it.
func TestAllocationsIndexFollowsChanges(t *testing.T) {
	var as allocations
	if got := as.keys(indexRouterID, "7"); len(got) != 0 {
		t.Fatalf("empty: %v", got)
	}
	as.set("ns/a", allocation{routerID: 7, virtualIPs: []string{"198.18.0.10/24"}, priorities: map[string]int32{"n1": 100, "n2": 50}})
	as.set("ns/b", allocation{routerID: 8, virtualIPs: []string{"198.18.0.11/24"}, priorities: map[string]int32{"n2": 100}})
	for _, c := range []struct {
		index, value string
		want         []string
	}{
		{indexRouterID, "7", []string{"ns/a"}},
		{indexClaimedAddr, "198.18.0.11", []string{"ns/b"}},
		{indexStatusNode, "n2", []string{"ns/a", "ns/b"}},
		{indexStatusNode, "n3", nil},
	} {
		got := as.keys(c.index, c.value)
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s=%s: %v, want %v", c.index, c.value, got, c.want)
		}
	}
	// a moves to another ID, address and node: nothing old leads to it.
	as.set("ns/a", allocation{routerID: 9, virtualIPs: []string{"198.18.0.12/24"}, priorities: map[string]int32{"n3": 100}})
	if got := as.keys(indexRouterID, "7"); len(got) != 0 {
		t.Errorf("old router ID still indexed: %v", got)
	}
	if got := as.keys(indexClaimedAddr, "198.18.0.10"); len(got) != 0 {
		t.Errorf("old address still indexed: %v", got)
	}
	if got := as.keys(indexStatusNode, "n2"); !slices.Equal(got, []string{"ns/b"}) {
		t.Errorf("n2: %v, want only ns/b", got)
	}
	if a, ok := as.get("ns/a"); !ok || a.routerID != 9 {
		t.Errorf("get: %+v %v", a, ok)
	}
	as.delete("ns/a")
	if _, ok := as.get("ns/a"); ok || len(as.keys(indexStatusNode, "n3")) != 0 || len(as.keys(indexRouterID, "9")) != 0 {
		t.Error("a deleted allocation is still found")
	}
}
