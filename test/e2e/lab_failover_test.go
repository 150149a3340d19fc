package e2e

// Failovers and what must not fail over: faults on the master, the
// preempt delay, load.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/testing/lab"
)

// servedAgain waits, at most timeout, until every probe has had 100
// answers in a row (a second): the VIP served again and staying so. It
// tells whether they did; a caller that goes on regardless sees the rest
// in the probes' outages.
func servedAgain(timeout time.Duration, probes ...*lab.Probe) bool {
	return lab.Poll(ctx, 50*time.Millisecond, timeout, func() error {
		for _, p := range probes {
			if p.Streak() < 100 {
				return errors.New("not yet 100 answers in a row")
			}
		}
		return nil
	}) == nil
}

// failover runs fault against the active node while a client probes the
// VIP every 10 ms, waits for want to hold the VIP, and returns the longest
// outage the client saw.
func failover(t *testing.T, l *lab.Lab, lb *v1alpha1.LoadBalancer, want string, fault func() error) time.Duration {
	t.Helper()
	c := l.NewClient(200 * time.Millisecond)
	addr := lb.Spec.VirtualIPs[0]
	probe := c.StartProbe("http://"+addr+"/", 10*time.Millisecond, 60*time.Second)
	time.Sleep(500 * time.Millisecond)
	if err := fault(); err != nil {
		probe.Stop()
		t.Fatal(err)
	}
	// The kernel, not status: the kubelet restarts a killed container
	// within a second or two and, with preemption, the node takes the VIP
	// back sooner than status may show the failover.
	waitHolder(t, l, lb, want, addr, 30*time.Second)
	servedAgain(30*time.Second, probe)
	outage, ok, failed := probe.Stop()
	if _, err := c.Get(ctx, "http://"+addr+"/", ""); err != nil {
		t.Fatalf("the VIP does not answer after failover: %v", err)
	}
	t.Logf("outage %.3fs (%d requests answered, %d failed)", outage.Seconds(), ok, failed)
	// Generous: this bounds a failure, it does not measure.
	if outage > 5*time.Second {
		t.Errorf("outage %v", outage)
	}
	return outage
}

// TestFailoverWhenHAProxyDies also reads what `kubectl events` tells of
// it: one event per move of the VIP, with the cause.
func TestFailoverWhenHAProxyDies(t *testing.T) {
	l := requireLab(t)
	lb := applyWebsite(t, l)
	since := time.Now()
	failover(t, l, lb, lab.NodeName(1), func() error { return l.Kill(lab.NodeName(0), lb, "haproxy") })
	addr := lb.Spec.VirtualIPs[0]
	moved := fmt.Sprintf("%s now holds %s (was %s: HAProxy died)", lab.NodeName(1), addr, lab.NodeName(0))
	eventually(t, 30*time.Second, "the failover's event", func() error {
		if notes := moves(t, l, lb, since); len(notes) == 0 || notes[0] != moved {
			return fmt.Errorf("VirtualIPMoved events %q, want %q first", notes, moved)
		}
		return nil
	})
	// node-a's kubelet restarts HAProxy; with preemption on, node-a takes
	// the VIP back.
	waitActive(t, l, lb, lab.NodeName(0), 60*time.Second)
	back := fmt.Sprintf("%s now holds %s (was %s: %s has the higher priority)", lab.NodeName(0), addr, lab.NodeName(1), lab.NodeName(0))
	eventually(t, 30*time.Second, "the take-back's event", func() error {
		if notes := moves(t, l, lb, since); len(notes) < 2 || notes[1] != back {
			return fmt.Errorf("VirtualIPMoved events %q, want %q second", notes, back)
		}
		return nil
	})
	// Two moves, two events: none for the reconciles between, none twice.
	time.Sleep(2 * time.Second)
	if notes := moves(t, l, lb, since); len(notes) != 2 {
		t.Errorf("VirtualIPMoved events %q, want exactly the failover's and the take-back's", notes)
	}
}

// moves are the notes of the VirtualIPMoved events about lb since a
// time, oldest first; an event folded into a series counts once per
// occurrence.
func moves(t *testing.T, l *lab.Lab, lb *v1alpha1.LoadBalancer, since time.Time) []string {
	t.Helper()
	var list eventsv1.EventList
	if err := l.Client.List(ctx, &list, client.InNamespace(lb.Namespace)); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(list.Items, func(a, b eventsv1.Event) int { return a.EventTime.Compare(b.EventTime.Time) })
	var notes []string
	for _, e := range list.Items {
		if e.Regarding.Name != lb.Name || e.Reason != "VirtualIPMoved" || e.EventTime.Time.Before(since) {
			continue
		}
		n := 1
		if e.Series != nil {
			n = int(e.Series.Count)
		}
		for range n {
			notes = append(notes, e.Note)
		}
	}
	return notes
}

// TestFailoverWhenKeepalivedDies uses preemption Disabled: the node whose
// keepalived died gets it back a second later (its kubelet restarts it)
// and must then stay a backup. (With preemption it would take the VIP
// back within that second, too soon for status to be sure to show the
// backup as master.)
func TestFailoverWhenKeepalivedDies(t *testing.T) {
	l := requireLab(t)
	addr := newVIP(t)
	lb := variant("nopreempt", addr)
	lb.Spec.VRRP.Preemption = v1alpha1.PreemptionDisabled
	if err := l.Client.Create(ctx, lb); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Client.Delete(ctx, lb) })
	// Every node up and on the config first: without preemption, whichever
	// node came up first leads, and a backup that is not up yet cannot
	// take over.
	readyPods(t, l, lab.OperatorNamespace, map[string]string{desired.LabelLoadBalancer: lb.Name}, 3)
	settled(t, l, lb)
	var master string
	eventually(t, 30*time.Second, "a master", func() error {
		for i := range 3 {
			if l.HoldsVIP(lab.NodeName(i), addr) {
				master = lab.NodeName(i)
				return nil
			}
		}
		return errors.New("no node holds the VIP")
	})
	waitActive(t, l, lb, master, 30*time.Second)
	probe := lab.NewProbeClient(l).StartProbe("http://"+addr+"/", 10*time.Millisecond, time.Minute)
	time.Sleep(500 * time.Millisecond)
	if err := l.Kill(master, lb, "keepalived"); err != nil {
		probe.Stop()
		t.Fatal(err)
	}
	// Either backup may win: without preemption the first whose timer
	// runs out stays master.
	var next string
	_ = lab.Poll(ctx, 10*time.Millisecond, 30*time.Second, func() error {
		for i := range 3 {
			if n := lab.NodeName(i); n != master && l.HoldsVIP(n, addr) {
				next = n
				return nil
			}
		}
		return errors.New("no backup holds it")
	})
	if next == "" {
		probe.Stop()
		logPods(t, l, lb)
		t.Fatalf("no backup took the VIP from %s", master)
	}
	servedAgain(30*time.Second, probe)
	outage, ok, failed := probe.Stop()
	t.Logf("outage %.3fs (%d requests answered, %d failed); %s took over", outage.Seconds(), ok, failed, next)
	waitActive(t, l, lb, next, 30*time.Second)
	eventually(t, 30*time.Second, master+"'s keepalived back as a backup", func() error {
		if r := nodeReport(t, l, lb, master); r.Role != v1alpha1.VRRPRoleBackup {
			return fmt.Errorf("role %q", r.Role)
		}
		return nil
	})
	for range 150 { // 15 seconds: no preemption, past the restarted keepalived's first probes
		if !l.HoldsVIP(next, addr) || l.HoldsVIP(master, addr) {
			logPods(t, l, lb)
			t.Fatalf("with preemption disabled the VIP moved: %s holds it %v, %s %v", master, l.HoldsVIP(master, addr), next, l.HoldsVIP(next, addr))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
func TestFailoverWhenTheMasterLeavesTheNetwork(t *testing.T) {
	l := requireLab(t)
	lb := applyWebsite(t, l)
	t.Cleanup(func() { _ = l.SetLink(lab.NodeName(0), true) })
	failover(t, l, lb, lab.NodeName(1), func() error { return l.SetLink(lab.NodeName(0), false) })
	if err := l.SetLink(lab.NodeName(0), true); err != nil {
		t.Fatal(err)
	}
	waitActive(t, l, lb, lab.NodeName(0), 60*time.Second)
}
func TestFailoverWhenPrimaryAndStandbyDie(t *testing.T) {
	l := requireLab(t)
	lb := applyWebsite(t, l)
	failover(t, l, lb, lab.NodeName(2), func() error {
		if err := l.Kill(lab.NodeName(0), lb, "haproxy"); err != nil {
			return err
		}
		return l.Kill(lab.NodeName(1), lb, "haproxy")
	})
	waitActive(t, l, lb, lab.NodeName(0), 60*time.Second)
}

// TestPreemptDelay: with a preempt delay, a failing master is still
// replaced at once (keepalived's own preempt_delay made the backup wait the
// whole delay), and the recovered primary stays a backup until its HAProxy
// has been healthy for the delay, then takes the VIP back.
func TestPreemptDelay(t *testing.T) {
	l := requireLab(t)
	addr := newVIP(t)
	lb := variant("delayed", addr)
	lb.Spec.VRRP.PreemptDelaySeconds = ptr.To(int32(10))
	createAndWait(t, l, lb)
	// A new LoadBalancer's nodes are all held for the delay; node-a may be
	// master at priority 1 by then. Wait until every hold is released and
	// node-a leads on its real priority.
	eventually(t, 60*time.Second, "every node's preempt hold released", func() error {
		for i := range 3 {
			run, err := l.PodVolume(lab.NodeName(i), lb, desired.VolumeKeepalivedRun)
			if err != nil {
				return err
			}
			hold := filepath.Join(run, contract.PreemptHoldFile)
			if data, err := os.ReadFile(hold); err != nil || string(data) != "0\n" {
				return fmt.Errorf("%s: %q %v", lab.NodeName(i), data, err)
			}
		}
		return nil
	})
	waitActive(t, l, lb, lab.NodeName(0), 30*time.Second)
	eventually(t, 30*time.Second, "node-a holding the VIP", func() error {
		if !l.HoldsVIP(lab.NodeName(0), addr) {
			return errors.New("not yet")
		}
		return nil
	})
	c := l.NewClient(200 * time.Millisecond)
	probe := c.StartProbe("http://"+addr+"/", 10*time.Millisecond, 60*time.Second)
	time.Sleep(500 * time.Millisecond)
	if err := l.Kill(lab.NodeName(0), lb, "haproxy"); err != nil {
		probe.Stop()
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "node-b holding the VIP", func() error {
		if !l.HoldsVIP(lab.NodeName(1), addr) {
			return errors.New("not yet")
		}
		return nil
	})
	for probe.Streak() < 50 {
		time.Sleep(20 * time.Millisecond)
	}
	outage, _, _ := probe.Stop()
	t.Logf("outage %.3fs with a 10 s preempt delay", outage.Seconds())
	if outage > 5*time.Second {
		t.Errorf("the preempt delay held up the failover: outage %v", outage)
	}
	eventually(t, 30*time.Second, "node-a healthy again", func() error {
		if r := nodeReport(t, l, lb, lab.NodeName(0)); !r.Healthy {
			return fmt.Errorf("report %+v", r)
		}
		return nil
	})
	stayOff := func(when string) { // well inside the 10 s delay
		for range 30 {
			if l.HoldsVIP(lab.NodeName(0), addr) {
				t.Fatalf("node-a took the VIP back during its preempt delay, %s", when)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	stayOff("after HAProxy recovered")
	waitActive(t, l, lb, lab.NodeName(0), 60*time.Second)

	// A restarted keepalived waits the delay too: it sets the hold file when
	// it starts, and the agent starts the delay over.
	if err := l.Kill(lab.NodeName(0), lb, "keepalived"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "node-b holding the VIP once node-a's keepalived is back", func() error {
		if !l.HoldsVIP(lab.NodeName(1), addr) || l.HoldsVIP(lab.NodeName(0), addr) {
			return fmt.Errorf("node-a %v, node-b %v", l.HoldsVIP(lab.NodeName(0), addr), l.HoldsVIP(lab.NodeName(1), addr))
		}
		return nil
	})
	stayOff("after keepalived restarted")
	waitActive(t, l, lb, lab.NodeName(0), 60*time.Second)
}

// TestNoFalseFailoverUnderLoad: with the default advert interval, wrk
// saturating the VIP for 20 s (both cores busy with wrk, HAProxy and the
// backends) moves the VIP nowhere: no node changes its VRRP state.
func TestNoFalseFailoverUnderLoad(t *testing.T) {
	l := requireLab(t)
	lb := applyWebsite(t, l)
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Fatal("wrk is missing: hack/install-deps.sh installs it")
	}
	if before := transitions(t, l, lb); len(before) != 3 {
		t.Fatalf("want reports from 3 nodes, have %v", before)
	}
	loaded := time.Now()
	elsewhere := make(chan int, 1)
	stop := make(chan struct{})
	go func() { // how often the VIP was seen off node-a, every 20 ms
		n := 0
		for range 2000 {
			select {
			case <-stop:
				elsewhere <- n
				return
			case <-time.After(20 * time.Millisecond):
			}
			if !l.HoldsVIP(lab.NodeName(0), vip) {
				n++
			}
		}
		elsewhere <- n
	}()
	out, err := l.ClientCommand(ctx, "wrk", "-t2", "-c64", "-d20s", "--timeout", "2s", "http://"+vip+"/").CombinedOutput()
	close(stop)
	if err != nil {
		t.Fatalf("wrk: %v: %s", err, out)
	}
	t.Logf("wrk through the VIP:\n%s", out)
	if n := <-elsewhere; n > 0 {
		t.Errorf("node-a lost the VIP in %d samples during the load", n)
	}
	noStateChange(t, l, lb, loaded, "under load")
}

// noStateChange fails the test if any node's keepalived changed its VRRP
// state since: keepalived's own log, which needs no wait, where the
// agents' reports are written a moment after a change.
func noStateChange(t *testing.T, l *lab.Lab, lb *v1alpha1.LoadBalancer, since time.Time, during string) {
	t.Helper()
	changes, err := l.StateChanges(ctx, lb, since)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) > 0 {
		events, _ := l.VRRPEvents(ctx, lb, since)
		t.Errorf("VRRP state changes %s:\n%s\nVRRP events:\n%s", during, strings.Join(changes, "\n"), events)
	}
}

// transitions reads every node's count of VRRP state changes from the
// agents' reports (the status follows them).
func transitions(t *testing.T, l *lab.Lab, lb *v1alpha1.LoadBalancer) map[string]int64 {
	t.Helper()
	out, err := l.Transitions(ctx, lb)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
