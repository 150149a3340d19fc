package e2e

import (
	"fmt"
	"maps"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/testing/lab"
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
	// Its own LoadBalancer: three kills put its agent container in the
	// kubelet's restart back-off, which must not reach other scenarios.
	addr := newVIP(t)
	lb := variant("restart", addr)
	createAndWait(t, l, lb)
	settledHealthy(t, l, lb)
	before := transitions(t, l, lb)
	// A request fails when nobody answers within a second: a VIP that moves
	// shows in the other nodes' transitions below; a request slowed by a
	// container restart on two busy cores is not a failure.
	probe := l.NewClient(time.Second).StartProbe("http://"+addr+"/", 10*time.Millisecond, 3*time.Minute)
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
		if !l.HoldsVIP(lab.NodeName(0), addr) {
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

// TestHungAgentHAProxyDies: the agent on the master is frozen (SIGSTOP),
// so it writes nothing; then HAProxy's master process dies. Its supervisor
// sets keepalived's tracked file at once, so node-b takes the VIP as fast
// as when the agent sees it. The frozen agent's liveness probe fails; once
// it runs again node-a recovers and preempts back.
func TestHungAgentHAProxyDies(t *testing.T) {
	l := requireLab(t)
	// Its own LoadBalancer, deleted after: its containers end in restart
	// back-off.
	lb := variant("hung", newVIP(t))
	createAndWait(t, l, lb)
	settledHealthy(t, l, lb)
	agent, err := l.Container(lab.NodeName(0), lb, desired.ContainerAgent)
	if err != nil {
		t.Fatal(err)
	}
	supervisor, err := l.Container(lab.NodeName(0), lb, desired.ContainerHAProxy)
	if err != nil {
		t.Fatal(err)
	}
	// HAProxy's master is the supervisor's only child.
	children := descendants(supervisor.PID)
	if len(children) == 0 {
		t.Fatalf("no HAProxy under its supervisor (pid %d)", supervisor.PID)
	}
	master := children[0]
	if err := syscall.Kill(agent.PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(agent.PID, syscall.SIGCONT) })
	outage := failover(t, l, lb, lab.NodeName(1), func() error { return syscall.Kill(master, syscall.SIGKILL) })
	t.Logf("HAProxy killed on the master while its agent was frozen: outage %.3fs", outage.Seconds())
	_ = syscall.Kill(agent.PID, syscall.SIGCONT)
	waitActive(t, l, lb, lab.NodeName(0), 90*time.Second)
}

// settledHealthy waits until every node runs the current config, is
// healthy and past its start-up VRRP transitions (BACKUP, FAULT until the
// agent saw HAProxy healthy, BACKUP again), with node-a active, and stays
// so for a second: what follows counts only what it causes.
func settledHealthy(t *testing.T, l *lab.Lab, lb *v1alpha1.LoadBalancer) {
	t.Helper()
	settled(t, l, lb)
	eventually(t, 60*time.Second, "every node healthy, node-a active, for a second", func() error {
		check := func() error {
			got := &v1alpha1.LoadBalancer{}
			if err := l.Client.Get(ctx, client.ObjectKeyFromObject(lb), got); err != nil {
				return err
			}
			if got.Status.ActiveNode != lab.NodeName(0) {
				return fmt.Errorf("active %q", got.Status.ActiveNode)
			}
			for _, n := range got.Status.Nodes {
				if !n.Ready || (n.Role != v1alpha1.VRRPRoleMaster && n.Role != v1alpha1.VRRPRoleBackup) {
					return fmt.Errorf("%s: ready %v, role %s", n.Name, n.Ready, n.Role)
				}
			}
			return nil
		}
		if err := check(); err != nil {
			return err
		}
		first := transitions(t, l, lb)
		time.Sleep(time.Second)
		if err := check(); err != nil {
			return err
		}
		if now := transitions(t, l, lb); !maps.Equal(first, now) {
			return fmt.Errorf("transitions still moving: %v then %v", first, now)
		}
		return nil
	})
}

// TestProbesCatchHangs: the kubelet's probes are HTTP requests on the
// node's loopback, no exec. They answer on a backup node; then the agent
// of one backup and HAProxy of the other are frozen (SIGSTOP) and the
// kubelet restarts each: 3 failures 10 s apart with a 5 s timeout, then
// the 30 s grace a frozen process takes to be killed. (In one pod the
// kubelet kills one container after the other, each taking the grace.)
func TestProbesCatchHangs(t *testing.T) {
	l := requireLab(t)
	lb := variant("probes", newVIP(t))
	createAndWait(t, l, lb)
	settledHealthy(t, l, lb)
	if err := l.Client.Get(ctx, client.ObjectKeyFromObject(lb), lb); err != nil {
		t.Fatal(err)
	}
	node := lab.NodeName(1)
	agentPort, haproxyPort := desired.HealthPorts(desired.DefaultHealthBasePort, lb.Status.VirtualRouterID)
	for _, probe := range []struct {
		port int32
		path string
	}{{agentPort, contract.AgentAlivePath}, {agentPort, contract.AgentStartedPath}, {haproxyPort, contract.HAProxyMonitorPath}} {
		// As the kubelet asks, from the node's network namespace.
		script := fmt.Sprintf(`exec 3<>/dev/tcp/127.0.0.1/%d && printf 'GET %s HTTP/1.0\r\n\r\n' >&3 && timeout 5 head -n 1 <&3`, probe.port, probe.path)
		cmd, err := l.NodeCommand(ctx, node, "timeout", "10", "bash", "-c", script)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), " 200 ") {
			t.Errorf("127.0.0.1:%d%s on %s: %v %q", probe.port, probe.path, node, err, out)
		}
	}

	pods, err := l.Pods(ctx, lab.OperatorNamespace, map[string]string{desired.LabelLoadBalancer: lb.Name})
	if err != nil {
		t.Fatal(err)
	}
	agentNode, haproxyNode := lab.NodeName(1), lab.NodeName(2)
	restarts := func() (agent, haproxy int32) {
		for _, p := range pods {
			got := &corev1.Pod{}
			if l.Client.Get(ctx, client.ObjectKeyFromObject(&p), got) != nil {
				continue
			}
			for _, s := range append(got.Status.InitContainerStatuses, got.Status.ContainerStatuses...) {
				switch {
				case s.Name == desired.ContainerAgent && p.Spec.NodeName == agentNode:
					agent = s.RestartCount
				case s.Name == desired.ContainerHAProxy && p.Spec.NodeName == haproxyNode:
					haproxy = s.RestartCount
				}
			}
		}
		return agent, haproxy
	}
	agentBefore, haproxyBefore := restarts()
	agent, err := l.Container(agentNode, lb, desired.ContainerAgent)
	if err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	if err := syscall.Kill(agent.PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(agent.PID, syscall.SIGCONT) })
	freezeHAProxy(t, l, lb, haproxyNode, true)
	var agentAfter, haproxyAfter int32
	var agentTook, haproxyTook time.Duration
	eventually(t, 150*time.Second, "the kubelet restarting the frozen agent and HAProxy", func() error {
		agentAfter, haproxyAfter = restarts()
		if agentAfter > agentBefore && agentTook == 0 {
			agentTook = time.Since(frozen)
		}
		if haproxyAfter > haproxyBefore && haproxyTook == 0 {
			haproxyTook = time.Since(frozen)
		}
		if agentTook == 0 || haproxyTook == 0 {
			return fmt.Errorf("restarts: agent %d -> %d, haproxy %d -> %d", agentBefore, agentAfter, haproxyBefore, haproxyAfter)
		}
		return nil
	})
	t.Logf("frozen: the agent on %s restarted after %.0f s, HAProxy on %s after %.0f s", agentNode, agentTook.Seconds(), haproxyNode, haproxyTook.Seconds())
	waitActive(t, l, lb, lab.NodeName(0), 90*time.Second)
}
