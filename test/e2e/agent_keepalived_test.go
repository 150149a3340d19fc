package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/testing/lab"
)

// TestKeepalivedKilled: keepalived releases its virtual IPs only when it
// stops cleanly. Two ways it does not, on the master, under a client
// probing every 10 ms while every node's interface is read every 5 ms:
//
//  1. keepalived's processes (the parent and its VRRP child) SIGKILLed, as
//     a crash or the OOM killer leaves them. Its supervisor removes the
//     VIP at once; node-b takes over; status stops calling node-a MASTER.
//  2. the whole keepalived container killed at once, supervisor included
//     (cgroup-wide OOM kill), and the pod deleted right after. Nothing on
//     node-a can remove the VIP until a keepalived container starts there
//     again, whose supervisor removes it before keepalived runs.
//
// After each bound exactly one node holds the VIP until node-a, back,
// takes it over again.
func TestKeepalivedKilled(t *testing.T) {
	l := requireLab(t)
	// Its own LoadBalancer: killed containers go into restart back-off.
	addr := newVIP(t)
	lb := variant("vrrpkill", addr)
	createAndWait(t, l, lb)
	settledHealthy(t, l, lb)

	t.Run("processes", func(t *testing.T) {
		supervisor, err := l.Container(lab.NodeName(0), lb, desired.ContainerKeepalived)
		if err != nil {
			t.Fatal(err)
		}
		procs := descendants(supervisor.PID)
		if len(procs) < 2 {
			t.Fatalf("keepalived under its supervisor %d: %v, want the parent and its VRRP process", supervisor.PID, procs)
		}
		probe := l.NewClient(time.Second).StartProbe("http://"+addr+"/", 10*time.Millisecond, time.Minute)
		watch := l.WatchHolders(addr, 5*time.Millisecond, time.Minute)
		killed := time.Now()
		killAtOnce(procs)
		// node-a's role leaves MASTER in status (its keepalived is gone).
		eventually(t, 30*time.Second, "node-a's role cleared in status", func() error {
			if r := nodeRole(t, l, lb, lab.NodeName(0)); r == v1alpha1.VRRPRoleMaster {
				return fmt.Errorf("node-a still %s", r)
			}
			return nil
		})
		roleCleared := time.Since(killed)
		waitActive(t, l, lb, lab.NodeName(0), 90*time.Second)
		samples, err := watch.Stop()
		if err != nil {
			t.Fatal(err)
		}
		// The supervisor removed it, not keepalived on its way out; its log
		// is the previous container's once the kubelet has restarted it.
		eventually(t, 90*time.Second, "the killed keepalived's supervisor saying it removed "+addr, func() error {
			log, err := l.Kubectl(ctx, "logs", "-n", supervisor.Namespace, supervisor.Pod, "-c", desired.ContainerKeepalived, "--previous")
			if err != nil || !strings.Contains(string(log), "removed "+addr+" from eth0: no keepalived runs") {
				return fmt.Errorf("%v: %s", err, log)
			}
			return nil
		})
		outage, ok, failed := probe.Stop()
		released, tookOver := checkOneHolder(t, samples, killed, time.Now(), 2*time.Second)
		t.Logf("keepalived SIGKILLed on the master: node-a released the VIP after %v, node-b held it after %v, "+
			"status dropped MASTER after %v; client: %d answered, %d failed, longest outage %.3fs",
			released.Round(time.Millisecond), tookOver.Round(time.Millisecond), roleCleared.Round(100*time.Millisecond),
			ok, failed, outage.Seconds())
	})

	t.Run("container and pod", func(t *testing.T) {
		settledHealthy(t, l, lb)
		supervisor, err := l.Container(lab.NodeName(0), lb, desired.ContainerKeepalived)
		if err != nil {
			t.Fatal(err)
		}
		procs := descendants(supervisor.PID)
		probe := l.NewClient(time.Second).StartProbe("http://"+addr+"/", 10*time.Millisecond, 2*time.Minute)
		watch := l.WatchHolders(addr, 5*time.Millisecond, 3*time.Minute)
		// Every process of the container dies at once, the supervisor too.
		killed := time.Now()
		killAtOnce(append([]int{supervisor.PID}, procs...))
		pod := &corev1.Pod{}
		if err := l.Client.Get(ctx, client.ObjectKey{Namespace: supervisor.Namespace, Name: supervisor.Pod}, pod); err != nil {
			t.Fatal(err)
		}
		if err := l.Client.Delete(ctx, pod); err != nil {
			t.Fatal(err)
		}
		eventually(t, 90*time.Second, "node-a's VIP removed by the new pod's keepalived supervisor", func() error {
			if l.HoldsVIP(lab.NodeName(0), addr) {
				return fmt.Errorf("node-a still holds %s", addr)
			}
			return nil
		})
		waitActive(t, l, lb, lab.NodeName(0), 120*time.Second)
		samples, err := watch.Stop()
		if err != nil {
			t.Fatal(err)
		}
		outage, ok, failed := probe.Stop()
		// The bound is the new pod's start: generous, it bounds a failure.
		released, tookOver := checkOneHolder(t, samples, killed, time.Now(), 60*time.Second)
		t.Logf("keepalived's container killed whole and its pod deleted: node-a kept the VIP for %v (until a new "+
			"keepalived container started there), node-b held it (too) after %v; client: %d answered, %d failed, longest outage %.3fs",
			released.Round(time.Millisecond), tookOver.Round(time.Millisecond), ok, failed, outage.Seconds())
	})
}

// killAtOnce stops every process first, then kills them: none can act on
// another's death (keepalived's VRRP process is sent SIGTERM when its
// parent dies and would then release the VIP cleanly, which is not the
// fault under test), as when the kernel kills a whole container.
func killAtOnce(pids []int) {
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGSTOP)
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// descendants are the processes under pid, children first. Go may fork
// from any thread, and each thread lists its own children.
func descendants(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, task := range tasks {
		data, _ := os.ReadFile(task)
		for _, f := range strings.Fields(string(data)) {
			if child, err := strconv.Atoi(f); err == nil {
				out = append(out, child)
				out = append(out, descendants(child)...)
			}
		}
	}
	return out
}

func nodeRole(t *testing.T, l *lab.Lab, lb *v1alpha1.LoadBalancer, node string) v1alpha1.VRRPRole {
	t.Helper()
	got := &v1alpha1.LoadBalancer{}
	if err := l.Client.Get(ctx, client.ObjectKeyFromObject(lb), got); err != nil {
		t.Fatal(err)
	}
	for _, n := range got.Status.Nodes {
		if n.Name == node {
			return n.Role
		}
	}
	return ""
}

// between is the holders from `from` to `to`: what held at `from`, then
// every change, each with how long it lasted.
func between(samples []lab.HolderSample, from, to time.Time) []heldFor {
	var out []heldFor
	for i, s := range samples {
		next := to
		if i+1 < len(samples) && samples[i+1].At.Before(to) {
			next = samples[i+1].At
		}
		if !next.After(from) || !s.At.Before(to) {
			continue
		}
		at := s.At
		if at.Before(from) {
			at = from
		}
		out = append(out, heldFor{at: at, d: next.Sub(at), holders: s.Holders})
	}
	return out
}

type heldFor struct {
	at      time.Time
	d       time.Duration
	holders []string
}

func describeHolders(spans []heldFor, since time.Time) string {
	var out []string
	for _, s := range spans {
		out = append(out, fmt.Sprintf("+%v %v for %v", s.at.Sub(since).Round(time.Millisecond), s.holders, s.d.Round(time.Millisecond)))
	}
	return strings.Join(out, ", ")
}

// checkOneHolder reads the holders around a fault on node-a at killed:
// node-a must have released the VIP within bound, and from then (and node-b
// holding) until node-a holds it again (its keepalived back, preempting)
// node-b alone must hold it. It returns when node-a released and when
// node-b first held, from killed.
func checkOneHolder(t *testing.T, samples []lab.HolderSample, killed, end time.Time, bound time.Duration) (released, tookOver time.Duration) {
	t.Helper()
	a, b := lab.NodeName(0), lab.NodeName(1)
	spans := between(samples, killed, end)
	t.Logf("holders after the fault: %s", describeHolders(spans, killed))
	releasedAt, heldAt := -1, -1
	for i, s := range spans {
		if releasedAt < 0 && !slices.Contains(s.holders, a) {
			releasedAt = i
		}
		if heldAt < 0 && slices.Contains(s.holders, b) {
			heldAt = i
		}
	}
	if releasedAt < 0 {
		t.Fatalf("node-a never released the VIP")
	}
	released = spans[releasedAt].at.Sub(killed)
	if released > bound {
		t.Errorf("node-a released the VIP %v after the fault, beyond the bound %v", released, bound)
	}
	if heldAt < 0 {
		t.Fatalf("node-b never held the VIP")
	}
	tookOver = spans[heldAt].at.Sub(killed)
	from := max(releasedAt, heldAt)
	backAt := len(spans)
	for i := from; i < len(spans); i++ {
		if slices.Contains(spans[i].holders, a) {
			backAt = i
			break
		}
	}
	for i := from; i < backAt; i++ {
		s := spans[i]
		if slices.Equal(s.holders, []string{b}) {
			continue
		}
		// node-a taking the VIP back is an ordinary preemption: node-b
		// drops it just before node-a adds it (the planned handover of
		// #13 is about that gap, not this test).
		if len(s.holders) == 0 && i+1 == backAt && backAt < len(spans) {
			t.Logf("preemption back to node-a: no holder for %v", s.d.Round(time.Millisecond))
			continue
		}
		t.Errorf("at +%v the VIP was held by %v for %v, want node-b alone", s.at.Sub(killed).Round(time.Millisecond), s.holders, s.d.Round(time.Millisecond))
	}
	return released, tookOver
}
