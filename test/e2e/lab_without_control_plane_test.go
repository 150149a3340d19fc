package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/testing/lab"
)

// TestWithoutControlPlane runs last (go test runs files in name order,
// and this file sorts after every other here): it stops the manager
// and the API server. Nothing on the data path needs them: the VIP keeps serving and a
// failover still happens.
func TestWithoutControlPlane(t *testing.T) {
	l := requireLab(t)
	lb := applyWebsite(t, l)
	// Earlier tests killed this HAProxy too. The kubelet restarts a
	// container that dies again within 10 minutes of its last restart only
	// after a back-off that doubles from 10 s to at most 5 minutes; that
	// wait is the kubelet's, not hakeeper's.
	backoff := restartBackOff(t, l, lb, lab.NodeName(0), desired.ContainerHAProxy)
	if err := l.StopControlPlane(); err != nil {
		t.Fatal(err)
	}
	c := lab.NewProbeClient(l)
	probe := c.StartProbe("http://"+vip+"/", 10*time.Millisecond, 2*time.Minute+backoff)
	time.Sleep(2 * time.Second)
	if err := l.Kill(lab.NodeName(0), lb, "haproxy"); err != nil {
		t.Fatal(err)
	}
	holds := func(node string) func() error {
		return func() error {
			if !l.HoldsVIP(node, vip) {
				return fmt.Errorf("node-a %v, node-b %v", l.HoldsVIP(lab.NodeName(0), vip), l.HoldsVIP(lab.NodeName(1), vip))
			}
			return nil
		}
	}
	eventually(t, 30*time.Second, "node-b holding the VIP", holds(lab.NodeName(1)))
	// HAProxy restarts on node-a, which takes the VIP back (preemption).
	eventually(t, 30*time.Second+backoff, "node-a holding the VIP again", holds(lab.NodeName(0)))
	recovered := servedAgain(20*time.Second, probe)
	outage, ok, failed := probe.Stop()
	t.Logf("without a control plane: outages %v over the failover and the preemption back (%d answered, %d failed: %v)",
		probe.Outages(), ok, failed, probe.Errors())
	if !recovered || outage > 5*time.Second {
		t.Errorf("the VIP did not recover without the control plane: outage %v", outage)
	}
}

// restartBackOff is the longest the kubelet may wait before it restarts
// a container of node's data-plane pod once more: 10 s doubled for each
// restart it already made, at most 5 minutes.
func restartBackOff(t *testing.T, l *lab.Lab, lb *v1alpha1.LoadBalancer, node, container string) time.Duration {
	t.Helper()
	for _, p := range dataPlanePods(t, l, lb) {
		if p.Spec.NodeName != node {
			continue
		}
		for _, s := range p.Status.ContainerStatuses {
			if s.Name == container {
				return min(10*time.Second<<min(s.RestartCount, 5), 5*time.Minute)
			}
		}
	}
	t.Fatalf("no %s container on %s", container, node)
	return 0
}
