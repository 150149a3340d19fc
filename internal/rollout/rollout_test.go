package rollout

import (
	"slices"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// cluster is three nodes, node-a holding the virtual IPs, every pod
// serving; current says which nodes' pods run the current template.
func cluster(current ...string) ([]Pod, map[string]Node) {
	var pods []Pod
	nodes := map[string]Node{}
	for _, n := range []string{"node-a", "node-b", "node-c"} {
		pod := Pod{Name: "lb-" + n, UID: "uid-" + n, Node: n, Ready: true, Current: slices.Contains(current, n)}
		if pod.Current {
			pod.Name += "-new"
		}
		pods = append(pods, pod)
		nodes[n] = Node{ServingPod: pod.Name, Holds: n == "node-a"}
	}
	return pods, nodes
}

var wanted = []string{"node-a", "node-b", "node-c"}

func TestNothingToRoll(t *testing.T) {
	pods, nodes := cluster("node-a", "node-b", "node-c")
	if p := Next(pods, nodes, wanted, now); !p.Done || p.Action != None || len(p.Handover) != 0 {
		t.Fatalf("%+v", p)
	}
}

func TestBackupsFirstByName(t *testing.T) {
	pods, nodes := cluster()
	p := Next(pods, nodes, wanted, now)
	if p.Action != Delete || p.Pod.Node != "node-b" || p.Done {
		t.Fatalf("want node-b's pod deleted first, got %+v", p)
	}
	pods, nodes = cluster("node-b")
	if p := Next(pods, nodes, wanted, now); p.Action != Delete || p.Pod.Node != "node-c" {
		t.Fatalf("want node-c's pod next, got %+v", p)
	}
}

func TestAPodThatServesNothingGoesFirst(t *testing.T) {
	pods, nodes := cluster()
	nodes["node-c"] = Node{}
	if p := Next(pods, nodes, wanted, now); p.Action != Delete || p.Pod.Node != "node-c" {
		t.Fatalf("want the broken node-c's pod first, got %+v", p)
	}
}

func TestWaitsForTheReplacedPodToServe(t *testing.T) {
	for name, change := range map[string]func([]Pod, map[string]Node){
		"not ready":               func(p []Pod, _ map[string]Node) { p[1].Ready = false },
		"agent has not reported":  func(_ []Pod, n map[string]Node) { n["node-b"] = Node{ServingPod: "lb-node-b"} },
		"old pod still stopping":  func(p []Pod, _ map[string]Node) { p[1].Terminating, p[1].Current, p[1].Name = true, false, "lb-node-b" },
		"no pod on node-b at all": nil,
	} {
		t.Run(name, func(t *testing.T) {
			pods, nodes := cluster("node-b")
			if change != nil {
				change(pods, nodes)
			} else {
				pods = slices.Delete(pods, 1, 2)
			}
			p := Next(pods, nodes, wanted, now)
			if p.Action != None || p.Done || !strings.Contains(p.Waiting, "node-b") {
				t.Fatalf("want a wait naming node-b, got %+v", p)
			}
		})
	}
}

func TestTheHolderHandsOverLast(t *testing.T) {
	pods, nodes := cluster("node-b", "node-c")
	p := Next(pods, nodes, wanted, now)
	if p.Action != MarkHandover || p.Pod.Node != "node-a" || !slices.Equal(p.Handover, []string{"node-a"}) {
		t.Fatalf("want node-a marked and lowered, got %+v", p)
	}
	// Marked, still holding: wait, lowered.
	pods[0].HandoverSince = now.Add(-5 * time.Second)
	p = Next(pods, nodes, wanted, now)
	if p.Action != None || !slices.Equal(p.Handover, []string{"node-a"}) || !strings.Contains(p.Waiting, "hands the virtual IPs over") {
		t.Fatalf("want a wait with node-a lowered, got %+v", p)
	}
	// Handed over: its pod goes, still lowered until it is gone.
	nodes["node-a"] = Node{ServingPod: pods[0].Name}
	nodes["node-b"] = Node{ServingPod: pods[1].Name, Holds: true}
	p = Next(pods, nodes, wanted, now)
	if p.Action != Delete || p.Pod.Node != "node-a" || !slices.Equal(p.Handover, []string{"node-a"}) {
		t.Fatalf("want node-a's pod deleted, still lowered, got %+v", p)
	}
	// Stopping: still lowered, so keepalived in the dying pod cannot
	// take the VIPs back.
	pods[0].Terminating = true
	p = Next(pods, nodes, wanted, now)
	if !slices.Equal(p.Handover, []string{"node-a"}) || p.Action != None {
		t.Fatalf("want node-a lowered while its pod stops, got %+v", p)
	}
	// Replaced: done, and the new pod is not lowered.
	pods[0] = Pod{Name: "lb-node-a-new", Node: "node-a", Ready: true, Current: true}
	if p := Next(pods, nodes, wanted, now); !p.Done || len(p.Handover) != 0 {
		t.Fatalf("want done, nothing lowered, got %+v", p)
	}
}

func TestAHandoverThatNeverHappensEnds(t *testing.T) {
	pods, nodes := cluster("node-b", "node-c")
	pods[0].HandoverSince = now.Add(-HandoverTimeout)
	if p := Next(pods, nodes, wanted, now); p.Action != Delete || p.Pod.Node != "node-a" {
		t.Fatalf("want node-a's pod deleted after the timeout, got %+v", p)
	}
}

func TestNoOneToHandOverTo(t *testing.T) {
	pods := []Pod{{Name: "lb-node-a", Node: "node-a", Ready: true}}
	nodes := map[string]Node{"node-a": {ServingPod: "lb-node-a", Holds: true}}
	if p := Next(pods, nodes, []string{"node-a"}, now); p.Action != Delete || !strings.Contains(p.Reason, "no other node") {
		t.Fatalf("want a single node replaced directly, got %+v", p)
	}
}

func TestARolledBackPodLosesItsMark(t *testing.T) {
	pods, nodes := cluster("node-a", "node-b", "node-c")
	pods[0].HandoverSince = now
	p := Next(pods, nodes, wanted, now)
	if !p.Done || len(p.Handover) != 0 || len(p.Unmark) != 1 || p.Unmark[0].Node != "node-a" {
		t.Fatalf("want node-a's mark removed and nothing lowered, got %+v", p)
	}
}
