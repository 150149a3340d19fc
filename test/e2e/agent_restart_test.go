package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/lab"
)

// TestAgentRestartKeepsVIP restarts the master's agent three times (a
// crash, as SIGKILL leaves it; the kubelet restarts the sidecar) while a
// client probes the VIP every 10 ms. The agent resumes from what HAProxy
// and keepalived run: the tracked files stay as they were, so the VIP
// never leaves node-a (the other nodes' agents, which did not restart,
// count no VRRP transition), no request fails, and status shows node-a
// active and current again.
func TestAgentRestartKeepsVIP(t *testing.T) {
	l := requireLab(t)
	lb := applyWebsite(t, l)
	// Every node past its first notification (Unknown to BACKUP counts),
	// so that what follows counts only moves.
	eventually(t, 30*time.Second, "every node reporting a VRRP role", func() error {
		for node, n := range transitions(t, l, lb) {
			if n == 0 {
				return fmt.Errorf("%s has reported no role yet", node)
			}
		}
		return nil
	})
	settled(t, l, lb)
	before := transitions(t, l, lb)
	probe := lab.NewProbeClient(l).StartProbe("http://"+vip+"/", 10*time.Millisecond, 3*time.Minute)
	for i := range 3 {
		old, err := l.Container(lab.NodeName(0), lb, desired.ContainerAgent)
		if err != nil {
			probe.Stop()
			t.Fatal(err)
		}
		if err := l.Kill(lab.NodeName(0), lb, desired.ContainerAgent); err != nil {
			probe.Stop()
			t.Fatal(err)
		}
		eventually(t, 60*time.Second, fmt.Sprintf("restart %d of node-a's agent", i+1), func() error {
			c, err := l.Container(lab.NodeName(0), lb, desired.ContainerAgent)
			if err != nil {
				return err
			}
			if c.ID == old.ID {
				return fmt.Errorf("still the killed container")
			}
			return nil
		})
		waitActive(t, l, lb, lab.NodeName(0), 60*time.Second)
		if !l.HoldsVIP(lab.NodeName(0), vip) {
			t.Errorf("node-a lost the VIP after restart %d of its agent", i+1)
		}
	}
	outage, ok, failed := probe.Stop()
	t.Logf("three agent restarts on the master: %d answered, %d failed, longest outage %v", ok, failed, outage)
	if failed > 0 {
		t.Errorf("%d requests failed: %v", failed, probe.Errors())
	}
	after := transitions(t, l, lb)
	for _, node := range []string{lab.NodeName(1), lab.NodeName(2)} {
		if after[node] != before[node] {
			t.Errorf("%s counted %d VRRP transitions while node-a's agent restarted: the VIP moved", node, after[node]-before[node])
		}
	}
}
