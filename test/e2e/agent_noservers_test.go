package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/testing/lab"
)

// TestNoServersKeepsOneHolder: every backend fails its health check, so
// no node's HAProxy has a server up. Each node lowers its claim to the
// lowest priority instead of leaving VRRP: one node keeps the VIP and
// answers 503 (before, every node went FAULT and clients got no answer at
// all). Then only node-b can reach the servers again (nftables drops the
// others' traffic to them): node-b, the only node with servers up, takes
// the VIP. With the block lifted, node-a preempts back.
func TestNoServersKeepsOneHolder(t *testing.T) {
	l := requireLab(t)
	addr := newVIP(t)
	lb := variant("noservers", addr)
	createAndWait(t, l, lb)
	settledHealthy(t, l, lb)
	restore := func() {
		for i := range 3 {
			_ = l.SetBackendHealthy(i, true)
		}
		for _, n := range []int{0, 2} {
			_ = blockBackends(l, lab.NodeName(n), false)
		}
	}
	t.Cleanup(restore)
	c := l.NewClient(time.Second)
	url := "http://" + addr + "/"
	watch := l.WatchHolders(addr, 5*time.Millisecond, 5*time.Minute)
	stopped := false
	samples := func() []lab.HolderSample {
		if stopped {
			return nil
		}
		stopped = true
		all, err := watch.Stop()
		if err != nil {
			t.Fatal(err)
		}
		return all
	}
	defer samples()

	down := time.Now()
	for i := range 3 {
		if err := l.SetBackendHealthy(i, false); err != nil {
			t.Fatal(err)
		}
	}
	// Every agent sees no server up (its report says unhealthy) ...
	eventually(t, 60*time.Second, "every node without a server up", func() error {
		for i := range 3 {
			if r := nodeReport(t, l, lb, lab.NodeName(i)); r.Healthy {
				return fmt.Errorf("%s still healthy", lab.NodeName(i))
			}
		}
		return nil
	})
	allDown := time.Since(down)
	// ... and status shows it as ServersDown, not as a node without a VIP.
	eventually(t, 30*time.Second, "ServersDown in status", degradedWith(l, lb, v1alpha1.LoadBalancerServersDownReason))
	statusDown := time.Since(down)
	// Past the agents' debounce, one node holds the VIP and HAProxy
	// answers 503 for a backend with no server.
	time.Sleep(2 * time.Second)
	settledAt := time.Now()
	body, err := c.Get(ctx, url, "")
	if err == nil || !strings.Contains(err.Error(), "status 503") {
		t.Errorf("with every server down the VIP answered %v (%.80q), want HAProxy's 503", err, body)
	}
	time.Sleep(3 * time.Second)
	noneUpEnd := time.Now()

	// node-b alone reaches the servers again.
	for _, n := range []int{0, 2} {
		if err := blockBackends(l, lab.NodeName(n), true); err != nil {
			t.Fatal(err)
		}
	}
	back := time.Now()
	for i := range 3 {
		if err := l.SetBackendHealthy(i, true); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 60*time.Second, "node-b, the only node with servers up, holding the VIP alone", func() error {
		if h := currentHolders(l, addr); !slices.Equal(h, []string{lab.NodeName(1)}) {
			return fmt.Errorf("holders %v", h)
		}
		_, err := c.Get(ctx, url, "")
		return err
	})
	toNodeB := time.Since(back)
	waitActive(t, l, lb, lab.NodeName(1), 30*time.Second)
	statusB := time.Since(back)
	time.Sleep(2 * time.Second)
	bEnd := time.Now()
	restore()
	waitActive(t, l, lb, lab.NodeName(0), 90*time.Second)

	all := samples()
	check := func(what string, from, to time.Time, want func([]string) error) {
		spans := between(all, from, to)
		t.Logf("%s: %s", what, describeHolders(spans, down))
		if len(spans) == 0 {
			t.Errorf("%s: nothing observed", what)
		}
		for _, s := range spans {
			if err := want(s.holders); err != nil {
				t.Errorf("%s, at +%v for %v: %v", what, s.at.Sub(down).Round(time.Millisecond), s.d.Round(time.Millisecond), err)
			}
		}
	}
	t.Logf("while the nodes lowered their claims: %s", describeHolders(between(all, down, settledAt), down))
	check("every server down", settledAt, noneUpEnd, func(h []string) error {
		if len(h) != 1 {
			return fmt.Errorf("held by %v, want exactly one node", h)
		}
		return nil
	})
	check("servers up for node-b only", back.Add(toNodeB), bEnd, func(h []string) error {
		if !slices.Equal(h, []string{lab.NodeName(1)}) {
			return fmt.Errorf("held by %v, want node-b alone", h)
		}
		return nil
	})
	t.Logf("every server down: every agent saw it after %v, status said ServersDown after %v; the VIP stayed on one node answering 503",
		allDown.Round(100*time.Millisecond), statusDown.Round(100*time.Millisecond))
	t.Logf("servers back for node-b only: node-b held the VIP alone and served after %v, status named it active after %v",
		toNodeB.Round(100*time.Millisecond), statusB.Round(100*time.Millisecond))
}

// blockBackends drops (or stops dropping) a node's traffic to the lab's
// backends.
func blockBackends(l *lab.Lab, node string, block bool) error {
	return nodeFirewall(l, node, "hkbackends", "output", block, "ip", "daddr",
		"{ "+strings.Join([]string{lab.BackendAddr(0), lab.BackendAddr(1), lab.BackendAddr(2)}, ", ")+" }", "drop")
}

func currentHolders(l *lab.Lab, addr string) []string {
	var out []string
	for i := range 3 {
		if l.HoldsVIP(lab.NodeName(i), addr) {
			out = append(out, lab.NodeName(i))
		}
	}
	return out
}
