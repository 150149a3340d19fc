package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/testing/lab"
)

// adverts measures, for each advert interval, hakeeper's outage when the
// master leaves the network and its false failovers while the master is
// overloaded: full-speed load through the VIP (wrk from the lab's client)
// plus a CPU burner per core started on the master node. The lab's nodes
// share the machine's cores, so the burners load every node, the master
// with them. A false failover is any VRRP transition a node's agent counts
// during the overload, or the VIP seen off node-a (sampled every 20 ms).
func adverts(ctx context.Context, l *lab.Lab, h *hakeeperLB, intervals []int, runs int, timeout, overload time.Duration) error {
	type result struct {
		advert     int
		outages    []time.Duration
		transition int64
		offMaster  int
		wrk        string
	}
	var results []result
	for _, ms := range intervals {
		if err := h.setAdvert(ctx, ms); err != nil {
			return err
		}
		r := result{advert: ms}
		for i := range runs {
			outages, err := measure(ctx, l, []system{h}, timeout, func() error { return l.SetLink(lab.NodeName(0), false) })
			if err := errors.Join(err, l.SetLink(lab.NodeName(0), true)); err != nil {
				return fmt.Errorf("advert %d ms, link down: %w", ms, err)
			}
			if err := h.waitBack(ctx); err != nil {
				return err
			}
			fmt.Printf("  advert %2d ms, link down, run %d: %.3f s\n", ms, i+1, outages[0].Seconds())
			r.outages = append(r.outages, outages[0])
		}
		var err error
		r.transition, r.offMaster, r.wrk, err = h.overload(ctx, overload)
		if err != nil {
			return fmt.Errorf("advert %d ms, overload: %w", ms, err)
		}
		fmt.Printf("  advert %2d ms, %v overload: %d VRRP transitions, VIP off node-a in %d samples; wrk %s\n",
			ms, overload, r.transition, r.offMaster, r.wrk)
		if err := h.waitBack(ctx); err != nil {
			return err
		}
		results = append(results, r)
	}
	fmt.Printf("\n%-8s %-28s %-34s %s\n", "advert", "link down: median / worst", fmt.Sprintf("false failovers in %v overload", overload), "wrk through the VIP")
	for _, r := range results {
		fmt.Printf("%-8s %-28s %-34s %s\n", strconv.Itoa(r.advert)+" ms",
			fmt.Sprintf("%.3f s / %.3f s", median(r.outages).Seconds(), slices.Max(r.outages).Seconds()),
			fmt.Sprintf("%d transitions, %d samples off", r.transition, r.offMaster), r.wrk)
	}
	return nil
}

// setAdvert sets the LoadBalancer's advert interval and waits until every
// node runs the config that has it.
func (h *hakeeperLB) setAdvert(ctx context.Context, ms int) error {
	lb := &v1alpha1.LoadBalancer{}
	if err := h.l.Client.Get(ctx, client.ObjectKeyFromObject(h.lb), lb); err != nil {
		return err
	}
	lb.Spec.VRRP.AdvertIntervalMilliseconds = ptr.To(int32(ms))
	if err := h.l.Client.Update(ctx, lb); err != nil {
		return err
	}
	h.advertMS = ms
	want := fmt.Sprintf("advert_int %s", strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64))
	return waitUntil(ctx, 2*time.Minute, "advert "+want+" on every node", func() bool {
		cm := &corev1.ConfigMap{}
		key := client.ObjectKey{Namespace: lab.OperatorNamespace, Name: desired.NamesFor(h.lb).KeepalivedConfigMap}
		if h.l.Client.Get(ctx, key, cm) != nil {
			return false
		}
		for k, v := range cm.Data {
			if strings.HasSuffix(k, contract.KeepalivedKeySuffix) && !strings.Contains(v, want) {
				return false
			}
		}
		got := &v1alpha1.LoadBalancer{}
		if h.l.Client.Get(ctx, client.ObjectKeyFromObject(h.lb), got) != nil {
			return false
		}
		for _, n := range got.Status.Nodes {
			if !n.Ready {
				return false
			}
		}
		return len(got.Status.Nodes) == 3 && got.Status.ActiveNode == lab.NodeName(0)
	})
}

// overload runs wrk through the VIP and a CPU burner per core for d, and
// counts the VRRP transitions the agents report and the samples in which
// node-a did not hold the VIP.
func (h *hakeeperLB) overload(ctx context.Context, d time.Duration) (transitions int64, offMaster int, wrk string, err error) {
	// The link-down runs before leave transitions that the agents report
	// up to 200 ms later: counted from a baseline taken too early, they
	// read as false failovers of the overload (earlier runs of this bench
	// did so: node-a's MASTER, FAULT, BACKUP, MASTER around the link).
	before, err := h.settledTransitions(ctx)
	if err != nil {
		return 0, 0, "", err
	}
	started := time.Now()
	var burners []*exec.Cmd
	defer func() {
		for _, b := range burners {
			_ = syscall.Kill(-b.Process.Pid, syscall.SIGKILL)
			_ = b.Wait()
		}
	}()
	for range runtime.NumCPU() {
		b, err := h.l.NodeCommand(ctx, lab.NodeName(0), "sh", "-c", "while :; do :; done")
		if err != nil {
			return 0, 0, "", err
		}
		b.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := b.Start(); err != nil {
			return 0, 0, "", err
		}
		burners = append(burners, b)
	}
	stop := make(chan struct{})
	off := make(chan int, 1)
	go func() {
		n := 0
		deadline := time.Now().Add(d + 30*time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-stop:
				off <- n
				return
			case <-time.After(20 * time.Millisecond):
			}
			if !h.l.HoldsVIP(lab.NodeName(0), h.address()) {
				n++
			}
		}
		off <- n
	}()
	out, err := h.l.ClientCommand(ctx, "wrk", "-t2", "-c64", "-d"+strconv.Itoa(int(d.Seconds()))+"s", "--timeout", "2s", h.url()).CombinedOutput()
	close(stop)
	offMaster = <-off
	if err != nil {
		return 0, 0, "", fmt.Errorf("wrk: %w: %s", err, out)
	}
	time.Sleep(time.Second) // the agents report within 200 ms
	after, err := h.l.Transitions(ctx, h.lb)
	if err != nil {
		return 0, 0, "", err
	}
	var perNode []string
	for node, n := range after {
		transitions += n - before[node]
		if n != before[node] {
			perNode = append(perNode, fmt.Sprintf("%s %d", node, n-before[node]))
		}
	}
	if transitions > 0 {
		// Why: missed adverts, or a node's own tracked files.
		events, err := h.l.VRRPEvents(ctx, h.lb, started)
		fmt.Print(indent(events, "    "))
		if err != nil {
			fmt.Printf("    reading the logs: %v\n", err)
		}
	}
	slices.Sort(perNode)
	summary := wrkSummary(string(out))
	if len(perNode) > 0 {
		summary = "transitions on " + strings.Join(perNode, ", ") + "; " + summary
	}
	return transitions, offMaster, summary, nil
}

// wrkSummary is wrk's requests per second and its error lines.
func wrkSummary(out string) string {
	var parts []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "Requests/sec:") || strings.HasPrefix(line, "Socket errors:") || strings.HasPrefix(line, "Non-2xx") {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, "; ")
}

// settledTransitions waits until node-a is master, the others backups,
// and no agent's transition count moved for a second, and returns the
// counts.
func (h *hakeeperLB) settledTransitions(ctx context.Context) (map[string]int64, error) {
	var counts map[string]int64
	err := waitUntil(ctx, time.Minute, "VRRP roles settled", func() bool {
		first, err := h.l.Transitions(ctx, h.lb)
		if err != nil {
			return false
		}
		time.Sleep(time.Second)
		got := &v1alpha1.LoadBalancer{}
		if h.l.Client.Get(ctx, client.ObjectKeyFromObject(h.lb), got) != nil || len(got.Status.Nodes) != 3 {
			return false
		}
		for _, n := range got.Status.Nodes {
			want := v1alpha1.VRRPRoleBackup
			if n.Name == lab.NodeName(0) {
				want = v1alpha1.VRRPRoleMaster
			}
			if n.Role != want {
				return false
			}
		}
		counts, err = h.l.Transitions(ctx, h.lb)
		return err == nil && maps.Equal(first, counts)
	})
	return counts, err
}

func indent(text, prefix string) string {
	if text == "" {
		return ""
	}
	return prefix + strings.ReplaceAll(strings.TrimSuffix(text, "\n"), "\n", "\n"+prefix) + "\n"
}
