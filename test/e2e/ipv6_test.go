package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hakeeper/hakeeper/internal/testing/lab"
)

// TestIPv6Failover: HAProxy killed under an IPv6 client and a dual-stack
// one. An IPv6-only LoadBalancer (VRRP runs on IPv6) and a dual-stack one
// (VRRP on IPv4, the IPv6 VIP moving with the instance) each lose HAProxy
// on the master while the client probes every VIP every 10 ms, over the
// VIP's family. The backup takes over, then the master takes the VIPs
// back once its HAProxy is restarted (preemption). For each VIP the test
// reports the outages the client saw and when the client's neighbour
// entry for the VIP moved to the new holder's MAC: the neighbour
// advertisements (or gratuitous ARPs) the new master sends, not the
// neighbour cache's own timers (tens of seconds), must move IPv6 clients
// as they move IPv4 ones.
//
// A stale neighbour cache would not show as a long outage on its own here:
// the old master comes back within seconds and the stale entry points at
// it again. So the test also requires that the client's entry reached the
// backup's MAC while the backup held the VIP, and then the master's again.
func TestIPv6Failover(t *testing.T) {
	l := requireLab(t)
	for _, tc := range []struct {
		name string
		vips []string
	}{
		{"v6only", []string{lab.Prefix6 + "1f0"}},
		{"dualstack", []string{newVIP(t), lab.Prefix6 + "1f1"}},
	} {
		t.Run(tc.name, func(t *testing.T) { ipv6Failover(t, l, tc.name, tc.vips) })
	}
}

func ipv6Failover(t *testing.T, l *lab.Lab, name string, vips []string) {
	lb := variant(name, vips[0])
	lb.Spec.VirtualIPs = vips
	createAndWait(t, l, lb)
	master, backup := lab.NodeName(0), lab.NodeName(1)
	eventually(t, 30*time.Second, master+" holding every VIP", func() error {
		for _, v := range vips {
			if !l.HoldsVIP(master, v) {
				return fmt.Errorf("not %s", v)
			}
		}
		return nil
	})
	c := l.NewClient(2 * time.Second)
	for _, v := range vips {
		if _, err := c.Get(ctx, vipURL(v), ""); err != nil {
			t.Fatalf("GET %s: %v", vipURL(v), err)
		}
	}
	masterMAC, backupMAC := nodeMAC(t, l, master), nodeMAC(t, l, backup)

	neigh := watchNeighbours(t, l)
	defer neigh.stop()
	probes := make([]*lab.Probe, len(vips))
	for i, v := range vips {
		probes[i] = lab.NewProbeClient(l).StartProbe(vipURL(v), 10*time.Millisecond, 2*time.Minute)
	}
	answered, failed := make([]int, len(vips)), make([]int, len(vips))
	var stopOnce sync.Once
	stopProbes := func() {
		stopOnce.Do(func() {
			for i, p := range probes {
				_, answered[i], failed[i] = p.Stop()
			}
		})
	}
	defer stopProbes()
	time.Sleep(time.Second)
	killed := time.Now()
	if err := l.Kill(master, lb, "haproxy"); err != nil {
		t.Fatal(err)
	}
	for _, v := range vips {
		waitHolder(t, l, lb, backup, v, 30*time.Second)
	}
	tookOver := time.Now()
	// The kubelet restarts HAProxy; with preemption the master takes the
	// VIPs back.
	for _, v := range vips {
		waitHolder(t, l, lb, master, v, 60*time.Second)
	}
	back := time.Now()
	servedAgain(30*time.Second, probes...)
	stopProbes()
	events := neigh.stop()
	t.Logf("HAProxy killed on %s at %s; %s held every VIP by +%.3fs; %s had them back by +%.3fs",
		master, killed.Format("15:04:05.000"), backup, tookOver.Sub(killed).Seconds(), master, back.Sub(killed).Seconds())
	for i, v := range vips {
		family := "IPv4"
		if netip.MustParseAddr(v).Is6() {
			family = "IPv6"
		}
		failover, later, before := splitOutages(probes[i].Outages(), killed, tookOver)
		t.Logf("%s client of %s: failover outage %.3fs; later %v; before the kill %v (%d answered, %d failed) %v",
			family, v, failover.Seconds(), later, before, answered[i], failed[i], probes[i].Errors())
		// When the client's neighbour entry for the VIP first showed the
		// backup's MAC, and the master's again after that.
		toBackup := neighbourMoved(events, v, backupMAC, killed)
		var toMaster time.Time
		if !toBackup.IsZero() {
			toMaster = neighbourMoved(events, v, masterMAC, toBackup)
		}
		t.Logf("%s client's neighbour entry for %s: %s's MAC at %s, %s's again at %s",
			family, v, backup, since(toBackup, killed), master, since(toMaster, killed))
		if _, err := c.Get(ctx, vipURL(v), ""); err != nil {
			t.Errorf("%s does not answer after the failover and back: %v", v, err)
		}
		// Generous: this bounds a failure, it does not measure.
		for _, o := range append(append(later, before...), lab.Outage{Start: killed, Duration: failover}) {
			if o.Duration > 5*time.Second {
				t.Errorf("%s client of %s: outage %v", family, v, o)
			}
		}
		if toBackup.IsZero() || toBackup.After(back) {
			t.Errorf("%s client of %s: its neighbour entry never showed %s's MAC %s while %s held the VIP (a stale cache)", family, v, backup, backupMAC, backup)
		}
		if toMaster.IsZero() {
			t.Errorf("%s client of %s: its neighbour entry never moved back to %s's MAC %s", family, v, master, masterMAC)
		}
	}
	for _, e := range events {
		t.Logf("neighbour: %s", e.line)
	}
	waitActive(t, l, lb, master, 60*time.Second)
}

// splitOutages tells the failover's outage (the longest that started from
// a probe timeout before the kill until a second after the backup held the
// VIPs) from the later ones (the preemption back) and from those before
// the kill (a request slower than the probe's 200 ms on a busy machine).
func splitOutages(outages []lab.Outage, killed, tookOver time.Time) (failover time.Duration, later, before []lab.Outage) {
	for _, o := range outages {
		switch {
		case o.Start.Before(killed.Add(-200 * time.Millisecond)):
			before = append(before, o)
		case o.Start.After(tookOver.Add(time.Second)):
			later = append(later, o)
		default:
			failover = max(failover, o.Duration)
		}
	}
	return failover, later, before
}

// vipURL is the VIP's HTTP URL on port 80, bracketed for IPv6.
func vipURL(addr string) string { return "http://" + net.JoinHostPort(addr, "80") + "/" }

func since(at, start time.Time) string {
	if at.IsZero() {
		return "never"
	}
	return fmt.Sprintf("+%.3fs", at.Sub(start).Seconds())
}

// nodeMAC is the MAC address of a node's eth0.
func nodeMAC(t *testing.T, l *lab.Lab, node string) string {
	t.Helper()
	cmd, err := l.NodeCommand(ctx, node, "ip", "-o", "link", "show", "dev", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s's eth0: %v", node, err)
	}
	f := strings.Fields(string(out))
	for i := range f[:len(f)-1] {
		if f[i] == "link/ether" {
			return f[i+1]
		}
	}
	t.Fatalf("%s's eth0 has no MAC: %s", node, out)
	return ""
}

// neighbourEvent is one line of `ip -ts monitor neigh` in the client.
type neighbourEvent struct {
	at        time.Time
	addr, mac string
	line      string
}

type neighbourWatch struct {
	cancel context.CancelFunc
	cmd    *exec.Cmd
	out    *syncBuffer
	once   sync.Once
	events []neighbourEvent
}

// watchNeighbours records the changes to the client's neighbour table, for
// at most three minutes.
func watchNeighbours(t *testing.T, l *lab.Lab) *neighbourWatch {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	w := &neighbourWatch{cancel: cancel, out: &syncBuffer{}}
	w.cmd = l.ClientCommand(cctx, "ip", "-ts", "monitor", "neigh", "dev", "eth0")
	w.cmd.Stdout, w.cmd.Stderr = w.out, w.out
	if err := w.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // subscribed before anything moves
	return w
}

// stop ends the watch and parses what it saw.
func (w *neighbourWatch) stop() []neighbourEvent {
	w.once.Do(func() {
		w.cancel()
		_ = w.cmd.Wait()
		sc := bufio.NewScanner(bytes.NewReader(w.out.Bytes()))
		for sc.Scan() {
			line := sc.Text()
			e := neighbourEvent{line: line}
			f := strings.Fields(line)
			if len(f) < 2 || !strings.HasPrefix(f[0], "[") {
				continue
			}
			at, err := time.ParseInLocation("2006-01-02T15:04:05.000000", strings.Trim(f[0], "[]"), time.Local)
			if err != nil {
				continue
			}
			e.at, e.addr = at, f[1]
			for i := 2; i+1 < len(f); i++ {
				if f[i] == "lladdr" {
					e.mac = f[i+1]
				}
			}
			w.events = append(w.events, e)
		}
	})
	return w.events
}

// neighbourMoved is when the client's entry for addr first showed mac
// after start, or zero.
func neighbourMoved(events []neighbourEvent, addr, mac string, start time.Time) time.Time {
	want := netip.MustParseAddr(addr)
	for _, e := range events {
		if a, err := netip.ParseAddr(e.addr); err == nil && a == want && strings.EqualFold(e.mac, mac) && !e.at.Before(start) {
			return e.at
		}
	}
	return time.Time{}
}

// syncBuffer is a bytes.Buffer a command writes while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
