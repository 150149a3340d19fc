package e2e

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/testing/lab"
)

// blockVRRP drops (or stops dropping) VRRP (IP protocol 112) arriving at
// a node.
func blockVRRP(l *lab.Lab, node string, block bool) error {
	return nodeFirewall(l, node, "hkvrrp", "input", block, "ip", "protocol", "vrrp", "drop")
}

// nodeFirewall adds (or deletes) an nftables table of its own in a node's
// namespace, with one chain on hook holding one rule.
func nodeFirewall(l *lab.Lab, node, table, hook string, on bool, rule ...string) error {
	argv := [][]string{{"nft", "delete", "table", "inet", table}}
	if on {
		argv = [][]string{
			{"nft", "add", "table", "inet", table},
			{"nft", "add", "chain", "inet", table, "c", "{ type filter hook " + hook + " priority 0 ; }"},
			append([]string{"nft", "add", "rule", "inet", table, "c"}, rule...),
		}
	}
	for _, a := range argv {
		cmd, err := l.NodeCommand(ctx, node, a...)
		if err != nil {
			return err
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %v: %s", a, err, out)
		}
	}
	return nil
}

// TestSplitBrainObserved cuts VRRP towards node-b: it hears no advert,
// becomes master and adds the VIP to its interface while node-a keeps it.
// Status must show both holders and SplitBrain naming them within
// seconds, from what the agents see on the interfaces, with an event; and
// one holder again once VRRP flows.
func TestSplitBrainObserved(t *testing.T) {
	l := requireLab(t)
	addr := newVIP(t)
	lb := variant("holders", addr)
	createAndWait(t, l, lb)
	live := func() *v1alpha1.LoadBalancer {
		got := &v1alpha1.LoadBalancer{}
		if err := l.Client.Get(ctx, client.ObjectKeyFromObject(lb), got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	// Start-up first: until node-a's HAProxy is healthy another node may
	// take the VIP, and status may show it for the next half second.
	eventually(t, 30*time.Second, "node-a alone holding the VIP in status", func() error {
		if h := live().Status.Holders; len(h) != 1 || h[0].VirtualIP != addr || !slices.Equal(h[0].Nodes, []string{lab.NodeName(0)}) {
			return fmt.Errorf("holders %+v, want %s on node-a alone", h, addr)
		}
		return nil
	})

	t.Cleanup(func() { _ = blockVRRP(l, lab.NodeName(1), false) })
	if err := blockVRRP(l, lab.NodeName(1), true); err != nil {
		t.Fatal(err)
	}
	blocked := time.Now()
	waitHolder(t, l, lb, lab.NodeName(1), addr, 10*time.Second)
	onInterface := time.Since(blocked)
	eventually(t, 30*time.Second, "SplitBrain in status", func() error {
		got := live()
		d := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.LoadBalancerDegradedCondition)
		want := fmt.Sprintf("several nodes hold %s: %s, %s", addr, lab.NodeName(0), lab.NodeName(1))
		if d == nil || d.Status != metav1.ConditionTrue || d.Reason != v1alpha1.LoadBalancerSplitBrainReason || !strings.Contains(d.Message, want) {
			return fmt.Errorf("degraded %+v", d)
		}
		return nil
	})
	shown := time.Since(blocked)
	out, err := l.Kubectl(ctx, "events", "-n", lb.Namespace, "--for", "loadbalancer/"+lb.Name, "--types=Warning")
	if err != nil || !strings.Contains(string(out), "SplitBrain") {
		t.Errorf("no SplitBrain event: %v\n%s", err, out)
	}

	if err := blockVRRP(l, lab.NodeName(1), false); err != nil {
		t.Fatal(err)
	}
	lifted := time.Now()
	eventually(t, 30*time.Second, "one holder again", func() error {
		got := live()
		d := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.LoadBalancerDegradedCondition)
		if d == nil || d.Status != metav1.ConditionFalse || len(got.Status.Holders) != 1 || len(got.Status.Holders[0].Nodes) != 1 {
			return fmt.Errorf("degraded %+v, holders %+v", d, got.Status.Holders)
		}
		return nil
	})
	t.Logf("VRRP blocked towards node-b: VIP on its interface after %.2fs, SplitBrain in status after %.2fs; cleared %.2fs after the block was lifted",
		onInterface.Seconds(), shown.Seconds(), time.Since(lifted).Seconds())
	waitActive(t, l, lb, lab.NodeName(0), 30*time.Second)
	narrow, err := l.Kubectl(ctx, "get", "hlb", lb.Name, "-n", lb.Namespace)
	if err != nil || !strings.Contains(string(narrow), lab.NodeName(0)) {
		t.Errorf("kubectl get does not show the holder: %v\n%s", err, narrow)
	}
	// The default view stays narrow; -o wide adds the router ID, the
	// nodes ready to serve and Ready's reason and message (why a
	// LoadBalancer is not Ready, when it is not).
	if strings.Contains(string(narrow), "ROUTER ID") || strings.Contains(string(narrow), "READY NODES") || strings.Contains(string(narrow), "MESSAGE") {
		t.Errorf("kubectl get shows the wide columns:\n%s", narrow)
	}
	got := live()
	if want := strings.Join([]string{lab.NodeName(0), lab.NodeName(1), lab.NodeName(2)}, ","); got.Status.ReadyNodes != want {
		t.Errorf("status.readyNodes %q, want %q (every node ready, by priority)", got.Status.ReadyNodes, want)
	}
	wide, err := l.Kubectl(ctx, "get", "hlb", lb.Name, "-n", lb.Namespace, "-o", "wide")
	for _, want := range []string{"ROUTER ID", "READY NODES", "REASON", "MESSAGE", strconv.Itoa(int(got.Status.VirtualRouterID)), got.Status.ReadyNodes,
		v1alpha1.LoadBalancerAvailableReason, "Node " + lab.NodeName(0) + " serves"} {
		if err != nil || !strings.Contains(string(wide), want) {
			t.Errorf("kubectl get -o wide lacks %q: %v\n%s", want, err, wide)
		}
	}
}
